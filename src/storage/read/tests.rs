//! Reads from another thread: the same answers as the owner, nothing torn or foreign
//! while the owner writes, and a miss trusted only when nothing moved.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::storage::clock::{Clock, ManualClock};
use crate::storage::{KeyHasher, PagePool, Shard, SlabConfig, Store, StoreMode, StoreOutcome};

struct Setup {
    shard: Shard,
    reader: Reader,
    clock: Arc<ManualClock>,
    flush: Arc<FlushState>,
    hasher: KeyHasher,
}

fn setup(config: SlabConfig, limit: usize) -> Setup {
    let pool = Arc::new(PagePool::new(limit, config.page_size, 1).unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let flush = Arc::new(FlushState::new());
    let hasher = KeyHasher::with_seed(11);
    let shard = Shard::with_hasher(
        0,
        &config,
        pool,
        clock.clone(),
        flush.clone(),
        hasher.clone(),
    );
    let reader = shard.reader();
    Setup {
        shard,
        reader,
        clock,
        flush,
        hasher,
    }
}

impl Setup {
    fn set(&mut self, key: &[u8], value: &[u8], exptime: u32) -> StoreOutcome {
        let key = self.hasher.key(key);
        let mode = StoreMode::Set;
        self.shard.store(Store {
            key,
            mode,
            flags: 7,
            exptime,
            value,
        })
    }

    fn read(&self, key: &[u8]) -> (Read, Vec<u8>) {
        let mut out = Vec::new();
        let key = self.hasher.key(key);
        let read = self
            .reader
            .get(key, self.clock.now(), &mut out, |out, found| {
                out.extend_from_slice(
                    format!("{} {} {}|", found.flags, found.len, found.cas).as_bytes(),
                );
            });
        (read, out)
    }
}

#[test]
fn a_read_sees_what_the_owner_stored() {
    let mut s = setup(SlabConfig::default(), 64 << 20);
    assert_eq!(s.read(b"k"), (Read::Miss(Miss::NotFound), vec![]));
    let StoreOutcome::Stored { cas } = s.set(b"k", b"value", 0) else {
        panic!("not stored");
    };
    let (read, out) = s.read(b"k");
    assert_eq!(read, Read::Hit);
    assert_eq!(out, format!("7 5 {cas}|value").into_bytes());
}

#[test]
fn chained_values_read_whole() {
    let config = SlabConfig {
        item_size_max: 8 << 20,
        ..SlabConfig::default()
    };
    let mut s = setup(config, 64 << 20);
    let value: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert!(matches!(
        s.set(b"big", &value, 0),
        StoreOutcome::Stored { .. }
    ));
    let (read, out) = s.read(b"big");
    assert_eq!(read, Read::Hit);
    let body = &out[out.iter().position(|&b| b == b'|').unwrap() + 1..];
    assert_eq!(body, &value[..]);
}

#[test]
fn expired_and_flushed_items_miss() {
    let mut s = setup(SlabConfig::default(), 64 << 20);
    s.set(b"short", b"x", s.clock.now() + 10);
    s.clock.advance(10);
    assert_eq!(s.read(b"short").0, Read::Miss(Miss::Expired));
    s.set(b"f", b"x", 0);
    s.flush.flush_now();
    assert_eq!(
        s.read(b"f").0,
        Read::Unsure,
        "the owner has not applied the flush yet"
    );
    s.set(b"after", b"y", 0);
    assert_eq!(s.read(b"f").0, Read::Miss(Miss::Flushed));
    assert_eq!(s.read(b"after").0, Read::Hit);
}

#[test]
fn a_read_marks_the_item_fetched_and_accessed() {
    let mut s = setup(SlabConfig::default(), 64 << 20);
    s.set(b"k", b"v", 0);
    assert_eq!(s.read(b"k").0, Read::Hit);
    let key = s.hasher.key(b"k");
    let crate::storage::Lookup::Hit(item) = s.shard.get(key, crate::storage::Access::default())
    else {
        panic!("missing");
    };
    assert!(item.fetched(), "the remote read counts as a fetch");
}

/// The value a writer stores for `key` at round `n`: the key and the round repeated,
/// so that a reader can tell a whole value of this key from anything else.
fn value_for(key: u32, n: u32, len: usize) -> Vec<u8> {
    let word = format!("{key:08x}{n:08x}");
    word.bytes().cycle().take(len).collect()
}

fn check(key: u32, body: &[u8]) {
    assert!(body.len() >= 16, "short value {body:?}");
    let round = &body[8..16];
    let word = format!("{key:08x}{}", String::from_utf8_lossy(round));
    let whole: Vec<u8> = word.bytes().cycle().take(body.len()).collect();
    assert_eq!(body, &whole[..], "torn or foreign value for key {key}");
}

/// The owner overwrites, deletes and evicts under memory pressure (pages move between
/// classes, chunks are reused) while two threads read: every hit is a whole value of
/// the key asked for.
#[test]
fn concurrent_reads_never_see_torn_or_foreign_values() {
    let config = SlabConfig {
        page_size: 64 << 10,
        chunk_max: 32 << 10,
        item_size_max: 256 << 10,
        ..SlabConfig::default()
    };
    let Setup {
        mut shard,
        reader,
        clock,
        hasher,
        ..
    } = setup(config, 4 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (reader, hasher, clock, stop) =
                (reader.clone(), hasher.clone(), clock.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut hits, mut i) = (0u64, t as u32);
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let k = i % 500;
                    i = i.wrapping_add(7);
                    out.clear();
                    let key_bytes = format!("key{k}");
                    let key = hasher.key(key_bytes.as_bytes());
                    if reader.get(key, clock.now(), &mut out, |_, _| {}) == Read::Hit {
                        check(k, &out);
                        hits += 1;
                    }
                }
                hits
            })
        })
        .collect();
    for n in 0..200_000u32 {
        let k = n.wrapping_mul(2_654_435_761) % 500;
        let key_bytes = format!("key{k}");
        let key = hasher.key(key_bytes.as_bytes());
        let len = 16 + (n as usize * 37) % if n % 50 == 0 { 100_000 } else { 600 };
        if n % 7 == 0 {
            shard.delete(key, 0);
            continue;
        }
        let value = value_for(k, n, len);
        shard.store(Store {
            key,
            mode: StoreMode::Set,
            flags: 0,
            exptime: 0,
            value: &value,
        });
    }
    stop.store(true, Ordering::Relaxed);
    let hits: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(hits > 0, "the readers read nothing");
}

