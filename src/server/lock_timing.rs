//! The lock on the network state, and, when asked for, how long each hold
//! of it lasts.
//!
//! Every change to the network and every fan-out to a channel holds the
//! one lock (see `world.rs`), so one long hold delays everybody. With
//! `PARLOR_LOCK_TIMING=1` in the server's environment (or after
//! [`enable`], for a program that embeds the server), every hold is timed
//! from the moment the lock is taken to the moment it is let go, exclusive
//! and shared holds apart, into a histogram an operator reads with
//! `STATS L`. Each hold's own CPU time is read too (the calling thread's
//! CPU clock): a hold much longer than its CPU time is one during which
//! the thread was off its CPU, the machine's doing rather than the
//! code's. Off (the default) a hold costs one test of a flag; on, two
//! reads of the clock, two of the thread's CPU clock (a system call each)
//! and a few atomic updates. Only the first clock reads fall inside the
//! hold: its end is read before the lock is let go, and its CPU time and
//! the updates after, so that nobody waits for them (the CPU time then
//! includes the letting go, tens of ns).

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::world::World;

/// The environment variable that turns timing on (`1`, `yes` or `on`).
pub const ENV_VAR: &str = "PARLOR_LOCK_TIMING";

/// Set by [`enable`].
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Times the lock of every server started from now on in this process,
/// whatever the environment says.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Holds longer than this are counted apart, exactly: the budget one hold
/// should stay within, so that nobody waits noticeably for anybody else.
pub const LONG_HOLD: Duration = Duration::from_millis(1);

/// Values below this have a bucket each; above, each power of two is cut
/// into [`SUB_BUCKETS`].
const LINEAR: u64 = 8;
const SUB_BUCKETS: u64 = 4;
/// Up to 2^40 ns (18 minutes), far beyond any hold.
const BUCKETS: usize = (LINEAR + (40 - 3) * SUB_BUCKETS) as usize;

/// The bucket of a hold of `ns` nanoseconds: within 25% of it.
fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let power = u64::from(63 - ns.leading_zeros());
    let sub = (ns >> (power - 2)) & (SUB_BUCKETS - 1);
    ((LINEAR + (power - 3) * SUB_BUCKETS + sub) as usize).min(BUCKETS - 1)
}

/// The smallest hold, in nanoseconds, that falls in bucket `index`.
pub fn bucket_floor(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let power = 3 + (index - LINEAR) / SUB_BUCKETS;
    let sub = (index - LINEAR) % SUB_BUCKETS;
    (SUB_BUCKETS + sub) << (power - 2)
}

/// Holds of one kind (exclusive or shared) since the server started.
#[derive(Debug)]
pub struct HoldStats {
    buckets: [AtomicU64; BUCKETS],
    total_ns: AtomicU64,
    /// The longest hold since the last [`HoldStats::read`].
    max_ns: AtomicU64,
    /// Holds longer than [`LONG_HOLD`].
    long: AtomicU64,
    /// The most CPU time one hold took since the last read.
    max_cpu_ns: AtomicU64,
    /// Holds that took more than [`LONG_HOLD`] of CPU time.
    long_cpu: AtomicU64,
}

/// What [`HoldStats::read`] returns.
#[derive(Debug, Clone, Default)]
pub struct HoldReport {
    pub holds: u64,
    pub total_ns: u64,
    /// The longest hold since the previous read.
    pub max_ns: u64,
    /// Holds longer than [`LONG_HOLD`] since the server started.
    pub long: u64,
    /// The most CPU time one hold took since the previous read.
    pub max_cpu_ns: u64,
    /// Holds that took more than [`LONG_HOLD`] of CPU time.
    pub long_cpu: u64,
    /// (smallest hold in the bucket in ns, holds) for every bucket used,
    /// since the server started.
    pub buckets: Vec<(u64, u64)>,
}

impl HoldStats {
    fn new() -> HoldStats {
        HoldStats {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            total_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            long: AtomicU64::new(0),
            max_cpu_ns: AtomicU64::new(0),
            long_cpu: AtomicU64::new(0),
        }
    }

