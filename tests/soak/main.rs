//! Load held for a while against one server process, checked reply by reply.
//!
//! 200 clients pipeline valid and invalid text and meta requests. Every value
//! stored is one or more records `key|writer|seq|payload|checksum;`, so a value read back
//! that is torn, or belongs to another key, is caught; every client knows exactly which
//! replies it is owed and in what order, so a reply that went to the wrong client or
//! lost its framing is caught; keys a client alone writes are checked against what it
//! wrote. Once the cache is full and the connections' buffers have grown to the sizes
//! the load gives them, resident memory must stay flat over the second half of the run.
//!
//! `soak` runs for `CORECACHE_SOAK_SECS` seconds after that warm-up, 15 by default so
//! that `cargo test` stays quick; a long run prints its figures:
//! `CORECACHE_SOAK_SECS=600 cargo test --release --test soak -- --nocapture soak`.
//! The cache is not modelled exactly: any key may be evicted at any time, and keys
//! that all clients write are only checked for holding well-formed values of their own.

mod client;
#[path = "../common/mod.rs"]
mod common;
mod records;
mod replies;

use client::*;
use common::{mib, show, Conn, Server};
use records::*;
use replies::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Names the length of `soak` in seconds.
const SOAK_SECS_ENV: &str = "CORECACHE_SOAK_SECS";
/// Long enough that the half-way RSS sample comes well after the clients' first
/// pipelines, short enough for `cargo test`.
const DEFAULT_SOAK_SECS: u64 = 15;
/// Connections in `soak`, one thread each.
const CLIENTS: usize = 200;
/// Record keys that one client alone writes, per client.
const OWN_KEYS: usize = 16;
/// Counters that one client alone writes, per client.
const OWN_COUNTERS: usize = 4;
/// Record keys that every client writes.
const SHARED_KEYS: usize = 64;
/// Counters that every client writes.
const SHARED_COUNTERS: usize = 8;
/// Requests in one pipeline at most, before the `mn` that closes it.
const PIPELINE_MAX: usize = 16;
/// A client's own value is appended to only while shorter than this, so that an append
/// never fails for size (which would read as the key having gone).
const APPEND_LIMIT: usize = 64 * 1024;
/// Over `-I` (1 MiB by default): refused, and the key's old value deleted.
const TOO_LARGE: usize = 1_100_000;
/// How long the clients run at most before the measured run, waiting for RSS to settle.
const WARMUP_MAX: Duration = Duration::from_secs(60);
/// RSS has settled once this many consecutive samples, a second apart...
const SETTLED_SAMPLES: usize = 4;
/// ...lie within this many KiB of each other.
const SETTLED_KIB: u64 = 1024;
/// How far RSS may rise between the half-way sample and the end of `soak`. By then the
/// cache has been full since before the start and every client has run thousands of
/// pipelines, so all that may still move is the allocator's churn of connection
/// buffers: 200 of them, mostly a few KiB, tens of KiB for a large value. A leak of
/// one small allocation per request (tens of bytes at some 200,000 requests a second)
/// passes 4 MiB within a second or two; and with `-t 1`, where no connection keeps a
/// side buffer for replies queued behind another worker's, the second half of a 30 s
/// run rose by 0.8 MiB.
const RSS_FLAT_KIB: u64 = 4 * 1024;
/// Fault messages kept for the failure report; the counts cover all of them.
const NOTES_KEPT: usize = 20;

const STORED: &[u8] = b"STORED";
const NOT_STORED: &[u8] = b"NOT_STORED";
const EXISTS: &[u8] = b"EXISTS";
const NOT_FOUND: &[u8] = b"NOT_FOUND";
const DELETED: &[u8] = b"DELETED";
const TOUCHED: &[u8] = b"TOUCHED";
const HD: &[u8] = b"HD";
const NF: &[u8] = b"NF";
const ERROR: &[u8] = b"ERROR";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk";
const DELETE_USAGE: &[u8] = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
const BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument";
const BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument";
const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value";
const DUPLICATE_FLAG: &[u8] = b"CLIENT_ERROR duplicate flag";
const INVALID_FLAG: &[u8] = b"CLIENT_ERROR invalid flag";
const TOO_LARGE_REPLY: &[u8] = b"SERVER_ERROR object too large for cache";

