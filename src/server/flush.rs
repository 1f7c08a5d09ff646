//! Deferred socket writes: a [`FlushScope`] puts off the writes of one batch
//! of input until it ends (or, on a runtime thread that runs
//! [`flush_on_park`] when it goes idle, until then), and [`DelayedWrites`]
//! writes lines that may wait for company (see `Outbox::send_delayed`).

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::outbox::{Outbox, DELAYED_WRITE_WINDOW};
use super::second_writer;

/// Outboxes a scope's or the delayed writer's list keeps room for.
const KEPT_LIST_CAPACITY: usize = 4096;

/// Input scopes whose writes a thread may hold back before it makes them
/// anyway: a thread that never runs out of work never goes idle, and this
/// bounds a line's wait to a few batches of that thread's work.
pub(super) const MAX_HELD_SCOPES: u32 = 8;

#[derive(Default)]
struct Deferred {
    active: bool,
    /// Written when the scope ends, or when the thread goes idle.
    urgent: Vec<Outbox>,
    /// Handed to the scope's [`DelayedWrites`] when it ends.
    delayed: Vec<Outbox>,
    /// [`flush_on_park`] runs on this thread: input scopes may leave their
    /// writes to it.
    written_when_idle: bool,
    /// Input scopes ended since the urgent writes were last made.
    held_scopes: u32,
}

thread_local! {
    static DEFERRED: RefCell<Deferred> = RefCell::default();
}

/// Makes the writes this thread's input scopes held back. Meant for the
/// runtime's `on_thread_park` hook: once it has run on a thread, that
/// thread's input scopes leave their writes to it (see
/// [`FlushScope::enter_for_input`]). Without it every scope writes when it
/// ends.
pub fn flush_on_park() {
    DEFERRED.with(|deferred| deferred.borrow_mut().written_when_idle = true);
    write_held();
}

/// Makes the writes this thread's input scopes held back, now. tokio skips
/// the park hook when a task on the thread yielded (it only polls for
/// events, then runs that task again): a task that can keep a thread busy
/// that way without handling input (the accept loop in a connection
/// storm) calls this, so that it never holds other clients' lines back.
pub fn write_held() {
    let urgent = DEFERRED.with(|deferred| {
        let mut deferred = deferred.borrow_mut();
        if deferred.active {
            return None;
        }
        deferred.held_scopes = 0;
        (!deferred.urgent.is_empty()).then(|| std::mem::take(&mut deferred.urgent))
    });
    if let Some(urgent) = urgent {
        write_urgent(urgent);
    }
}

/// Writes the outboxes of `urgent` (a long list with the second writer's
/// help), then keeps its allocation for the next list, unless one huge
/// broadcast made it too big to keep for good.
fn write_urgent(mut urgent: Vec<Outbox>) {
    if second_writer::write_shared(&mut urgent) {
        return;
    }
    for outbox in &urgent {
        outbox.flush_scheduled();
    }
    urgent.clear();
    DEFERRED.with(|deferred| {
        let mut deferred = deferred.borrow_mut();
        // Never replaces outboxes recorded meanwhile: they would wait
        // for a write that never comes.
        if deferred.urgent.is_empty()
            && deferred.urgent.capacity() < urgent.capacity()
            && urgent.capacity() <= KEPT_LIST_CAPACITY
        {
            deferred.urgent = urgent;
        }
    });
}

/// Records `outbox` for the scope active on this thread, with its urgent
/// or its delayed lines; `false` if no scope is active.
pub(super) fn defer_to_scope(outbox: &Outbox, delayed: bool) -> bool {
    DEFERRED.with(|deferred| {
        let mut deferred = deferred.borrow_mut();
        if deferred.active {
            let list = if delayed {
                &mut deferred.delayed
            } else {
                &mut deferred.urgent
            };
            list.push(outbox.clone());
        }
        deferred.active
    })
}