/// While the owner's index doubles again and again, a key that is there is never
/// reported missing: a read during a migration answers a hit or "unsure".
#[test]
fn a_present_key_never_misses_while_the_index_grows() {
    let config = SlabConfig {
        hashpower: 2,
        ..SlabConfig::default()
    };
    let mut s = setup(config, 256 << 20);
    for k in 0..1000 {
        s.set(format!("base{k}").as_bytes(), b"present", 0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (reader, hasher, clock) = (s.reader.clone(), s.hasher.clone(), s.clock.clone());
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut hits, mut k) = (0u64, 0u32);
            let mut out = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                k = (k + 1) % 1000;
                out.clear();
                let key_bytes = format!("base{k}");
                let key = hasher.key(key_bytes.as_bytes());
                match reader.get(key, clock.now(), &mut out, |_, _| {}) {
                    Read::Hit => hits += 1,
                    Read::Unsure => {}
                    Read::Miss(miss) => panic!("base{k} reported missing: {miss:?}"),
                }
            }
            hits
        })
    };
    for n in 0..300_000 {
        s.set(format!("more{n}").as_bytes(), b"x", 0);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
    assert!(s.shard.stats().snapshot().hash_power_level >= 17);
}

/// Every item read by other workers (each holding a second chance) must not stop a
/// full shard from making room for new ones.
#[test]
fn a_full_shard_whose_items_were_all_read_still_stores() {
    let config = SlabConfig {
        page_size: 64 << 10,
        chunk_max: 32 << 10,
        item_size_max: 16 << 10,
        ..SlabConfig::default()
    };
    let mut s = setup(config, 8 * (64 << 10));
    let value = [b'v'; 100];
    for round in 0..4 {
        for i in 0..6000u32 {
            let key = format!("{round}:{i}");
            let outcome = s.set(key.as_bytes(), &value, 0);
            assert!(
                matches!(outcome, StoreOutcome::Stored { .. }),
                "{key}: {outcome:?}"
            );
            for back in 0..8 {
                let _ = s.read(format!("{round}:{}", i.saturating_sub(back)).as_bytes());
            }
        }
    }
}
