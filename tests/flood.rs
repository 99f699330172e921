//! Clients that ask for many large values and never read the answers must not push
//! resident memory past the README's stated bound, nor slow down anyone else.

mod common;

use common::{mib, show, Conn, Server};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections that flood multi-gets and never read.
const FLOODERS: usize = 50;
/// Values the flood asks for, and their size.
const BIG_VALUES: usize = 200;
const BIG_SIZE: usize = 100 * 1024;
/// Keys in each flooding `get`: 10 MiB of reply per request.
const KEYS_PER_GET: usize = 100;
/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(5);
/// How often RSS is sampled during the flood.
const FLOOD_SAMPLE: Duration = Duration::from_millis(100);
/// How long a fresh client may wait for its answer during and after the flood. A
/// server stalled by the flooders never answers (the read timeout is 10 s); one that
/// keeps serving answers in well under a millisecond, except for the first probe, which
/// meets the flood's opening burst: tens of milliseconds alone, up to 1.2 s seen with
/// `soak` running beside it on two loaded cores.
const PROMPT: Duration = Duration::from_secs(3);
/// The README's bound on RSS for this test, in KiB: `-m` plus the overhead it states
/// and `tests/memory.rs` holds it to (16 MiB: code, stacks, allocator, the hash index,
/// idle connections), plus for each flooding connection what it may hold: a read buffer
/// of at most 128 KiB (reading stops at 64 KiB of unparsed requests), and replies:
/// requests and the keys of a multi-get wait while more than 512 KiB is unread, so its
/// output stops at 512 KiB plus the one value that crossed it (100 KiB and its line).
/// 64 + 16 + 50 x 0.72 = 116 MiB. The README's other budget, 16 MiB of values on their
/// way from other workers, does not arise: a plain `get` reads another worker's shard
/// directly, and the flood forwards next to nothing (`forwarded_requests` stays near
/// 100). Only about 20 MiB of `-m` holds items here, so the bound is generous.
const FLOOD_BOUND_KIB: u64 = (64 + 16) * 1024 + FLOODERS as u64 * (128 + 512 + 101);
/// How far above its level before the flood RSS may stay once the flooders are gone:
/// their buffers, over 600 KiB each and 30 MiB in all, must have been given back; the
/// allocator may keep some freed pages in its arenas.
const FLOOD_AFTER_KIB: u64 = 16 * 1024;

fn big_key(i: usize) -> String {
    format!("big:{i}")
}

fn big_value(i: usize) -> Vec<u8> {
    (0..BIG_SIZE).map(|j| b'a' + ((i + j) % 26) as u8).collect()
}

fn store_big_values(conn: &mut Conn) {
    for i in 0..BIG_VALUES {
        let head = format!("set {} 0 0 {BIG_SIZE} noreply\r\n", big_key(i));
        conn.send(&[head.as_bytes(), &big_value(i), b"\r\n"].concat());
    }
    assert_eq!(conn.request(b"mn\r\n"), b"MN\r\n");
    assert_eq!(conn.stat("curr_items"), BIG_VALUES as u64, "all values fit");
}

/// Flooder `n`'s requests: `get` lines of [`KEYS_PER_GET`] keys, repeated to 64 KiB.
fn flood_requests(n: usize) -> Vec<u8> {
    let keys: Vec<String> = (0..KEYS_PER_GET)
        .map(|k| big_key((n * 7 + k) % BIG_VALUES))
        .collect();
    format!("get {}\r\n", keys.join(" "))
        .repeat(64 * 1024 / (KEYS_PER_GET * 8) + 1)
        .into_bytes()
}

/// Writes multi-gets as fast as the server takes them until `stop`, never reading;
/// the write timeout only lets the loop see `stop`. Answers the bytes written, or why
/// the server cut it off.
fn flood(addr: SocketAddr, n: usize, stop: &AtomicBool) -> Result<usize, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let requests = flood_requests(n);
    let (mut at, mut written) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        match stream.write(&requests[at..]) {
            Ok(0) => return Err(format!("closed after {written} bytes")),
            Ok(sent) => (at, written) = ((at + sent) % requests.len(), written + sent),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} after {written} bytes")),
        }
    }
    Ok(written)
}

/// A fresh client asks for one value and the version; answers how long that took.
fn probe(addr: SocketAddr) -> Duration {
    let began = Instant::now();
    let mut conn = Conn::connect(addr);
    let reply = conn.request(format!("get {}\r\n", big_key(7)).as_bytes());
    let want = [
        format!("VALUE {} 0 {BIG_SIZE}\r\n", big_key(7)).as_bytes(),
        &big_value(7),
        b"\r\nEND\r\n",
    ]
    .concat();
    assert!(
        reply == want,
        "get {} answered {}",
        big_key(7),
        show(&reply)
    );
    let version = conn.request(b"version\r\n");
    assert!(version.starts_with(b"VERSION "), "{}", show(&version));
    began.elapsed()
}

