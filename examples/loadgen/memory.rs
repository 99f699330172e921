//! Memory efficiency (`--mode memory`): store new keys until the server starts to
//! evict, then count what it holds.
//!
//! The count comes from the server itself, key by key: `mg <key> s` for every key
//! written says whether it is still there and how long its value is, so the bytes of
//! key and value held are exact whatever the value sizes. `stats` adds `curr_items`,
//! `limit_maxbytes` and `hash_bytes`; `report` works out the overhead per item.

use std::net::SocketAddr;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::fill::{self, Blocking};
use crate::reply::{self, Framing};
use crate::workload::Workload;

/// Sets between two looks at `stats evictions`.
const CHECK_EVERY: u64 = 2_000;
/// Probes written before their replies are read.
const SCAN_BATCH: u64 = 1_000;
/// Give up when this many times `limit_maxbytes` of keys and values went in unevicted.
const GIVE_UP_FACTOR: u64 = 4;

/// What one memory fill found.
#[derive(Debug, Serialize)]
pub struct MemoryReport {
    /// Keys stored before the first eviction was seen.
    pub keys_written: u64,
    /// Keys still there, by probe.
    pub items_held: u64,
    /// Bytes of key and value of the keys held.
    pub payload_bytes: u64,
    /// The server's own counts.
    pub curr_items: u64,
    pub evictions: u64,
    pub limit_maxbytes: u64,
    pub hash_bytes: u64,
    pub bytes: u64,
}

/// Stores keys 0, 1, 2, ... until `stats` shows an eviction, then probes them all.
///
/// # Errors
/// A connection or reply fails, or nothing is evicted after `GIVE_UP_FACTOR` times the
/// memory limit was written (evictions disabled with `-M`, say).
pub fn run(addr: SocketAddr, workload: &Workload, seed: u64) -> Result<MemoryReport, String> {
    let mut conn = Blocking::connect(addr)?;
    let limit = fill::stat(&conn.stats()?, "limit_maxbytes")?;
    let give_up = GIVE_UP_FACTOR * limit / workload.key_len(0) as u64;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut written = 0;
    let mut out = Vec::new();
    while fill::stat(&conn.stats()?, "evictions")? == 0 {
        if written > give_up {
            return Err(format!(
                "no eviction after {written} keys: are evictions disabled?"
            ));
        }
        for first in (written..written + CHECK_EVERY).step_by(fill::FILL_BATCH as usize) {
            out.clear();
            for id in first..first + fill::FILL_BATCH {
                workload.encode_write(&mut out, id, workload.sizes.sample(&mut rng));
            }
            conn.send(&out)?;
            for _ in 0..fill::FILL_BATCH {
                fill::store_reply(&mut conn, workload)?;
            }
        }
        written += CHECK_EVERY;
    }
    let (items_held, payload_bytes) = probe(&mut conn, workload, written)?;
    let stats = conn.stats()?;
    Ok(MemoryReport {
        keys_written: written,
        items_held,
        payload_bytes,
        curr_items: fill::stat(&stats, "curr_items")?,
        evictions: fill::stat(&stats, "evictions")?,
        limit_maxbytes: limit,
        hash_bytes: fill::stat(&stats, "hash_bytes")?,
        bytes: fill::stat(&stats, "bytes")?,
    })
}

/// Asks for the value length of keys `0..keys`; returns how many are there and the
/// bytes of their keys and values.
fn probe(conn: &mut Blocking, workload: &Workload, keys: u64) -> Result<(u64, u64), String> {
    let (mut held, mut payload) = (0, 0);
    let mut framing = Framing::default();
    let mut out = Vec::new();
    for first in (0..keys).step_by(SCAN_BATCH as usize) {
        let last = (first + SCAN_BATCH).min(keys);
        out.clear();
        for id in first..last {
            workload.encode_size_probe(&mut out, id);
        }
        conn.send(&out)?;
        for id in first..last {
            let size = conn
                .reply(|buf| Ok(reply::parse_size(buf, &mut framing)?.map(|r| (r.size, r.len))))?;
            if let Some(size) = size {
                held += 1;
                payload += (workload.key_len(id) + size) as u64;
            }
        }
    }
    Ok((held, payload))
}
