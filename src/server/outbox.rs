//! A client's outbound queue (its "sendq"), written straight to its socket.
//!
//! Senders push shared `Bytes` handles and write them with non-blocking
//! vectored writes from the sender's own task: no writer task per client, no
//! wakeup per line. Inside a [`FlushScope`](super::flush::FlushScope) (one batch of input lines) the
//! writes are put off until the batch ends, so a recipient of many lines gets
//! them in one syscall. When a socket cannot take more, the client's own
//! connection task waits for it to drain ([`Outbox::serve_until_ended`]).
//! Lines nobody waits for ([`Outbox::send_delayed`]) wait up to
//! [`DELAYED_WRITE_WINDOW`] for company. A client whose queue passes its
//! byte limit is cut off instead of growing memory or slowing down the
//! sender.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::flush::defer_to_scope;
use super::keepalive::Liveness;
use super::labeled;
use super::wire::Wire;
use crate::proto::tags::{self, TagMask};

/// How long an ended connection may take to receive its last lines.
pub const CLOSE_FLUSH_LIMIT: Duration = Duration::from_secs(10);
/// How long a client cut off for its sendq gets to take the ERROR line.
const OVERFLOW_NOTICE_LIMIT: Duration = Duration::from_secs(1);
/// How long a line sent with [`Outbox::send_delayed`] may wait. Short
/// enough that nobody sees it, long enough that in a join storm or a mass
/// QUIT each member gets many lines per write instead of one write each.
pub const DELAYED_WRITE_WINDOW: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Closed by the server: queued lines are still flushed.
    Closing,
    /// The sendq limit was passed: queued lines are dropped.
    Overflowed,
    /// The socket failed: nothing more can be written.
    Broken,
}

/// Who writes the queued lines next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Nobody needs to: the next send writes at once or schedules itself.
    Idle,
    /// Only delayed lines are queued: [`DelayedWrites`](super::flush::DelayedWrites) writes them soon.
    Delayed,
    /// A [`FlushScope`](super::flush::FlushScope) holds this outbox and writes it when it ends.
    Scheduled,
    /// A task is writing, without the lock; it also writes what is queued
    /// meanwhile before it lets go.
    Writing,
    /// The socket was full: the connection task writes when it drains.
    Blocked,
}

#[derive(Debug)]
#[repr(C)] // Field order matters: see `Shared`.
struct Queue {
    bytes: usize,
    state: State,
    writer: Writer,
    lines: VecDeque<Bytes>,
    /// Why the connection must end, when asked by another task (KILL) or
    /// after a write error.
    end_reason: Option<String>,
    /// Wakes the connection task: the socket is full, or it must end. A
    /// waker kept here, rather than a `Notify` and the futures that wait on
    /// it, keeps an idle connection's task small.
    connection_task: Option<Waker>,
}

impl Queue {
    fn must_end(&self) -> bool {
        self.state != State::Open || self.end_reason.is_some()
    }
}

/// In declaration order, so that what queueing a line touches (`capturing`,
/// `limit`, the lock and the head of `Queue`, `tag_mask`) lies on the first
/// two cache lines after the `Arc`'s counts, and the two flags a
/// [`Recipient`] reads sit one on each: reading them brings in everything
/// the push then needs. Only speed depends on it.
#[derive(Debug)]
#[repr(C)]
struct Shared {
    /// Set while a labeled command of this client runs: lines its
    /// connection's thread queues then may be part of the reply (see
    /// `labeled`).
    capturing: AtomicBool,
    /// The sendq limit; `u32` (config allows at most 1 GiB) to share the
    /// first cache line.
    limit: u32,
    // A blocking mutex: every critical section is a push or a swap and
    // none crosses an `.await`. Writes happen outside it (one writer at a
    // time, see `Writer::Writing`), so a sender never waits for a syscall.
    queue: Mutex<Queue>,
    /// The tags this client enabled (a [`TagMask`]'s bits). Lines are
    /// built once with all their tags; each client gets the view its
    /// capabilities allow (see [`tags::view`]).
    tag_mask: AtomicU8,
    wire: Wire,
    // Kept here, in the one allocation a connection shares with the
    // network state, rather than in one more of its own.
    liveness: Liveness,
}