/// Samples RSS through the flood and probes with a fresh client once a second, from
/// the flood's first moment; answers the peak RSS in KiB and how long each probe took.
/// A client of its own asks for a value's size over and over: each answer paces the
/// next look, so sampling waits on the server, and a stalled server stalls it (the
/// read times out and the test fails).
fn watch_flood(server: &Server) -> (u64, Vec<Duration>) {
    let end = Instant::now() + FLOOD;
    let (mut peak, mut probes) = (0, Vec::new());
    let (mut next_probe, mut next_sample) = (Instant::now(), Instant::now());
    let mut pacer = Conn::connect(server.addr());
    let size = format!("mg {} s\r\n", big_key(7));
    let sized = format!("HD s{BIG_SIZE}\r\n").into_bytes();
    while Instant::now() < end {
        let reply = pacer.request(size.as_bytes());
        assert!(reply == sized, "mg answered {}", show(&reply));
        if Instant::now() >= next_sample {
            peak = peak.max(server.rss_kib());
            next_sample += FLOOD_SAMPLE;
        }
        if Instant::now() >= next_probe {
            probes.push(probe(server.addr()));
            next_probe += Duration::from_secs(1);
        }
    }
    (peak, probes)
}

/// What the server holds, in connections and memory.
struct Levels {
    connections: u64,
    read_buffers: u64,
    rss: u64,
}

impl Levels {
    fn measure(server: &Server, admin: &mut Conn) -> Levels {
        Levels {
            connections: admin.stat("curr_connections"),
            read_buffers: admin.stat("read_buf_bytes"),
            rss: server.rss_kib(),
        }
    }

    /// Waits for the connection count and read buffers to return to `before`'s, then
    /// measures.
    fn settle(server: &Server, admin: &mut Conn, before: &Levels) -> Levels {
        admin.wait_for_stat("curr_connections", |n| n == before.connections);
        admin.wait_for_stat("read_buf_bytes", |n| n == before.read_buffers);
        Levels::measure(server, admin)
    }
}

/// What the flood did: the peak RSS in KiB, how long each probe took, the bytes the
/// flooders wrote, and why any was cut off.
struct Flood {
    peak: u64,
    probes: Vec<Duration>,
    written: usize,
    cut: Vec<String>,
}

/// Runs the flooders for [`FLOOD`] while watching the server, then closes them.
fn run_flood(server: &Server) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<JoinHandle<Result<usize, String>>> = (0..FLOODERS)
        .map(|n| {
            let (addr, stop) = (server.addr(), Arc::clone(&stop));
            std::thread::spawn(move || flood(addr, n, &stop))
        })
        .collect();
    let (peak, probes) = watch_flood(server);
    stop.store(true, Ordering::Relaxed);
    let (mut written, mut cut) = (0, Vec::new());
    for flooder in flooders {
        match flooder.join().expect("a flooder panicked") {
            Ok(bytes) => written += bytes,
            Err(why) => cut.push(why),
        }
    }
    Flood {
        peak,
        probes,
        written,
        cut,
    }
}

#[test]
fn multiget_flood_never_read() {
    let server = Server::start(&["-t", "2", "-m", "64"]);
    let mut admin = Conn::connect(server.addr());
    store_big_values(&mut admin);
    let before = Levels::measure(&server, &mut admin);
    let flood = run_flood(&server);
    let after = Levels::settle(&server, &mut admin, &before);
    let prompt_after = probe(server.addr());

    let per_flooder = flood.peak.saturating_sub(before.rss) / FLOODERS as u64;
    eprintln!(
        "flood: {FLOODERS} clients wrote {:.1} MiB of multi-gets in {FLOOD:?}; RSS before \
         {:.1} MiB, peak {:.1} MiB (bound {:.1}; {per_flooder} KiB per flooder), after \
         {:.1} MiB; fresh clients answered in {:?} during, {prompt_after:?} after",
        flood.written as f64 / (1 << 20) as f64,
        mib(before.rss),
        mib(flood.peak),
        mib(FLOOD_BOUND_KIB),
        mib(after.rss),
        flood.probes,
    );
    assert!(flood.cut.is_empty(), "flooders cut off: {:?}", flood.cut);
    assert!(
        flood.peak <= FLOOD_BOUND_KIB,
        "RSS peaked at {:.1} MiB",
        mib(flood.peak)
    );
    let slowest = flood.probes.iter().chain([&prompt_after]).max().unwrap();
    assert!(*slowest <= PROMPT, "a fresh client waited {slowest:?}");
    assert_eq!(
        (after.connections, after.read_buffers),
        (before.connections, before.read_buffers),
        "connections or read buffers left after the flood"
    );
    assert!(
        after.rss <= before.rss + FLOOD_AFTER_KIB,
        "RSS {:.1} MiB after the flood, {:.1} MiB before",
        mib(after.rss),
        mib(before.rss)
    );
}