/// Runs one client until `stop`: a pipeline written whole, then its replies read and
/// checked one by one. A framing fault ends the client: its stream is out of step.
fn run_client(
    addr: SocketAddr,
    id: usize,
    stop: &AtomicBool,
    tally: &Tally,
    pulse: Option<Sender<()>>,
) {
    let mut conn = match Conn::try_connect(addr) {
        Ok(conn) => conn,
        Err(e) => return tally.fault(id, b"", Fault::Framing(format!("connect: {e}"))),
    };
    let mut client = Client::new(id);
    while !stop.load(Ordering::Relaxed) {
        let ops = client.pipeline(tally);
        let bytes: Vec<u8> = ops.iter().flat_map(|op| op.bytes.iter().copied()).collect();
        if let Err(e) = conn.try_send(&bytes) {
            return tally.fault(id, &bytes, Fault::Framing(format!("send: {e}")));
        }
        for op in &ops {
            if let Err(fault) = answer(&mut conn, &mut client, op, tally) {
                let framing = matches!(fault, Fault::Framing(_));
                tally.fault(id, &op.bytes, fault);
                if framing {
                    return;
                }
            }
        }
        if let Some(pulse) = &pulse {
            // The sampler has gone only once the run is over.
            let _ = pulse.send(());
        }
    }
}

/// Reads and checks the replies to one request.
fn answer(conn: &mut Conn, client: &mut Client, op: &Op, tally: &Tally) -> Result<(), Fault> {
    let mut replies = Vec::new();
    for _ in 0..op.expect.replies() {
        let reply = conn
            .try_read_reply()
            .map_err(|e| Fault::Framing(format!("reading a reply: {e}")))?;
        if [&b"ERROR"[..], b"CLIENT_ERROR", b"SERVER_ERROR"]
            .iter()
            .any(|p| reply.starts_with(p))
        {
            tally.errors.fetch_add(1, Ordering::Relaxed);
        }
        replies.push(reply);
    }
    if !matches!(op.expect, Expect::Noop) {
        tally.ops.fetch_add(1, Ordering::Relaxed);
    }
    client.settle(&op.expect, &replies)
}

/// Fills the cache well past its first eviction with values of the soak's sizes, so
/// that item memory, and the slab classes the soak uses, are at `-m` before RSS is first
/// measured. Answers the number of values written.
fn prefill(server: &Server) -> usize {
    let mut conn = Conn::connect(server.addr());
    let mut rng = Rng::new(u64::MAX);
    let (mut n, mut more) = (0, None);
    loop {
        let mut batch = Vec::new();
        while batch.len() < 1 << 20 {
            let key = format!("fill:{n}");
            let data = record(&key, CLIENTS, n as u64, payload_len(&mut rng));
            let head = format!("set {key} {} 0 {} noreply\r\n", flags_for(&key), data.len());
            batch.extend_from_slice(&[head.as_bytes(), &data, b"\r\n"].concat());
            n += 1;
        }
        batch.extend_from_slice(b"mn\r\n");
        assert_eq!(conn.request(&batch), b"MN\r\n");
        more = match more {
            Some(0) => return n,
            Some(left) => Some(left - 1),
            None => (conn.stat("evictions") > 0).then_some(16),
        };
    }
}

/// RSS in KiB, sampled once a second while the clients run. It wakes each time the
/// first client has its replies to a pipeline (a message on `pulses`), and samples when
/// a second has passed since the last sample: the clients' own progress paces it.
struct Sampler<'a> {
    server: &'a Server,
    pulses: Receiver<()>,
    next: Instant,
    samples: Vec<u64>,
}

