//! Memory stays inside its budget: filling the cache with ten times `-m` of mixed
//! sizes leaves the process's resident memory under `-m` plus the overhead the README
//! states ([`STATED_OVERHEAD_MIB`]).

mod common;

use common::{Conn, Server};

/// The README's statement of what the process holds beyond `-m`: code and thread
/// stacks, the hash index, and connection buffers.
const STATED_OVERHEAD_MIB: u64 = 16;

/// Resident memory of a process in MiB, from `/proc`.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// A deterministic mix of value sizes from 6 bytes to 200 KB.
fn sizes() -> impl Iterator<Item = usize> {
    const CLASSES: [usize; 9] = [10, 50, 100, 300, 1000, 3000, 10_000, 50_000, 200_000];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let top = CLASSES[(state % 9) as usize];
        top / 2 + 1 + (state >> 8) as usize % (top / 2)
    })
}

#[test]
fn filling_ten_times_the_limit_keeps_rss_under_the_stated_bound() {
    let server = Server::start(&["-t", "2", "-m", "64"]);
    let mut c = Conn::connect(server.addr());
    let total = 640usize << 20;
    let (mut sent, mut n) = (0, 0);
    let mut batch = Vec::new();
    for size in sizes() {
        if sent >= total {
            break;
        }
        batch.extend_from_slice(format!("set key:{n} 0 0 {size} noreply\r\n").as_bytes());
        batch.resize(batch.len() + size, b'v');
        batch.extend_from_slice(b"\r\n");
        (sent, n) = (sent + size, n + 1);
        if batch.len() > 1 << 20 {
            c.send(&batch);
            batch.clear();
        }
    }
    batch.extend_from_slice(b"mn\r\n");
    assert_eq!(c.request(&batch), b"MN\r\n");
    let stats = String::from_utf8(c.request(b"stats\r\n")).unwrap();
    assert!(
        !stats.contains("STAT evictions 0\r\n"),
        "the cache should be full"
    );
    let rss = rss_mib(server.pid());
    eprintln!("RSS {rss} MiB after {n} items of mixed sizes into -m 64");
    assert!(
        rss < 64 + STATED_OVERHEAD_MIB,
        "RSS {rss} MiB after {n} items; the bound is 64 + {STATED_OVERHEAD_MIB} MiB"
    );
}
