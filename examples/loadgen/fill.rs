//! Blocking helpers that are not timed: storing every key once before a run (`--fill`),
//! and reading `stats`.
//!
//! Sets are pipelined in batches of `FILL_BATCH` on one blocking connection per thread;
//! every reply must be `STORED`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::reply::{self, Framing, StoreReply};
use crate::workload::{ReadCommand, Workload};

/// Sets written before their replies are read.
pub const FILL_BATCH: u64 = 100;

/// A blocking connection with a read buffer.
pub struct Blocking {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Blocking {
    /// Connects to `addr`.
    ///
    /// # Errors
    /// The connection is refused.
    pub fn connect(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        Ok(Blocking {
            stream,
            input: Vec::new(),
        })
    }

    /// Writes all of `bytes`.
    ///
    /// # Errors
    /// The write fails.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads until `parse` finds a complete reply at the start of the buffer, and
    /// consumes it. `parse` returns the reply and its length.
    ///
    /// # Errors
    /// What `parse` refuses, or a read that fails or finds the connection closed.
    pub fn reply<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, reply::ReplyError>,
    ) -> Result<T, String> {
        loop {
            if let Some((value, len)) = parse(&self.input).map_err(|e| e.to_string())? {
                self.input.drain(..len);
                return Ok(value);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Sends `stats` and returns its fields.
    ///
    /// # Errors
    /// The connection fails or the reply is not a `stats` listing.
    pub fn stats(&mut self) -> Result<HashMap<String, String>, String> {
        self.send(b"stats\r\n")?;
        self.reply(parse_stats)
    }
}

/// `stats` fields by name.
type Stats = HashMap<String, String>;

/// Parses `STAT <name> <value>` lines up to `END`; the fields and the bytes used.
fn parse_stats(buf: &[u8]) -> Result<Option<(Stats, usize)>, reply::ReplyError> {
    let Some(end) = memchr::memmem::find(buf, b"END\r\n") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut stats = HashMap::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ' ');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("STAT"), Some(name), Some(value)) => {
                stats.insert(name.to_string(), value.to_string())
            }
            _ => {
                return Err(reply::ReplyError::Framing {
                    expected: "STAT lines",
                    got: line.to_string(),
                });
            }
        };
    }
    Ok(Some((stats, end + 5)))
}

/// A `stats` field as a number.
///
/// # Errors
/// The field is missing or not a number.
pub fn stat(stats: &HashMap<String, String>, name: &str) -> Result<u64, String> {
    let value = stats
        .get(name)
        .ok_or_else(|| format!("stats has no {name}"))?;
    value
        .parse()
        .map_err(|_| format!("stats {name} is {value:?}, not a number"))
}

/// Stores every key of the workload once, value lengths drawn as the workload draws
/// them, split over `threads` connections. Returns the seconds it took.
///
/// # Errors
/// A connection fails or a set is not answered `STORED` (or `HD` for meta).
pub fn fill(
    addr: SocketAddr,
    workload: &Workload,
    keys: u64,
    threads: usize,
    seed: u64,
) -> Result<f64, String> {
    let started = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let range = keys * t / threads as u64..keys * (t + 1) / threads as u64;
                scope.spawn(move || fill_range(addr, workload, range, seed ^ (t << 32)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("fill thread panicked"))
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(started.elapsed().as_secs_f64())
}

fn fill_range(
    addr: SocketAddr,
    workload: &Workload,
    range: std::ops::Range<u64>,
    seed: u64,
) -> Result<(), String> {
    let mut conn = Blocking::connect(addr)?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut next = range.start;
    while next < range.end {
        let batch = (range.end - next).min(FILL_BATCH);
        out.clear();
        for id in next..next + batch {
            workload.encode_write(&mut out, id, workload.sizes.sample(&mut rng));
        }
        conn.send(&out)?;
        for _ in 0..batch {
            store_reply(&mut conn, workload)?;
        }
        next += batch;
    }
    Ok(())
}

/// Waits for the reply to one write of `workload`.
///
/// # Errors
/// Anything but `STORED` (text) or `HD` (meta).
pub fn store_reply(conn: &mut Blocking, workload: &Workload) -> Result<(), String> {
    let want = match workload.read {
        ReadCommand::MetaGet => StoreReply::Hd,
        ReadCommand::Get | ReadCommand::MultiGet(_) => StoreReply::Stored,
    };
    let mut framing = Framing::default();
    conn.reply(|buf| Ok(reply::parse_store(buf, want, &mut framing)?.map(|len| ((), len))))
}
