//! Replies too long to make under one hold of the state lock (`WHO *` on
//! a network of 10,000 users, `LIST` of thousands of channels) are made
//! in slices: each slice holds the lock shared for at most
//! [`SLICE_TIME`] (or [`SLICE_ENTRIES`] entries), then lets it go, and
//! the thread turns to other clients before the next slice. After
//! [`BURST`] of slices a reply pauses until the runtime's next timer tick
//! (1–2 ms), so it takes at most about a fifth of a command thread: a
//! thread kept busy without a pause is the one the OS shares out among
//! the machine's busy processes a few milliseconds at a time, holding the
//! lock or not, while other clients' messages wait for it (see the
//! README's architecture section for the figures).
//!
//! A reply walks a list of ids or names taken when the command came;
//! each slice looks its entries up again, so every line shows an entry
//! as it was at one moment, under one hold. An entry that went away
//! meanwhile is left out, one that came meanwhile is not listed: the
//! reply is what an answer made at some moment during it would show for
//! each entry, and lists nobody twice.
//!
//! The client's later commands wait until its reply is complete
//! ([`Flow::Wait`]), so they keep their order. The reply goes no faster
//! than the client reads it: a slice is only made while at most an
//! eighth of the client's sendq is waiting, and stops at a quarter, so a
//! reply longer than the sendq (10,000 `WHO` lines are about
//! 800 KB) reaches a client that reads instead of cutting it off with
//! "SendQ exceeded". A client that stops reading leaves its reply waiting
//! until the keepalive gives up on it, and the wait costs nothing: no
//! timer, no wake-up until its socket drains (see [`wait_for_room`]).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{Ctx, Flow};
use crate::server::flush::{self, FlushScope};
use crate::server::outbox::Outbox;
use crate::server::world::{Client, ClientId, World};
use crate::server::Server;

/// The longest a slice holds the lock, unless one entry takes longer.
const SLICE_TIME: Duration = Duration::from_micros(100);
/// The most entries a slice looks at, however fast they go.
const SLICE_ENTRIES: usize = 512;
/// [`SLICE_ENTRIES`], unless a test asked for fewer.
static MAX_ENTRIES: AtomicUsize = AtomicUsize::new(SLICE_ENTRIES);
/// The longest line a slice sends (a numeric has no tags).
const MAX_LINE: usize = 512;
/// Entries between two looks at the clock, when each takes about as long
/// (a few hundred ns); see [`Sliced::slow_entries`] for those that do not.
const CLOCK_EVERY: usize = 16;
/// Work a reply does in slices, back to back (other clients' work runs
/// between them), before it pauses.
const BURST: Duration = Duration::from_micros(250);
/// The pause after a burst: tokio's timer rounds it up to its next
/// millisecond tick.
const PAUSE: Duration = Duration::from_millis(1);
/// How often a reply whose lines another task is writing checks again
/// (see [`wait_for_room`]).
const ROOM_POLL: Duration = Duration::from_millis(1);

/// For tests: slices of at most `entries` entries (1 to 512) from now on,
/// in every server of this process, so that a test's crowd of a few
/// hundred clients is answered in several slices however fast the build.
#[doc(hidden)]
pub fn set_slice_entries(entries: usize) {
    MAX_ENTRIES.store(entries.clamp(1, SLICE_ENTRIES), Ordering::Relaxed);
}

/// What one slice may still spend: time, entries and bytes of output.
pub struct Budget {
    started: Instant,
    entries: usize,
    max_entries: usize,
    /// Entries between two looks at the clock.
    clock_every: usize,
    bytes_left: usize,
    /// The slice has spent its share: it stays spent.
    spent: bool,
}

impl Budget {
    /// A slice's budget, from now; its output at most `bytes`. A slice of
    /// `slow` entries looks at the clock after every one.
    fn new(bytes: usize, slow: bool) -> Budget {
        Budget {
            started: Instant::now(),
            entries: 0,
            max_entries: MAX_ENTRIES.load(Ordering::Relaxed),
            clock_every: if slow { 1 } else { CLOCK_EVERY },
            bytes_left: bytes,
            spent: false,
        }
    }

    /// Counts one entry, looked at, and the bytes of the lines sent for it;
    /// `false` once the slice has spent its share and must end.
    pub fn spend(&mut self, bytes: usize) -> bool {
        self.entries += 1;
        self.bytes_left = self.bytes_left.saturating_sub(bytes);
        // The next line could pass the room left.
        self.spent = self.spent
            || self.bytes_left < MAX_LINE
            || self.entries >= self.max_entries
            || (self.entries % self.clock_every == 0 && self.started.elapsed() >= SLICE_TIME);
        !self.spent
    }

