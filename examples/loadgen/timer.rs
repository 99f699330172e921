//! A one-shot timer that a mio poll can wait on with microsecond precision.
//!
//! Open-loop requests must leave at their due time, but an epoll timeout counts whole
//! milliseconds, which would add up to a millisecond to every latency measured from a
//! due time. A Linux timerfd armed in nanoseconds, registered beside the sockets, wakes
//! the poll on time instead. Linux only, as the rest of the benchmark is.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Timer slack asked for the calling thread: the kernel's default of 50 µs would be
/// added to every wake-up.
const TIMER_SLACK_NS: libc::c_ulong = 1_000;

/// A timerfd registered with a poll.
pub struct Timer {
    fd: OwnedFd,
    armed_for: Option<Instant>,
}

impl Timer {
    /// Creates a timer and registers it with `registry` under `token`.
    ///
    /// # Errors
    /// The kernel refuses the timerfd or its registration.
    pub fn new(registry: &Registry, token: Token) -> Result<Self, String> {
        // SAFETY: plain syscalls with constant arguments; the fd returned is checked
        // before it is wrapped, and owned by the `OwnedFd` from then on.
        let fd = unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0);
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "timerfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` is a new, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        registry
            .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
            .map_err(|e| format!("register timerfd: {e}"))?;
        Ok(Timer {
            fd,
            armed_for: None,
        })
    }

    /// Makes the poll wake at `at` (at once if it is past). Re-arming for the same time
    /// costs nothing.
    ///
    /// # Errors
    /// The kernel refuses the new setting.
    pub fn arm(&mut self, at: Instant, now: Instant) -> Result<(), String> {
        if self.armed_for == Some(at) {
            return Ok(());
        }
        // A zero `it_value` would disarm the timer: wait at least a nanosecond.
        let wait = at
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `self.fd` is a timerfd owned by `self`; `spec` lives across the call
        // and the old-value pointer may be null.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(format!(
                "timerfd_settime: {}",
                std::io::Error::last_os_error()
            ));
        }
        self.armed_for = Some(at);
        Ok(())
    }

    /// Clears the expiry the poll reported, so that the next one is reported anew.
    pub fn clear(&mut self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer from a timerfd we own. A
        // failure (nothing to read yet) leaves nothing to clear, so its result is moot.
        let _read = unsafe { libc::read(self.fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
        self.armed_for = None;
    }
}
