//! Counters on the fan-out path, kept in shards per thread.
//!
//! A counter every command thread adds to on every message would be one
//! cache line passed from core to core at each add. Here each thread adds
//! to a shard of its own (taken in turn the first time it counts), a
//! cache line apart from the others, so the add is an uncontended atomic
//! operation on a line that stays in its core's cache; a scrape sums the
//! shards. More threads than shards (the blocking pool can grow large)
//! share shards: the adds stay atomic, so nothing is lost, they only
//! share a line again.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The counters kept here.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hot {
    RelayedPrivmsg,
    RelayedNotice,
    RelayedTagmsg,
    Deliveries,
    BytesWritten,
}

const COUNTERS: usize = 5;

/// Enough for the command threads, the second writer and the few other
/// threads that write to clients, on any machine we run on.
const SHARDS: usize = 32;

/// Two cache lines: a neighbour's adjacent-line prefetch does not pull
/// another thread's shard in.
#[repr(align(128))]
struct Shard([AtomicU64; COUNTERS]);

static SHARDS_OF_THREADS: [Shard; SHARDS] =
    [const { Shard([const { AtomicU64::new(0) }; COUNTERS]) }; SHARDS];

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn my_shard() -> &'static Shard {
    let index = MY_SHARD.with(|mine| {
        let index = mine.get();
        if index < SHARDS {
            return index;
        }
        let index = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
        mine.set(index);
        index
    });
    &SHARDS_OF_THREADS[index]
}

#[inline]
pub(super) fn add(counter: Hot, count: u64) {
    my_shard().0[counter as usize].fetch_add(count, Relaxed);
}

/// The counter's total over every thread.
pub(super) fn sum(counter: Hot) -> u64 {
    SHARDS_OF_THREADS
        .iter()
        .map(|shard| shard.0[counter as usize].load(Relaxed))
        .fold(0, u64::wrapping_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_from_many_threads_all_count() {
        let before = sum(Hot::Deliveries);
        // More threads than shards: some share one.
        let threads: Vec<_> = (0..SHARDS + 8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        add(Hot::Deliveries, 3);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Other tests in this process may count deliveries too.
        assert!(sum(Hot::Deliveries) - before >= (SHARDS as u64 + 8) * 3000);
    }
}