    /// Whether the slice has spent its share (see [`Budget::spend`]).
    pub fn is_spent(&self) -> bool {
        self.spent
    }
}

/// A reply made in slices.
pub trait Sliced: Send + 'static {
    /// Sends the next part of the reply to `me` (the client who asked),
    /// within `budget`; `true` once it has sent its last line.
    fn next_slice(
        &mut self,
        server: &Server,
        world: &World,
        me: &Client,
        budget: &mut Budget,
    ) -> bool;

    /// Whether one entry may take long: a wildcard mask matched against
    /// it costs the mask's length times the text's in the worst case (a
    /// mask of 64 `?` between stars, tens of µs a client), so the
    /// slice looks at the clock after every entry (about 25 ns a look)
    /// instead of every [`CLOCK_EVERY`]th.
    fn slow_entries(&self) -> bool {
        false
    }
}

/// Sends `reply`: its first slice now, under `world` (held by the
/// handler), and the rest, if any, as slow work the connection awaits
/// before the client's next command.
pub fn reply(ctx: &Ctx<'_>, world: &World, mut reply: impl Sliced) -> Flow {
    let server = ctx.server;
    let me = &world.clients[&ctx.id()];
    let room = room_mark(server);
    let outbox = &ctx.session.outbox;
    if reply.next_slice(
        server,
        world,
        me,
        &mut Budget::new(room_left(outbox, room), reply.slow_entries()),
    ) {
        return Flow::Continue;
    }
    let server: Arc<Server> = server.clone();
    let (id, outbox) = (ctx.id(), ctx.session.outbox.clone());
    Flow::Wait(Box::pin(async move {
        // Bounded: each slice moves the reply on by at least one entry,
        // and the connection drops this when it must end.
        let mut worked = Duration::ZERO;
        loop {
            if wait_for_room(&outbox, room / 2).await {
                // The client read what waited: it is alive, though its
                // input (a PONG) is not read until the reply is done.
                outbox.liveness().record_read(Instant::now());
                worked = Duration::ZERO;
            }
            // Lines other clients' commands queued on this thread are
            // written before it turns to them (see `flush::write_held`).
            flush::write_held();
            if worked >= BURST {
                tokio::time::sleep(PAUSE).await;
                worked = Duration::ZERO;
            } else {
                tokio::task::yield_now().await;
            }
            let started = Instant::now();
            if next_slice(&server, id, &mut reply, room_left(&outbox, room)) {
                return None;
            }
            worked += started.elapsed();
        }
    }))
}

/// One slice, under its own hold; `true` when the reply is complete (or
/// its client gone).
fn next_slice(server: &Server, id: ClientId, reply: &mut impl Sliced, bytes: usize) -> bool {
    // Declared before the lock, so the slice's lines are written after it
    // is let go, in one write.
    let _scope = FlushScope::enter();
    let world = server.world_shared();
    let Some(me) = world.clients.get(&id) else {
        return true;
    };
    let mut budget = Budget::new(bytes, reply.slow_entries());
    reply.next_slice(server, &world, me, &mut budget)
}

/// A quarter of the sendq: what a slice fills the client's queue up to.
/// Beyond it the outbox writes each line as it is queued (see
/// `Outbox::is_pressing`), which a slice would then do under the lock;
/// below it the slice's lines are written once it has let the lock go.
/// The next slice waits until half of that has been read, and the queue
/// stays far from the sendq, with room for what others send meanwhile.
fn room_mark(server: &Server) -> usize {
    (server.config().limits.sendq_bytes / 4).max(2)
}

/// What a slice may add to `outbox` before it holds `room`.
fn room_left(outbox: &Outbox, room: usize) -> usize {
    room.saturating_sub(outbox.queued_bytes())
}

