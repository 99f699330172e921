//! Turns counts into the figures a run prints (one JSON line on stdout, one line for
//! people on stderr), and reads the server's CPU time and resident memory from `/proc`.

use serde::Serialize;

use crate::driver::Tally;
use crate::reply::Framing;

/// Latency percentiles in microseconds, measured from each request's due time.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The figures of a timed run.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub seconds: f64,
    /// Requests answered; a multi-get counts once.
    pub requests: u64,
    pub reads: u64,
    pub writes: u64,
    /// Keys asked for by reads, with the hits and misses among them.
    pub keys: u64,
    pub hits: u64,
    pub misses: u64,
    /// Misses on keys never read or written before (no cache can avoid these).
    pub first_misses: u64,
    pub ops_per_s: f64,
    pub keys_per_s: f64,
    pub hit_ratio: Option<f64>,
    pub miss_ratio: Option<f64>,
    /// Misses on keys asked for before, over all keys asked for.
    pub repeat_miss_ratio: Option<f64>,
    pub latency_us: Latency,
    pub framing: Framing,
}

impl Figures {
    /// The figures of `tally`.
    pub fn new(tally: &Tally) -> Self {
        let seconds = tally.elapsed().max(f64::MIN_POSITIVE);
        let micros = |ns: u64| ns as f64 / 1_000.0;
        let h = &tally.latency;
        let ratio = |part: u64| (tally.keys > 0).then(|| part as f64 / tally.keys as f64);
        Figures {
            seconds,
            requests: tally.requests,
            reads: tally.reads,
            writes: tally.writes,
            keys: tally.keys,
            hits: tally.hits,
            misses: tally.misses,
            first_misses: tally.first_misses,
            ops_per_s: tally.requests as f64 / seconds,
            keys_per_s: tally.keys as f64 / seconds,
            hit_ratio: ratio(tally.hits),
            miss_ratio: ratio(tally.misses),
            repeat_miss_ratio: ratio(tally.misses - tally.first_misses),
            latency_us: Latency {
                p50: micros(h.value_at_quantile(0.50)),
                p99: micros(h.value_at_quantile(0.99)),
                p999: micros(h.value_at_quantile(0.999)),
                max: micros(h.max()),
                mean: h.mean() / 1_000.0,
            },
            framing: tally.framing,
        }
    }

    /// One line for people.
    pub fn human(&self) -> String {
        let hit = self
            .hit_ratio
            .map_or("-".to_string(), |r| format!("{:.2}%", r * 100.0));
        let l = &self.latency_us;
        format!(
            "{:.0} req/s ({:.0} keys/s), hit {hit}, latency p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} us, {} requests in {:.2} s",
            self.ops_per_s, self.keys_per_s, l.p50, l.p99, l.p999, l.max, self.requests, self.seconds
        )
    }
}

/// The server process's CPU time and memory, from `/proc/PID`.
pub struct ServerProc {
    pid: u32,
}

impl ServerProc {
    pub fn new(pid: u32) -> Self {
        ServerProc { pid }
    }

    /// User plus system CPU seconds so far (all threads), from `/proc/PID/stat`.
    ///
    /// # Errors
    /// The process is gone or the file is not as expected.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        let path = format!("/proc/{}/stat", self.pid);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // The command name may hold spaces and parentheses: fields count from the last ')'.
        let after = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
            return Err(format!("{path}: no utime and stime"));
        };
        Ok((utime + stime) as f64 / clock_ticks_per_second())
    }

    /// Resident set size in bytes, from `/proc/PID/status`.
    ///
    /// # Errors
    /// The process is gone or has no `VmRSS` line.
    pub fn rss_bytes(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("{path}: no VmRSS"))
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf with a constant name has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The 1, 5 and 15 minute load averages, zeros where `/proc/loadavg` is unreadable.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0.0));
    [(); 3].map(|()| fields.next().unwrap_or(0.0))
}
