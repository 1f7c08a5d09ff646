//! The clock of paced senders: one tick every `period`, each due at an
//! exact time.
//!
//! tokio's timers count whole milliseconds, and a tokio interval fires up to
//! a millisecond after a tick is due. Latency counts from the due time, so
//! that slack was measured as the server's: with the same Parlor binary,
//! the paced scenario's p50 read 1.5–2.0 ms on a tokio interval and
//! 0.7–0.8 ms on this clock. A Linux timerfd fires on the kernel's
//! high-resolution timer and tokio's reactor wakes the sender; whatever
//! lateness is left (a busy CPU) still counts as latency, as it should.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

/// A periodic timer whose ticks are handed out one by one, each with the
/// time it was due. A sender that falls behind gets the ticks it missed at
/// once, as tokio's `MissedTickBehavior::Burst` would give them, so a
/// server that holds the sender up is not hidden (no coordinated omission).
pub struct Ticker {
    timer: AsyncFd<OwnedFd>,
    first_due: Instant,
    period: Duration,
    /// Ticks handed out so far.
    handed: u64,
    /// Ticks the timer fired that are not handed out yet.
    pending: u64,
}

impl Ticker {
    /// The first tick is due `offset` from now (at once if it is zero),
    /// then one every `period`.
    pub fn start(offset: Duration, period: Duration) -> io::Result<Self> {
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        if period.is_zero() {
            return Err(invalid("a ticker's period must not be zero"));
        }
        // A zero first expiry would disarm the timer; a nanosecond is "now".
        let first = offset.max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec::try_from(period)
                .map_err(|_| invalid("a ticker's period is too long"))?,
            it_value: Timespec::try_from(first)
                .map_err(|_| invalid("a ticker's offset is too long"))?,
        };
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // std's Instant reads CLOCK_MONOTONIC, the timer's clock, so the due
        // times below are the kernel's to within the time this call takes.
        let first_due = Instant::now() + first;
        timerfd_settime(&timer, TimerfdTimerFlags::empty(), &spec)?;
        // SAFETY: `register_with_interest` needs the descriptor to stay open
        // and be the same one for as long as the AsyncFd lives. An `OwnedFd`
        // closes its descriptor only when dropped, it is moved into the
        // AsyncFd here, and its `as_raw_fd` always returns that descriptor.
        let timer = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Ticker {
            timer,
            first_due,
            period,
            handed: 0,
            pending: 0,
        })
    }

    /// Waits for the next tick and returns the time it was due. Never
    /// returns before that time.
    pub async fn tick(&mut self) -> io::Result<Instant> {
        while self.pending == 0 {
            let mut ready = self.timer.readable().await?;
            // A read gives the number of expirations since the last one,
            // or fails with WouldBlock when there were none.
            let mut expirations = [0u8; 8];
            self.pending = match rustix::io::read(ready.get_inner(), &mut expirations) {
                Ok(8) => u64::from_ne_bytes(expirations),
                Ok(_) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => 0,
                Err(error) => return Err(error.into()),
            };
            // Cleared after the read: tokio keeps a readiness that arrived
            // since `readable` returned, so the next expiry still wakes us.
            ready.clear_ready();
        }
        self.pending -= 1;
        let since_first = (self.period.as_nanos() as u64).saturating_mul(self.handed);
        let due = self.first_due + Duration::from_nanos(since_first);
        self.handed += 1;
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_are_due_one_period_apart_and_never_early() {
        let period = Duration::from_millis(2);
        let mut ticker = Ticker::start(Duration::from_millis(1), period).unwrap();
        let mut previous = None;
        for _ in 0..20 {
            let due = ticker.tick().await.unwrap();
            assert!(Instant::now() >= due, "a tick came before it was due");
            if let Some(previous) = previous {
                assert_eq!(due - previous, period);
            }
            previous = Some(due);
        }
    }

    #[tokio::test]
    async fn a_sender_that_fell_behind_gets_every_missed_tick_at_once() {
        let period = Duration::from_millis(1);
        let started = Instant::now();
        let mut ticker = Ticker::start(Duration::ZERO, period).unwrap();
        // Busy elsewhere for at least ten periods.
        std::thread::sleep(Duration::from_millis(12));
        let caught_up = Instant::now();
        let mut dues = Vec::new();
        for _ in 0..10 {
            dues.push(ticker.tick().await.unwrap());
        }
        assert!(dues[0] >= started && dues[0] <= caught_up);
        for pair in dues.windows(2) {
            assert_eq!(pair[1] - pair[0], period);
        }
        // All ten were due before the sender looked again: none is dropped
        // or pushed back to a later time.
        assert!(dues[9] <= caught_up, "{:?} > {:?}", dues[9], caught_up);
    }

    #[test]
    fn a_zero_period_is_refused() {
        let refused = Ticker::start(Duration::ZERO, Duration::ZERO);
        assert_eq!(refused.err().unwrap().kind(), io::ErrorKind::InvalidInput);
    }
}