    fn record(&self, held: Duration, cpu_ns: u64) {
        let ns = u64::try_from(held.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
        // A load first: the maximum rarely moves, and a plain read keeps
        // the cache line shared between the threads that take the lock.
        if ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
        }
        if held > LONG_HOLD {
            self.long.fetch_add(1, Ordering::Relaxed);
        }
        if cpu_ns > self.max_cpu_ns.load(Ordering::Relaxed) {
            self.max_cpu_ns.fetch_max(cpu_ns, Ordering::Relaxed);
        }
        if cpu_ns > LONG_HOLD.as_nanos() as u64 {
            self.long_cpu.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts so far. The maximum starts again from zero, so that a
    /// reader that reads before and after a stretch of load gets the
    /// longest hold within it; the rest keeps counting, for differences.
    pub fn read(&self) -> HoldReport {
        let buckets: Vec<(u64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(index, count)| (bucket_floor(index), count.load(Ordering::Relaxed)))
            .filter(|&(_, count)| count > 0)
            .collect();
        HoldReport {
            holds: buckets.iter().map(|&(_, count)| count).sum(),
            total_ns: self.total_ns.load(Ordering::Relaxed),
            max_ns: self.max_ns.swap(0, Ordering::Relaxed),
            long: self.long.load(Ordering::Relaxed),
            max_cpu_ns: self.max_cpu_ns.swap(0, Ordering::Relaxed),
            long_cpu: self.long_cpu.load(Ordering::Relaxed),
            buckets,
        }
    }
}

/// When a hold began: the clock, and the thread's CPU clock.
#[derive(Clone, Copy)]
struct Start {
    at: Instant,
    cpu_ns: u64,
}

impl Start {
    fn now() -> Start {
        Start {
            at: Instant::now(),
            cpu_ns: thread_cpu_ns(),
        }
    }

    /// Records a hold that lasted until `end`; called once the lock is
    /// let go.
    fn record(self, stats: &HoldStats, end: Instant) {
        let held = end.saturating_duration_since(self.at);
        stats.record(held, thread_cpu_ns().saturating_sub(self.cpu_ns));
    }
}

/// The CPU time the calling thread has used, in ns (0 if it cannot be read).
fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return 0;
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

#[derive(Debug)]
pub struct Timing {
    pub exclusive: HoldStats,
    pub shared: HoldStats,
}

/// The network state behind its lock.
#[derive(Debug)]
pub struct WorldLock {
    lock: RwLock<World>,
    /// Boxed: two histograms nobody needs unless timing is on.
    timing: Option<Box<Timing>>,
}

impl WorldLock {
    /// The lock, timed if the environment asks for it.
    pub fn new(world: World) -> WorldLock {
        let on = ENABLED.load(Ordering::Relaxed)
            || std::env::var(ENV_VAR)
                .is_ok_and(|value| matches!(value.as_str(), "1" | "yes" | "on" | "true"));
        WorldLock::with_timing(world, on)
    }

    pub fn with_timing(world: World, timing: bool) -> WorldLock {
        WorldLock {
            lock: RwLock::new(world),
            timing: timing.then(|| {
                Box::new(Timing {
                    exclusive: HoldStats::new(),
                    shared: HoldStats::new(),
                })
            }),
        }
    }

    /// The hold statistics, when timing is on.
    pub fn timing(&self) -> Option<&Timing> {
        self.timing.as_deref()
    }

    pub fn write(&self) -> WorldWrite<'_> {
        // Handlers keep the state consistent at every step that can panic,
        // so the state behind a poisoned lock is still usable; refusing it
        // would take the whole server down with one bad command.
        let guard = self.lock.write().unwrap_or_else(|e| e.into_inner());
        WorldWrite {
            guard: ManuallyDrop::new(guard),
            timer: self.timing.as_deref().map(|t| (&t.exclusive, Start::now())),
        }
    }

    pub fn read(&self) -> WorldRead<'_> {
        let guard = self.lock.read().unwrap_or_else(|e| e.into_inner());
        WorldRead {
            guard: ManuallyDrop::new(guard),
            timer: self.timing.as_deref().map(|t| (&t.shared, Start::now())),
        }
    }
}

