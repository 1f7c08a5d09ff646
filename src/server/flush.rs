//! Deferred socket writes: a [`FlushScope`] puts off the writes of one batch
//! of input until it ends, and [`DelayedWrites`] writes lines that may wait
//! for company (see `Outbox::send_delayed`).

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::outbox::{Outbox, DELAYED_WRITE_WINDOW};

/// Outboxes a scope's or the delayed writer's list keeps room for.
const KEPT_LIST_CAPACITY: usize = 4096;

#[derive(Default)]
struct Deferred {
    active: bool,
    /// Written when the scope ends.
    urgent: Vec<Outbox>,
    /// Handed to the scope's [`DelayedWrites`] when it ends.
    delayed: Vec<Outbox>,
}

thread_local! {
    static DEFERRED: RefCell<Deferred> = RefCell::default();
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
        let outermost = DEFERRED.with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            !std::mem::replace(&mut deferred.active, true)
        });
        FlushScope {
            outermost,
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
        let (mut urgent, mut delayed) = DEFERRED.with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            deferred.active = false;
            (
                std::mem::take(&mut deferred.urgent),
                std::mem::take(&mut deferred.delayed),
            )
        });
        for outbox in &urgent {
            outbox.flush_scheduled();
        }
        match self.delayed_writes {
            Some(delayed_writes) if !delayed.is_empty() => delayed_writes.add(&mut delayed),
            _ => {
                for outbox in &delayed {
                    outbox.flush_delayed();
                }
            }
        }
        // Hand the lists' allocations back for the next scope, unless one
        // huge broadcast made them too big to keep for good.
        urgent.clear();
        delayed.clear();
        DEFERRED.with(|deferred| {
            let mut deferred = deferred.borrow_mut();
            if deferred.urgent.capacity() < urgent.capacity()
                && urgent.capacity() <= KEPT_LIST_CAPACITY
            {
                deferred.urgent = urgent;
            }
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
