//! A second thread for the socket writes of a large fan-out.
//!
//! A line to a channel of 200 costs the thread that fans it out 199 `send`s
//! in a row, about 5.5 µs each on loopback, nearly all of it the kernel's
//! TCP path: the last member reads the line a millisecond after the first.
//! When a thread has [`SHARE_AT`] or more outboxes to write and this thread
//! is idle, the two write the list together, each taking the next outbox
//! not yet taken, so the caller never waits for the second writer: if that
//! thread is slow to get a CPU, the caller simply writes more of the list
//! itself. Only an outbox the second writer has already taken waits for it.
//!
//! Measured with 4 senders pacing 500 lines a second into 200 members, p99
//! latency fell by a quarter (1.8–1.9 ms to 1.35–1.45 ms) and the CPU per
//! delivery by 3–8%; 4 senders flooding the same channel cost 1–4% more
//! CPU per delivery, the two threads then competing for cores the other
//! work already fills.
//!
//! On Linux it is kept off the CPU of the thread that hands it a list (see
//! `placement.rs`), so that the two do not take turns on one CPU.
//!
//! It helps with one list at a time: while it does, every other thread
//! writes its own lists alone, as before, so nothing ever queues for it.
//! The thread is started on first use and serves every server in the
//! process (an embedding program's too).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};

use super::outbox::Outbox;

#[cfg(target_os = "linux")]
mod placement;

/// Where the second writer may run (Linux only, see `placement.rs`).
#[cfg(target_os = "linux")]
static PLACEMENT: placement::Placement = placement::Placement::new();

/// Fewer outboxes than this are written by the thread that has them: below
/// it, waking this thread costs more than it saves.
pub(super) const SHARE_AT: usize = 64;

/// The thread is helping with a list (or one is on its way to it).
static BUSY: AtomicBool = AtomicBool::new(false);
/// `None` when the thread could not be started: everyone writes alone.
static LISTS: OnceLock<Option<SyncSender<Arc<SharedList>>>> = OnceLock::new();
/// Outboxes the second writer took from a list: tests check that it helped.
#[cfg(test)]
static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Outboxes to write, and the index of the next one nobody has taken.
struct SharedList {
    outboxes: Vec<Outbox>,
    next: AtomicUsize,
}

impl SharedList {
    /// Writes outboxes not yet taken until none is left; returns how many
    /// this caller wrote.
    fn write_untaken(&self) -> usize {
        let mut written = 0;
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(outbox) = self.outboxes.get(index) else {
                return written;
            };
            outbox.flush_scheduled();
            written += 1;
        }
    }
}

/// Writes every outbox of `outboxes`, with the second writer's help when
/// there are many and it is idle. Returns `false`, leaving `outboxes` to
/// the caller, when it did not help.
pub(super) fn write_shared(outboxes: &mut Vec<Outbox>) -> bool {
    if outboxes.len() < SHARE_AT || BUSY.swap(true, Ordering::Acquire) {
        return false;
    }
    let Some(lists) = LISTS.get_or_init(start) else {
        BUSY.store(false, Ordering::Release);
        return false;
    };
    let list = Arc::new(SharedList {
        outboxes: std::mem::take(outboxes),
        next: AtomicUsize::new(0),
    });
    #[cfg(target_os = "linux")]
    PLACEMENT.keep_off_this_cpu();
    // The channel has room for the one list `BUSY` lets through; a send
    // fails only if the thread is gone, and then this thread writes alone.
    if lists.try_send(list.clone()).is_err() {
        BUSY.store(false, Ordering::Release);
    }
    list.write_untaken();
    true
}

/// Outboxes the second writer has taken from lists since the process
/// started.
#[cfg(test)]
pub(super) fn outboxes_taken() -> u64 {
    TAKEN.load(Ordering::Relaxed)
}

fn start() -> Option<SyncSender<Arc<SharedList>>> {
    let (lists, incoming) = sync_channel::<Arc<SharedList>>(1);
    let started = std::thread::Builder::new()
        .name("parlor-writer".into())
        .spawn(move || {
            #[cfg(target_os = "linux")]
            let _placed = PLACEMENT.register_this_thread();
            for list in incoming {
                // Clears BUSY even if a write panics, so that the thread's
                // death leaves every caller writing alone, not waiting.
                let _idle_when_done = ClearBusyOnDrop;
                let _taken = list.write_untaken();
                #[cfg(test)]
                TAKEN.fetch_add(_taken as u64, Ordering::Relaxed);
                // The outboxes are let go before another list comes, so a
                // closed client's outbox is not kept alive by this thread.
                drop(list);
            }
        });
    match started {
        Ok(_) => Some(lists),
        Err(error) => {
            tracing::warn!(
                %error,
                "cannot start the second writer thread; fan-outs are written by one thread"
            );
            None
        }
    }
}

struct ClearBusyOnDrop;

impl Drop for ClearBusyOnDrop {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}