/// The state, held alone. Never keep it across an `.await`.
pub struct WorldWrite<'a> {
    /// Let go by hand in `drop`, before the hold is recorded.
    guard: ManuallyDrop<RwLockWriteGuard<'a, World>>,
    timer: Option<(&'a HoldStats, Start)>,
}

/// The state, held shared with other readers. Never keep it across an
/// `.await`.
pub struct WorldRead<'a> {
    /// Let go by hand in `drop`, before the hold is recorded.
    guard: ManuallyDrop<RwLockReadGuard<'a, World>>,
    timer: Option<(&'a HoldStats, Start)>,
}

impl Deref for WorldWrite<'_> {
    type Target = World;
    fn deref(&self) -> &World {
        &self.guard
    }
}

impl DerefMut for WorldWrite<'_> {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.guard
    }
}

impl Deref for WorldRead<'_> {
    type Target = World;
    fn deref(&self) -> &World {
        &self.guard
    }
}

impl Drop for WorldWrite<'_> {
    fn drop(&mut self) {
        let end = self.timer.map(|_| Instant::now());
        // SAFETY: the guard is dropped once, here, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if let (Some((stats, start)), Some(end)) = (self.timer, end) {
            start.record(stats, end);
        }
    }
}

impl Drop for WorldRead<'_> {
    fn drop(&mut self) {
        let end = self.timer.map(|_| Instant::now());
        // SAFETY: the guard is dropped once, here, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if let (Some((stats, start)), Some(end)) = (self.timer, end) {
            start.record(stats, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hold_lands_in_a_bucket_whose_floor_is_within_a_quarter_of_it() {
        let mut samples: Vec<u64> = (0..2_000).collect();
        samples.extend((11..40).flat_map(|p| [(1 << p) - 1, 1 << p, (1 << p) + 1, 3 << (p - 1)]));
        samples.extend([999_999, 1_000_000, 1_000_001, 123_456_789]);
        for ns in samples {
            let bucket = bucket_of(ns);
            let floor = bucket_floor(bucket);
            assert!(floor <= ns, "{ns} ns in bucket {bucket} from {floor}");
            assert!(
                bucket == BUCKETS - 1 || ns < bucket_floor(bucket + 1),
                "{ns} ns belongs to a later bucket than {bucket}"
            );
            assert!(ns - floor <= ns / 4, "{ns} ns read as {floor}");
        }
        assert!((1..BUCKETS).all(|b| bucket_floor(b) > bucket_floor(b - 1)));
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn the_thread_cpu_clock_moves_with_work_on_this_thread() {
        let before = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(thread_cpu_ns() > before);
    }

    #[test]
    fn a_read_gives_the_counts_so_far_and_the_longest_hold_since_the_last_read() {
        let stats = HoldStats::new();
        for us in [3, 3, 40, 1_500] {
            stats.record(Duration::from_micros(us), us * 100);
        }
        let first = stats.read();
        assert_eq!(first.holds, 4);
        assert_eq!(first.total_ns, 1_546_000);
        assert_eq!(first.max_ns, 1_500_000);
        assert_eq!(first.long, 1);
        assert_eq!(first.max_cpu_ns, 150_000);
        assert_eq!(first.long_cpu, 0, "0.15 ms of CPU in the longest");
        assert_eq!(first.buckets.len(), 3, "{:?}", first.buckets);
        assert_eq!(first.buckets[0].1, 2);

        stats.record(Duration::from_micros(7), 2_000_000);
        let second = stats.read();
        assert_eq!(second.holds, 5);
        assert_eq!(second.max_ns, 7_000, "the maximum starts again");
        assert_eq!(second.long, 1);
        assert_eq!(second.max_cpu_ns, 2_000_000);
        assert_eq!(second.long_cpu, 1);
    }
}
