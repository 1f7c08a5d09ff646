//! Input flood control ("fakelag"): a token bucket per connection. A client
//! may send `burst` lines at once, then `lines_per_sec`; past that its next
//! line waits. Nothing is dropped: the wait stops the connection's reads,
//! so TCP pushes back on the sender, and one client can no longer keep the
//! shared state busy for everyone else.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct FloodControl {
    // Integers, as configured: every connection holds one of these.
    burst: u32,
    lines_per_sec: u32,
    tokens: f64,
    last: Instant,
}

impl FloodControl {
    /// `None` when `lines_per_sec` is 0 (flood control off).
    pub fn new(burst: u32, lines_per_sec: u32, now: Instant) -> Option<FloodControl> {
        (lines_per_sec > 0).then(|| FloodControl {
            burst: burst.max(1),
            lines_per_sec,
            tokens: f64::from(burst.max(1)),
            last: now,
        })
    }

    /// Takes one line received at `now`; returns how long to wait before
    /// handling it (zero within the allowance).
    pub fn delay(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let lines_per_sec = f64::from(self.lines_per_sec);
        self.tokens = (self.tokens + elapsed * lines_per_sec).min(f64::from(self.burst));
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            crate::metrics::flood_delayed();
            // The debt is paid by waiting; the next line's refill counts
            // from now, so waits add up line after line.
            Duration::from_secs_f64(-self.tokens / lines_per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_lines_are_paced() {
        let start = Instant::now();
        let mut flood = FloodControl::new(3, 2, start).unwrap();
        for _ in 0..3 {
            assert_eq!(flood.delay(start), Duration::ZERO);
        }
        // Three more at the same instant: half a second each, cumulative.
        assert_eq!(flood.delay(start), Duration::from_millis(500));
        assert_eq!(flood.delay(start), Duration::from_millis(1000));
        assert_eq!(flood.delay(start), Duration::from_millis(1500));
    }

    #[test]
    fn idle_time_refills_up_to_the_burst_only() {
        let start = Instant::now();
        let mut flood = FloodControl::new(2, 1, start).unwrap();
        flood.delay(start);
        flood.delay(start);
        let later = start + Duration::from_secs(60);
        assert_eq!(flood.delay(later), Duration::ZERO);
        assert_eq!(flood.delay(later), Duration::ZERO);
        assert_eq!(flood.delay(later), Duration::from_secs(1));
    }

    #[test]
    fn a_steady_client_within_the_rate_never_waits() {
        let start = Instant::now();
        let mut flood = FloodControl::new(1, 4, start).unwrap();
        for i in 0..100 {
            assert_eq!(
                flood.delay(start + Duration::from_millis(250 * i)),
                Duration::ZERO
            );
        }
    }

    #[test]
    fn zero_rate_means_off() {
        assert!(FloodControl::new(10, 0, Instant::now()).is_none());
    }
}