/// Waits until no more than `room` bytes wait to be written to the
/// client; `true` if it had to wait.
///
/// Only the connection task polls this (a [`Flow::Wait`] future), and
/// always right after [`Outbox::poll_serve_until_ended`], in the same
/// poll. When the outbox is blocked (the socket was full), that call
/// registered the task for the socket's writability and will write when
/// it drains, then this is polled again: it waits without a timer, so a
/// client that stops reading costs nothing until the keepalive drops it.
/// No wake-up is lost between that call and the check here. That call
/// first stored the task's waker in the outbox, then polled the socket
/// if it found the outbox blocked. A queue blocked then stays blocked
/// until this task writes (nothing else leaves that state), and the
/// socket's readiness wakes it. A queue not blocked then but blocked here
/// became so on another thread, which woke the stored waker. Any other
/// change (a line queued, a sendq passed, a KILL) either wakes the task
/// through the outbox or leaves a state checked again below.
///
/// Otherwise lines wait for another task: one writing them now, a
/// `FlushScope` that writes them when it ends, or the delayed writer.
/// None of those wakes this task when it is done, so a short timer checks
/// again; they last microseconds, or at most `DELAYED_WRITE_WINDOW`.
fn wait_for_room(outbox: &Outbox, room: usize) -> impl Future<Output = bool> + Send + '_ {
    let mut waited = false;
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(move |cx| loop {
        if outbox.queued_bytes() <= room || outbox.is_ended() {
            return Poll::Ready(waited);
        }
        waited = true;
        if outbox.is_blocked() {
            timer = None;
            return Poll::Pending;
        }
        let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(ROOM_POLL)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => timer = None,
            Poll::Pending => return Poll::Pending,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// An outbox whose socket takes little, and the peer that reads it.
    async fn connected(limit: usize) -> (Outbox, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(8192)
            .unwrap();
        (Outbox::new(limit, server), client)
    }

    /// Polls `work` as the connection task polls a reply: each time right
    /// after the outbox's own poll, which writes what a drained socket
    /// takes. Counts the polls of `work` in `polls`.
    async fn as_the_connection_does<F: Future>(
        outbox: &Outbox,
        work: F,
        polls: &AtomicUsize,
    ) -> F::Output {
        let mut work = std::pin::pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(reason) = outbox.poll_serve_until_ended(cx) {
                panic!("the connection ended: {reason}");
            }
            polls.fetch_add(1, Ordering::Relaxed);
            work.as_mut().poll(cx)
        })
        .await
    }

    #[tokio::test]
    async fn a_stalled_reply_waits_without_a_timer_and_goes_on_when_the_client_reads() {
        let (outbox, mut peer) = connected(4 << 20).await;
        let line = Bytes::from(format!("{}\r\n", "x".repeat(998)));
        for _ in 0..1024 {
            assert!(outbox.send(&line));
        }
        // The socket took what it could; the rest waits for it to drain.
        assert!(outbox.is_blocked());
        let room = 64 * 1024;
        assert!(outbox.queued_bytes() > room);

        let polls = Arc::new(AtomicUsize::new(0));
        let waiting = tokio::spawn({
            let (outbox, polls) = (outbox.clone(), polls.clone());
            async move {
                let wait = wait_for_room(&outbox, room);
                as_the_connection_does(&outbox, wait, &polls).await
            }
        });
        // The peer's kernel takes what it has room for, a few writes as its
        // window opens; then nothing moves.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let settled = polls.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let idle = polls.load(Ordering::Relaxed) - settled;
        // A timer would have polled it every millisecond.
        assert!(
            idle <= 1,
            "polled {idle} times in 200 ms while nothing was read"
        );
        assert!(!waiting.is_finished(), "room while nothing was read");

        let reading = tokio::spawn(async move {
            let mut buffer = vec![0; 1 << 20];
            let mut read = 0;
            while read < 1024 * 1000 {
                read += peer.read(&mut buffer).await.unwrap();
            }
        });
        let waited = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert!(waited.expect("room once the client reads").unwrap());
        assert!(outbox.queued_bytes() <= room);
        reading.await.unwrap();
    }

    #[test]
    fn a_slice_ends_when_it_has_spent_its_entries_or_its_room() {
        let mut budget = Budget::new(usize::MAX, false);
        let looked_at = (0..10 * SLICE_ENTRIES)
            .take_while(|_| budget.spend(0))
            .count();
        assert!(looked_at < SLICE_ENTRIES, "{looked_at} entries");

        let mut budget = Budget::new(2000, false);
        assert!(budget.spend(400));
        assert!(budget.spend(1000));
        assert!(!budget.spend(100), "no room left for a line of 512 bytes");
    }

    #[test]
    fn a_slice_ends_when_its_time_is_up() {
        let mut budget = Budget::new(usize::MAX, false);
        budget.started -= SLICE_TIME;
        let looked_at = (0..SLICE_ENTRIES).take_while(|_| budget.spend(0)).count();
        assert_eq!(
            looked_at,
            CLOCK_EVERY - 1,
            "the first look at the clock ends it"
        );
        assert!(!budget.spend(0) && budget.is_spent(), "and it stays ended");
    }

    #[test]
    fn a_slice_of_slow_entries_looks_at_the_clock_after_each() {
        let mut budget = Budget::new(usize::MAX, true);
        assert!(budget.spend(0), "time left");
        budget.started -= SLICE_TIME;
        assert!(!budget.spend(0), "the next entry ends it");
    }
}