impl<'a> Sampler<'a> {
    fn new(server: &'a Server, pulses: Receiver<()>) -> Sampler<'a> {
        let next = Instant::now() + Duration::from_secs(1);
        let samples = Vec::new();
        Sampler {
            server,
            pulses,
            next,
            samples,
        }
    }

    /// Waits for the first pulse a second or more after the last sample, and samples.
    /// Answers `false`, without a sample, when the first client has stopped (a fault,
    /// which the tally reports).
    fn sample(&mut self) -> bool {
        while Instant::now() < self.next {
            if self.pulses.recv().is_err() {
                return false;
            }
        }
        self.next += Duration::from_secs(1);
        self.samples.push(self.server.rss_kib());
        true
    }

    /// Samples until RSS has settled: the connections' buffers have grown to the sizes
    /// the load gives them, which takes a few seconds in a release build and several
    /// times that in a debug build on a loaded machine. Settled means the last
    /// [`SETTLED_SAMPLES`] samples lie within [`SETTLED_KIB`], or [`WARMUP_MAX`] has
    /// passed (a leak never settles; the measured run then shows it). Answers the time
    /// taken.
    fn settle(&mut self) -> Duration {
        let start = Instant::now();
        while start.elapsed() < WARMUP_MAX && !self.settled() && self.sample() {}
        self.samples.clear();
        start.elapsed()
    }

    fn settled(&self) -> bool {
        let Some(last) = self.samples.len().checked_sub(SETTLED_SAMPLES) else {
            return false;
        };
        let recent = &self.samples[last..];
        recent.iter().max().unwrap() - recent.iter().min().unwrap() <= SETTLED_KIB
    }

    /// Samples for `secs` seconds.
    fn run(&mut self, secs: u64) {
        for _ in 0..secs {
            if !self.sample() {
                return;
            }
        }
    }
}

/// The soak's length: at least 2 s, so that there is a half-way sample.
fn soak_secs() -> u64 {
    let secs = match std::env::var(SOAK_SECS_ENV) {
        Ok(secs) => secs
            .parse()
            .unwrap_or_else(|_| panic!("{SOAK_SECS_ENV}={secs} is not a number of seconds")),
        Err(_) => DEFAULT_SOAK_SECS,
    };
    secs.max(2)
}

/// Runs the clients until RSS has settled and then for `secs` seconds more, sampling
/// RSS meanwhile; answers their tally, the warm-up's length and the samples taken after
/// it.
fn run_clients(server: &Server, secs: u64) -> (Arc<Tally>, Duration, Vec<u64>) {
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (pulse, pulses) = mpsc::channel();
    let clients: Vec<JoinHandle<()>> = (0..CLIENTS)
        .map(|id| {
            let (addr, tally, stop) = (server.addr(), Arc::clone(&tally), Arc::clone(&stop));
            let pulse = (id == 0).then(|| pulse.clone());
            std::thread::spawn(move || run_client(addr, id, &stop, &tally, pulse))
        })
        .collect();
    drop(pulse);
    let mut sampler = Sampler::new(server, pulses);
    let warmup = sampler.settle();
    sampler.run(secs);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client panicked");
    }
    (tally, warmup, sampler.samples)
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} operations, {} invalid injected, {} error replies; faults: {} checksum, \
             {} framing, {} model",
            Tally::count(&self.ops),
            Tally::count(&self.invalid),
            Tally::count(&self.errors),
            Tally::count(&self.checksum),
            Tally::count(&self.framing),
            Tally::count(&self.model),
        )
    }
}

/// RSS over the soak, in KiB: before the clients, at half-way, at the end, and the
/// highest sample of the second half.
struct RssCourse {
    start: u64,
    half: u64,
    end: u64,
    peak: u64,
}

impl RssCourse {
    /// With no samples (the first client stopped at once, a fault the tally reports)
    /// every figure is `start`.
    fn new(start: u64, samples: &[u64]) -> RssCourse {
        let second_half = &samples[samples.len() / 2..];
        RssCourse {
            start,
            half: second_half.first().copied().unwrap_or(start),
            end: second_half.last().copied().unwrap_or(start),
            peak: second_half.iter().copied().max().unwrap_or(start),
        }
    }
}

impl std::fmt::Display for RssCourse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS start {:.1} MiB, half {:.1} MiB, end {:.1} MiB, second-half peak {:.1} MiB",
            mib(self.start),
            mib(self.half),
            mib(self.end),
            mib(self.peak)
        )
    }
}

#[test]
fn soak() {
    let secs = soak_secs();
    let server = Server::start(&["-t", "2", "-m", "64", "-c", "1024"]);
    let filled = prefill(&server);
    let start = server.rss_kib();
    let (tally, warmup, samples) = run_clients(&server, secs);
    let version = Conn::connect(server.addr()).request(b"version\r\n");

    let rss = RssCourse::new(start, &samples);
    let rate = Tally::count(&tally.ops) / (secs + warmup.as_secs());
    eprintln!(
        "soak: {secs} s after {} s of warm-up, {CLIENTS} connections, {rate} operations/s, \
         {filled} values prefilled; {tally}; {rss}",
        warmup.as_secs()
    );
    let notes = tally.notes.lock().unwrap().join("\n");
    assert!(version.starts_with(b"VERSION "), "{}", show(&version));
    assert_eq!(tally.faults(), 0, "faults:\n{notes}");
    assert!(
        rss.peak <= rss.half + RSS_FLAT_KIB,
        "RSS rose by more than {RSS_FLAT_KIB} KiB in the second half: {rss} \
         (samples in KiB: {samples:?})",
    );
}
