//! Time as the cache sees it: whole seconds since the process started.
//!
//! Expiry and last-access times are stored as [`RelTime`], a `u32` of seconds on this
//! clock, as memcached does, so an item header spends four bytes on each. The clock is a
//! trait so that tests can move time with [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the clock started. 0 means "never" where an expiry is expected, and the
/// clock itself starts at [`START`], so [`EXPIRED`] is always in the past.
pub type RelTime = u32;

/// The first value a clock reads.
pub const START: RelTime = 2;

/// An expiry that has always passed: what a negative or past exptime becomes.
pub const EXPIRED: RelTime = 1;

/// Relative expiry times above this (30 days) are read as Unix times, as memcached does.
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// A source of the current [`RelTime`].
pub trait Clock: Send + Sync {
    /// The current time in seconds since start; never below [`START`].
    fn now(&self) -> RelTime;

    /// The Unix time (seconds) at which [`Clock::now`] read 0.
    fn epoch(&self) -> i64;

    /// Converts a client's exptime to a [`RelTime`] with memcached's rules: 0 never
    /// expires, a negative value has already expired, a value up to 30 days is relative
    /// to now, and a larger value is a Unix time.
    fn realtime(&self, exptime: i64) -> RelTime {
        realtime(exptime, self.now(), self.epoch())
    }

    /// The current Unix time in seconds, as `stats` reports it.
    fn unix_now(&self) -> i64 {
        self.epoch() + i64::from(self.now())
    }
}

/// [`Clock::realtime`] for a given `now` and `epoch`.
pub fn realtime(exptime: i64, now: RelTime, epoch: i64) -> RelTime {
    if exptime == 0 {
        return 0;
    }
    if exptime < 0 {
        return EXPIRED;
    }
    if exptime > MAX_RELATIVE_EXPTIME {
        if exptime <= epoch {
            return EXPIRED;
        }
        return u32::try_from(exptime - epoch).unwrap_or(u32::MAX);
    }
    u32::try_from(exptime + i64::from(now)).unwrap_or(u32::MAX)
}

/// The wall clock, read through the kernel's coarse monotonic clock so that a system
/// time change cannot make items expire early or live forever.
///
/// Every cache operation reads it, and the coarse clock (a few milliseconds of
/// resolution, plenty for whole seconds) is read from the vDSO without touching the
/// time-stamp counter: a few nanoseconds instead of the tens a precise reading costs.
#[derive(Debug)]
pub struct SystemClock {
    started: u64,
    epoch: i64,
}

impl SystemClock {
    /// A clock reading [`START`] now.
    pub fn new() -> SystemClock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        SystemClock {
            started: coarse_monotonic_secs(),
            epoch: unix - i64::from(START),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> RelTime {
        let secs = coarse_monotonic_secs().saturating_sub(self.started);
        START.saturating_add(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    fn epoch(&self) -> i64 {
        self.epoch
    }
}

/// Whole seconds of `CLOCK_MONOTONIC_COARSE`.
fn coarse_monotonic_secs() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-parameter and the clock id is a constant Linux knows.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    debug_assert_eq!(status, 0);
    u64::try_from(now.tv_sec).unwrap_or(0)
}

/// A clock that moves only when told to: for tests of expiry, LRU age and crawling.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU32,
    epoch: i64,
}

impl ManualClock {
    /// A clock reading [`START`], whose 0 was Unix time `epoch`.
    pub fn new(epoch: i64) -> ManualClock {
        ManualClock {
            now: AtomicU32::new(START),
            epoch,
        }
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u32) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> RelTime {
        self.now.load(Ordering::SeqCst)
    }

    fn epoch(&self) -> i64 {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_never_expires() {
        assert_eq!(realtime(0, 100, 1_000_000), 0);
    }

    #[test]
    fn negative_has_expired() {
        assert_eq!(realtime(-1, 100, 1_000_000), EXPIRED);
    }

    #[test]
    fn thirty_days_is_still_relative() {
        assert_eq!(
            realtime(MAX_RELATIVE_EXPTIME, 100, 1_000_000_000),
            2_592_100
        );
    }

    #[test]
    fn above_thirty_days_is_unix_time() {
        let epoch = 1_700_000_000;
        assert_eq!(realtime(epoch + 500, 100, epoch), 500);
        assert_eq!(realtime(MAX_RELATIVE_EXPTIME + 1, 100, epoch), EXPIRED);
        assert_eq!(realtime(epoch, 100, epoch), EXPIRED);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_700_000_000);
        assert_eq!(clock.now(), START);
        clock.advance(10);
        assert_eq!(clock.now(), START + 10);
        assert_eq!(clock.unix_now(), 1_700_000_000 + i64::from(START) + 10);
        assert_eq!(clock.realtime(5), START + 15);
    }

    #[test]
    fn system_clock_starts_at_start() {
        let clock = SystemClock::new();
        assert!(clock.now() >= START);
        assert!(clock.realtime(-5) < clock.now());
    }
}