/// The sending side of a client's connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    pub fn new(limit: usize, wire: impl Into<Wire>) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                capturing: AtomicBool::new(false),
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
                queue: Mutex::new(Queue {
                    bytes: 0,
                    state: State::Open,
                    writer: Writer::Idle,
                    lines: VecDeque::new(),
                    end_reason: None,
                    connection_task: None,
                }),
                tag_mask: AtomicU8::new(TagMask::NONE.bits()),
                wire: wire.into(),
                liveness: Liveness::default(),
            }),
        }
    }

    /// The client's connection, for its connection task to read from.
    pub fn wire(&self) -> &Wire {
        &self.shared.wire
    }

    /// When the client was last heard from, for the keepalive sweep.
    pub fn liveness(&self) -> &Liveness {
        &self.shared.liveness
    }

    fn limit(&self) -> usize {
        self.shared.limit as usize
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue
        // half-updated (the byte count is adjusted with each line moved), so
        // a poisoned lock is usable.
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_tag_mask(&self, mask: TagMask) {
        self.shared.tag_mask.store(mask.bits(), Ordering::Relaxed);
    }

    pub fn tag_mask(&self) -> TagMask {
        TagMask::from_bits(self.shared.tag_mask.load(Ordering::Relaxed))
    }

    /// Whether a labeled command's reply is being collected from this
    /// client's lines.
    pub fn is_capturing(&self) -> bool {
        self.shared.capturing.load(Ordering::Relaxed)
    }

    pub(super) fn set_capturing(&self, capturing: bool) {
        self.shared.capturing.store(capturing, Ordering::Relaxed);
    }

    /// What every clone of this outbox shares, as an address.
    pub(super) fn identity(&self) -> *const () {
        Arc::as_ptr(&self.shared).cast()
    }

    /// Queues a line already made for this client (a history batch, a
    /// labeled reply): its tags are not filtered again. A labeled command's
    /// reply still takes it (a history batch nests in the labeled one).
    pub fn send_as_is(&self, line: Bytes) -> bool {
        match self.captured(line) {
            Some(line) => self.push(line),
            None => true,
        }
    }

    /// `line` as this client receives it, unless it is captured into the
    /// reply to a labeled command.
    fn to_queue(&self, line: &Bytes) -> Option<Bytes> {
        self.captured(self.view(line))
    }

    /// `line`, unless the reply to a labeled command takes it.
    fn captured(&self, line: Bytes) -> Option<Bytes> {
        self.captured_if(self.is_capturing(), line)
    }

    /// [`Outbox::captured`] with the `capturing` flag already read.
    fn captured_if(&self, capturing: bool, line: Bytes) -> Option<Bytes> {
        if capturing {
            return labeled::capture(self, line);
        }
        Some(line)
    }

    /// `line` as this client receives it: with the tags it asked for.
    pub fn view(&self, line: &Bytes) -> Bytes {
        tags::view(line, self.tag_mask())
    }

    /// Queues one line. Returns `false` if the client is gone or this line
    /// passed its sendq limit (the connection is then being cut off).
    pub fn send(&self, line: &Bytes) -> bool {
        match self.to_queue(line) {
            Some(line) => self.push(line),
            None => true,
        }
    }

    fn push(&self, line: Bytes) -> bool {
        let mut queue = self.lock();
        if queue.state != State::Open {
            return false;
        }
        if queue.bytes + line.len() > self.limit() {
            queue.state = State::Overflowed;
            crate::metrics::sendq_exceeded();
            queue.lines.clear();
            queue.bytes = 0;
            wake_connection_task(queue);
            return false;
        }
        self.enqueue(queue, line);
        true
    }

    /// Adds `line` to the queue and sees that it gets written.
    fn enqueue<'a>(&'a self, mut queue: MutexGuard<'a, Queue>, line: Bytes) {
        queue.bytes += line.len();
        queue.lines.push_back(line);
        self.write_or_schedule(queue);
    }

    /// [`Outbox::push`] for lines joined in one piece, unless the queue
    /// would then pass the mark where it is written at once: `None`, having
    /// queued nothing. Near its limit a recipient's lines must go one by
    /// one, each written before the next is counted, as when sent alone;
    /// counted as one, they could pass the limit for a client that reads.
    fn push_piece(&self, piece: &Bytes) -> Option<bool> {
        let queue = self.lock();
        if queue.state != State::Open {
            return Some(false);
        }
        if queue.bytes + piece.len() > self.limit() / 4 {
            return None;
        }
        self.enqueue(queue, piece.clone());
        Some(true)
    }

    /// Queues a last line (typically `ERROR`), then closes: what is queued
    /// is still written, and [`Outbox::finish`] shuts the socket.
    pub fn close_with(&self, last_line: Bytes) {
        let last_line = self.view(&last_line);
        let mut queue = self.lock();
        if queue.state == State::Open {
            queue.bytes += last_line.len();
            queue.lines.push_back(last_line);
            queue.state = State::Closing;
            // The connection task is woken first: writing may take the
            // lock away (see `Writer::Writing`).
            let task = queue.connection_task.take();
            self.write_or_schedule(queue);
            if let Some(task) = task {
                task.wake();
            }
        } else {
            wake_connection_task(queue);
        }
    }

    /// Asks the connection to end with `reason`. Only the connection's own
    /// task removes its client from the network, so its handlers can rely on
    /// their client being there; other tasks (KILL) ask through here.
    pub fn request_disconnect(&self, reason: String) {
        let mut queue = self.lock();
        queue.end_reason.get_or_insert(reason);
        wake_connection_task(queue);
    }

    /// Why the connection must end, once it must.
    pub fn end_reason(&self) -> String {
        let queue = self.lock();
        match (&queue.end_reason, queue.state) {
            (_, State::Overflowed) => "SendQ exceeded".to_owned(),
            (Some(reason), _) => reason.clone(),
            (None, _) => "Connection closed".to_owned(),
        }
    }

    pub fn is_overflowed(&self) -> bool {
        self.lock().state == State::Overflowed
    }

    pub fn is_ended(&self) -> bool {
        self.lock().must_end()
    }

    /// Whether a write failed: the peer is gone.
    pub fn is_broken(&self) -> bool {
        self.lock().state == State::Broken
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Whether the queue waits for a full socket to drain: only the
    /// connection task leaves that state (see `poll_serve_until_ended`).
    pub fn is_blocked(&self) -> bool {
        self.lock().writer == Writer::Blocked
    }

    /// Queues a line nobody waits for (another member's JOIN, PART or
    /// QUIT): inside a [`FlushScope`](super::flush::FlushScope) that hands its delayed lines to a
    /// [`DelayedWrites`](super::flush::DelayedWrites), it is written with the client's next urgent line
    /// or within [`DELAYED_WRITE_WINDOW`], whichever comes first. Order is
    /// kept: it is the same queue.
    pub fn send_delayed(&self, line: &Bytes) -> bool {
        let Some(line) = self.to_queue(line) else {
            return true;
        };
        let mut queue = self.lock();
        if queue.state != State::Open {
            return false;
        }
        if queue.bytes + line.len() > self.limit() {
            drop(queue);
            // Same overflow as any other line.
            return self.push(line);
        }
        queue.bytes += line.len();
        queue.lines.push_back(line);
        if self.is_pressing(&queue) {
            self.write_or_schedule(queue);
        } else if queue.writer == Writer::Idle {
            if defer_to_scope(self, true) {
                queue.writer = Writer::Delayed;
            } else {
                self.write_queued(queue);
            }
        } else if queue.writer != Writer::Delayed {
            self.write_or_schedule(queue);
        }
        true
    }

    /// Whether so much is queued that waiting for the end of the batch (or
    /// for company) could pass the sendq limit on a socket that never
    /// pushed back: a JOIN to many big channels queues a lot of NAMES.
    fn is_pressing(&self, queue: &Queue) -> bool {
        queue.bytes > self.limit() / 4
    }

    fn write_or_schedule<'a>(&'a self, mut queue: MutexGuard<'a, Queue>) {
        match queue.writer {
            // Someone is already responsible for writing these lines.
            Writer::Writing | Writer::Blocked => {}
            Writer::Scheduled => {
                if self.is_pressing(&queue) {
                    // The scope finds it written and moves on.
                    self.write_queued(queue);
                }
            }
            Writer::Idle | Writer::Delayed => {
                if !self.is_pressing(&queue) && defer_to_scope(self, false) {
                    queue.writer = Writer::Scheduled;
                } else {
                    self.write_queued(queue);
                }
            }
        }
    }

    /// Writes as much of the queue as the socket takes now, without waiting,
    /// unless another task is already writing (it then writes these lines
    /// too). Afterwards the writer is `Idle` (all written, or nothing more
    /// can be) or `Blocked` (the connection task was told to finish the job).
    fn write_queued<'a>(&'a self, mut queue: MutexGuard<'a, Queue>) {
        if queue.writer == Writer::Writing {
            return;
        }
        queue.writer = Writer::Writing;
        // Bytes the wire took but could not send yet (sealed TLS records)
        // are the writer's too: nobody else would send them.
        while (!queue.lines.is_empty() || self.shared.wire.has_pending_output())
            && matches!(queue.state, State::Open | State::Closing)
        {
            // The lines are taken out for the syscall, so that senders only
            // wait for a push, never for the socket.
            let mut lines = std::mem::take(&mut queue.lines);
            drop(queue);
            let result = self.shared.wire.write_some(&mut lines);
            queue = self.lock();
            if matches!(queue.state, State::Open | State::Closing) {
                // Lines queued meanwhile go after what is left of these.
                lines.append(&mut queue.lines);
                queue.lines = lines;
            }
            match result {
                Ok(written) => queue.bytes = queue.bytes.saturating_sub(written),
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    queue.writer = Writer::Blocked;
                    wake_connection_task(queue);
                    return;
                }
                Err(error) => {
                    queue.state = State::Broken;
                    queue.lines.clear();
                    queue.bytes = 0;
                    queue
                        .end_reason
                        .get_or_insert_with(|| format!("Write error: {error}"));
                    if let Some(task) = queue.connection_task.take() {
                        task.wake();
                    }
                }
            }
        }
        if queue.lines.is_empty() {
            // An emptied queue gives its room back: most clients sit idle
            // for hours between bursts, and one small allocation per write
            // costs less than keeping it for all of them.
            queue.lines = VecDeque::new();
        }
        queue.writer = Writer::Idle;
    }

    /// Run by the client's connection task while it serves the client:
    /// writes whatever a full socket held back as soon as it drains, and
    /// resolves, with the reason, when the connection must end (KILL,
    /// sendq overflow, a write error, a close).
    pub async fn serve_until_ended(&self) -> String {
        poll_fn(|cx| self.poll_serve_until_ended(cx)).await
    }

    /// [`Outbox::serve_until_ended`] as a poll, for a connection task that
    /// waits on its socket at the same time without a future of its own.
    pub fn poll_serve_until_ended(&self, cx: &mut Context<'_>) -> Poll<String> {
        loop {
            let mut queue = self.lock();
            if queue.must_end() {
                drop(queue);
                return Poll::Ready(self.end_reason());
            }
            // Registered before the socket is polled, so that a wake-up
            // meanwhile is not lost.
            match &mut queue.connection_task {
                Some(task) if task.will_wake(cx.waker()) => {}
                task => *task = Some(cx.waker().clone()),
            }
            if queue.writer != Writer::Blocked {
                return Poll::Pending;
            }
            drop(queue);
            match self.shared.wire.poll_write_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    // A write that still finds the socket full clears its
                    // readiness, so this loop does not spin.
                    let queue = self.lock();
                    if queue.writer == Writer::Blocked {
                        self.write_queued(queue);
                    }
                }
                Poll::Ready(Err(error)) => {
                    self.request_disconnect(format!("Write error: {error}"));
                }
            }
        }
    }

    /// Run by the connection task once the client has left: writes what is
    /// still queued (giving up after [`CLOSE_FLUSH_LIMIT`], so a peer that
    /// never reads cannot keep the task), tells an overflowed client why it
    /// was cut off, and shuts the socket.
    pub async fn finish(&self) {
        let give_up = Instant::now() + CLOSE_FLUSH_LIMIT;
        loop {
            let (state, writer) = {
                let queue = self.lock();
                if matches!(queue.state, State::Open | State::Closing) {
                    self.write_queued(queue);
                } else {
                    drop(queue);
                }
                let queue = self.lock();
                let writable = matches!(queue.state, State::Open | State::Closing);
                if writable
                    && queue.lines.is_empty()
                    && queue.writer != Writer::Writing
                    && !self.shared.wire.has_pending_output()
                {
                    break;
                }
                (queue.state, queue.writer)
            };
            if writer == Writer::Writing {
                // Another task is in the middle of a write: let it finish,
                // so that nothing is written between its lines.
                if Instant::now() >= give_up {
                    break;
                }
                // A task that yields keeps tokio from running the park
                // hook on this thread: what it holds back goes out first.
                super::flush::write_held();
                tokio::task::yield_now().await;
                continue;
            }
            match state {
                State::Overflowed => {
                    self.send_overflow_notice().await;
                    break;
                }
                State::Broken => break,
                State::Open | State::Closing => {}
            }
            if !self.writable_before(give_up).await {
                break;
            }
        }
        self.shared.wire.shutdown();
    }

    async fn send_overflow_notice(&self) {
        // The leading CRLF ends any line cut short by the overflow.
        let notice = Bytes::from_static(b"\r\nERROR :SendQ exceeded\r\n");
        let mut lines = VecDeque::from([notice]);
        let give_up = Instant::now() + OVERFLOW_NOTICE_LIMIT;
        while !lines.is_empty() {
            match self.shared.wire.write_some(&mut lines) {
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    if !self.writable_before(give_up).await {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Waits until the socket can take more; `false` if `deadline` came
    /// first or the socket failed.
    async fn writable_before(&self, deadline: Instant) -> bool {
        // Boxed: the timer exists only while a closing connection waits,
        // and an unboxed one would make every connection's task bigger for
        // its whole life.
        let mut timer = Box::pin(tokio::time::sleep_until(deadline));
        poll_fn(|cx| match self.shared.wire.poll_write_ready(cx) {
            Poll::Ready(result) => Poll::Ready(result.is_ok()),
            Poll::Pending => timer.as_mut().poll(cx).map(|()| false),
        })
        .await
    }

    /// Sends what the wire made on its own while reading (a TLS alert or
    /// key update), unless a writer is already at work and will.
    pub fn flush_wire(&self) {
        if self.shared.wire.has_pending_output() {
            self.flush_if(Writer::Idle);
        }
    }

    /// Writes the lines a [`FlushScope`](super::flush::FlushScope) put off, before the scope ends.
    pub fn flush_scheduled(&self) {
        self.flush_if(Writer::Scheduled);
    }

    /// Writes the delayed lines, unless someone already did.
    pub(super) fn flush_delayed(&self) {
        self.flush_if(Writer::Delayed);
    }

    /// Writes what is queued if the writer is still `expected`: otherwise
    /// someone else already wrote it or is responsible for it.
    fn flush_if(&self, expected: Writer) {
        let queue = self.lock();
        if queue.writer == expected {
            self.write_queued(queue);
        }
    }
}

/// Wakes the connection task, after letting go of the lock it would take.
fn wake_connection_task(mut queue: MutexGuard<'_, Queue>) {
    let task = queue.connection_task.take();
    drop(queue);
    if let Some(task) = task {
        task.wake();
    }
}

mod burst;
mod recipient;

pub use self::burst::Burst;
pub use self::recipient::Recipient;

#[cfg(test)]
mod tests;