/// Puts off socket writes made on this thread until the scope ends, so that
/// a batch of commands costs each recipient one write instead of one per
/// line. Scopes nest; the outermost one writes.
///
/// It is not `Send`, so it cannot be held across an `.await`: a task could
/// move to another thread and leave lines unwritten behind it.
pub struct FlushScope<'a> {
    outermost: bool,
    /// The writes may wait until the thread goes idle.
    may_hold: bool,
    /// Where delayed lines go; without it they are written with the rest.
    delayed_writes: Option<&'a DelayedWrites>,
    _not_send: PhantomData<*const ()>,
}

impl FlushScope<'_> {
    /// A scope that writes everything, delayed lines included, when it ends.
    pub fn enter() -> FlushScope<'static> {
        FlushScope::enter_with(None)
    }

    /// A scope that hands delayed lines to `delayed_writes`.
    pub fn enter_with(delayed_writes: Option<&DelayedWrites>) -> FlushScope<'_> {
        FlushScope::begin(delayed_writes, false)
    }

    /// The scope of one batch of a client's input, which hands delayed
    /// lines to `delayed_writes`. On a thread that runs [`flush_on_park`]
    /// its writes wait until the thread goes idle, or until
    /// [`MAX_HELD_SCOPES`] such scopes have ended: a recipient that several
    /// senders' batches reach in one stretch of the thread's work then gets
    /// one write for all of them instead of one each. That cut the CPU per
    /// delivery by a quarter with 4 senders in a 200-member channel, and by
    /// 7% with 500 pairs of private messages (`parlor-bench`). The
    /// lines are in the recipients' queues already; only the syscall waits.
    pub fn enter_for_input(delayed_writes: &DelayedWrites) -> FlushScope<'_> {
        FlushScope::begin(Some(delayed_writes), true)
    }

    fn begin(delayed_writes: Option<&DelayedWrites>, may_hold: bool) -> FlushScope<'_> {
        let outermost = DEFERRED.with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            !std::mem::replace(&mut deferred.active, true)
        });
        FlushScope {
            outermost,
            may_hold,
            delayed_writes,
            _not_send: PhantomData,
        }
    }
}

impl Drop for FlushScope<'_> {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let (urgent, mut delayed) = DEFERRED.with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            deferred.active = false;
            let hold = self.may_hold
                && deferred.written_when_idle
                && deferred.held_scopes + 1 < MAX_HELD_SCOPES;
            let urgent = if hold {
                deferred.held_scopes += 1;
                None
            } else {
                deferred.held_scopes = 0;
                Some(std::mem::take(&mut deferred.urgent))
            };
            (urgent, std::mem::take(&mut deferred.delayed))
        });
        if let Some(urgent) = urgent {
            write_urgent(urgent);
        }
        match self.delayed_writes {
            Some(delayed_writes) if !delayed.is_empty() => delayed_writes.add(&mut delayed),
            _ => {
                for outbox in &delayed {
                    outbox.flush_delayed();
                }
            }
        }
        // Hand the list's allocation back for the next scope, unless one
        // huge broadcast made it too big to keep for good.
        delayed.clear();
        DEFERRED.with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            if deferred.delayed.capacity() < delayed.capacity()
                && delayed.capacity() <= KEPT_LIST_CAPACITY
            {
                deferred.delayed = delayed;
            }
        });
    }
}

/// The outboxes holding delayed lines, written by one task
/// ([`DelayedWrites::run`]) [`DELAYED_WRITE_WINDOW`] after the first of them
/// arrived. An idle server has no timer running.
#[derive(Debug, Default)]
pub struct DelayedWrites {
    pending: Mutex<Vec<Outbox>>,
    wake: Notify,
}

impl DelayedWrites {
    fn add(&self, outboxes: &mut Vec<Outbox>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = pending.is_empty();
        pending.append(outboxes);
        drop(pending);
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Writes delayed lines until `stop` resolves. Lines still queued then
    /// are written by each connection as it closes.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                () = stop.as_mut() => return,
                () = self.wake.notified() => {}
            }
            tokio::time::sleep(DELAYED_WRITE_WINDOW).await;
            std::mem::swap(
                &mut batch,
                &mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()),
            );
            for outbox in batch.drain(..) {
                outbox.flush_delayed();
            }
            if batch.capacity() > KEPT_LIST_CAPACITY {
                batch = Vec::new();
            }
        }
    }
}
