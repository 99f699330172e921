//! Random operations under memory pressure (evictions, chains, page moves, expiry,
//! flushes, limit changes), checking after every step that the shard's structures
//! agree with each other and that every answer is one the history allows.

use std::collections::HashMap;

use proptest::prelude::*;

use super::arith::parse_u64;
use super::tests::Harness;
use super::*;
use crate::storage::item::{
    self, CHAINED, FETCHED, KIND, KIND_CHAIN, KIND_FREE, KIND_ITEM, LINKED,
};
use crate::storage::lru::Lrus;

const PAGE: usize = 64 << 10;

impl Shard {
    /// Panics unless free lists, LRU lists, the index, every page and the stats agree.
    fn check(&self) {
        assert_eq!(self.pinned, NIL);
        let mut linked = 0;
        for class in 1..=self.limits.largest {
            // SAFETY: the invariant under test; a violation panics before any write.
            debug_assert!(class <= self.limits.largest);
            unsafe {
                self.check_pages(class);
                linked += self.check_lru(class);
            }
        }
        let stats = self.stats.snapshot();
        assert_eq!(
            (linked, self.index.len()),
            (stats.curr_items as usize, linked)
        );
        let pages: u64 = stats.classes.iter().map(|c| c.total_pages).sum();
        assert_eq!(pages * PAGE as u64, stats.total_malloced);
    }

    unsafe fn check_lru(&self, class: u8) -> usize {
        let mut r = self.lru.tail(class);
        let mut count = 0;
        while r != NIL {
            let h = self.mem.hdr(r);
            assert_eq!((*h).bits() & (KIND | LINKED), KIND_ITEM | LINKED);
            assert_eq!(self.lru_class(r), class);
            let bytes = item::key(self.mem, r);
            let key = Key {
                bytes,
                hash: self.index.hasher().hash(bytes),
            };
            assert_eq!(self.index.find(self.mem, key), r);
            count += 1;
            r = Lrus::newer(self.mem, r);
        }
        assert_eq!(count, self.lru.len(class));
        assert_eq!(count as u64, self.stats.class(class).snapshot().number);
        count
    }

    unsafe fn check_pages(&self, class: u8) {
        let mut free = 0;
        for &page in self.chunks.pages(class) {
            for c in self.chunks.chunk_refs(page, class) {
                let h = self.mem.hdr(c);
                assert_eq!((*h).class, class);
                match (*h).bits() & KIND {
                    KIND_FREE => free += 1,
                    KIND_ITEM => assert!((*h).bits() & LINKED != 0, "unlinked item left behind"),
                    KIND_CHAIN => self.check_chain_chunk(c),
                    kind => panic!("chunk of kind {kind}"),
                }
            }
        }
        assert_eq!(free, self.stats.class(class).snapshot().free_chunks);
    }

    unsafe fn check_chain_chunk(&self, c: u32) {
        let owner = (*self.mem.hdr(c)).link();
        let h = self.mem.hdr(owner);
        assert_eq!(
            (*h).bits() & (KIND | LINKED | CHAINED),
            KIND_ITEM | LINKED | CHAINED
        );
        let refs = (0..self.chain_len(owner)).map(|i| self.chain_ref(owner, i).read_unaligned());
        assert!(
            refs.into_iter().any(|r| r == c),
            "chain chunk not in its head's chain"
        );
    }
}

#[derive(Clone, Debug)]
enum Op {
    Set(u8, usize, u32),
    Append(u8, usize),
    Get(u8),
    Delete(u8),
    Incr(u8),
    Advance(u32),
    Flush,
    Crawl,
    Limit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..40;
    let size = prop_oneof![4 => 0usize..200, 2 => 200usize..3000, 1 => 8_000usize..40_000];
    prop_oneof![
        8 => (key.clone(), size.clone(), 0u32..30).prop_map(|(k, n, ttl)| Op::Set(k, n, ttl)),
        2 => (key.clone(), size).prop_map(|(k, n)| Op::Append(k, n)),
        6 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Delete),
        1 => key.prop_map(Op::Incr),
        1 => (1u32..10).prop_map(Op::Advance),
        1 => Just(Op::Flush),
        1 => Just(Op::Crawl),
        1 => (3usize..10).prop_map(Op::Limit),
    ]
}

/// What the history allows for one key: the last value written and when it expires.
#[derive(Clone, Debug)]
struct Written {
    value: Vec<u8>,
    expires: RelTime,
}

struct Stress {
    h: Harness,
    model: HashMap<u8, Written>,
    version: u32,
}

impl Stress {
    fn new() -> Stress {
        let config = SlabConfig {
            page_size: PAGE,
            chunk_max: 8 << 10,
            item_size_max: 128 << 10,
            hashpower: 3,
            ..SlabConfig::default()
        };
        let h = Harness::new(config, 8 * PAGE);
        Stress {
            h,
            model: HashMap::new(),
            version: 0,
        }
    }

    fn name(k: u8) -> Vec<u8> {
        format!("stress-key-{k}").into_bytes()
    }

    fn fresh_value(&mut self, len: usize) -> Vec<u8> {
        self.version += 1;
        let seed = format!("<{}>", self.version);
        seed.bytes().cycle().take(len).collect()
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Set(k, len, ttl) => self.set(k, len, ttl),
            Op::Append(k, len) => self.append(k, len),
            Op::Get(k) => self.get(k),
            Op::Delete(k) => self.delete(k),
            Op::Incr(k) => self.incr(k),
            Op::Advance(secs) => self.h.clock.advance(secs),
            Op::Flush => {
                self.h.flush.flush_now();
                self.model.clear();
            }
            Op::Crawl => {
                self.h.shard.crawl(50);
            }
            Op::Limit(pages) => assert!(self.h.pool.set_limit(pages * PAGE)),
        }
        self.h.shard.check();
    }

    fn set(&mut self, k: u8, len: usize, ttl: u32) {
        let value = self.fresh_value(len);
        let expires = if ttl == 0 {
            0
        } else {
            self.h.clock.realtime(i64::from(ttl))
        };
        let outcome = self
            .h
            .store(StoreMode::Set, &Self::name(k), &value, 0, expires);
        match outcome {
            StoreOutcome::Stored { .. } => {
                self.model.insert(k, Written { value, expires });
            }
            StoreOutcome::NoMemory => {
                self.model.remove(&k);
            }
            other => panic!("set answered {other:?}"),
        }
    }

    fn append(&mut self, k: u8, len: usize) {
        let suffix = self.fresh_value(len);
        match self
            .h
            .store(StoreMode::Append, &Self::name(k), &suffix, 0, 0)
        {
            StoreOutcome::Stored { .. } => {
                let written = self
                    .model
                    .get_mut(&k)
                    .expect("append found a value never written");
                written.value.extend_from_slice(&suffix);
            }
            // Absent, too large, or no memory: whichever, the item did not change.
            StoreOutcome::NotStored => {}
            other => panic!("append answered {other:?}"),
        }
    }

    fn get(&mut self, k: u8) {
        let now = self.h.clock.now();
        match self.h.get(&Self::name(k)) {
            Ok((value, _, _)) => {
                let written = self.model.get(&k).expect("a hit on a key never written");
                assert!(value == written.value, "key {k} holds another value");
                assert!(
                    written.expires == 0 || written.expires > now,
                    "expired item returned"
                );
            }
            Err(_) => {
                self.model.remove(&k);
            }
        }
    }

    fn delete(&mut self, k: u8) {
        match self.h.delete(&Self::name(k), 0) {
            DeleteOutcome::Deleted => assert!(self.model.remove(&k).is_some()),
            DeleteOutcome::NotFound => {
                self.model.remove(&k);
            }
            DeleteOutcome::Exists => panic!("delete without CAS answered Exists"),
        }
    }

    fn incr(&mut self, k: u8) {
        match self.h.arith(&Self::name(k), true, 1) {
            ArithOutcome::Value { value, .. } => {
                let written = self
                    .model
                    .get_mut(&k)
                    .expect("incr found a value never written");
                let before = parse_u64(&written.value).expect("incr of a non-number");
                assert_eq!(value, before.wrapping_add(1));
                let mut digits = value.to_string().into_bytes();
                digits.resize(digits.len().max(written.value.len()), b' ');
                written.value = digits;
            }
            ArithOutcome::NonNumeric => {
                let written = self
                    .model
                    .get(&k)
                    .expect("incr found a value never written");
                assert!(parse_u64(&written.value).is_none());
            }
            ArithOutcome::NotFound => {
                self.model.remove(&k);
            }
            // The longer number found no memory: the old item stays as it was.
            ArithOutcome::NoMemory => {}
            ArithOutcome::Exists => panic!("incr without CAS answered Exists"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn shard_stays_consistent_under_pressure(ops in proptest::collection::vec(op(), 1..400)) {
        let mut stress = Stress::new();
        for op in ops {
            stress.run(op);
            prop_assert!(stress.h.pool.malloced() <= 10 * PAGE);
        }
    }
}

#[test]
fn fetched_bit_is_set_by_reads_only() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    let key = h.hasher.key(b"k");
    // SAFETY: test-only peek at a live item found through the index.
    debug_assert!(h.shard.pinned == NIL);
    let bits =
        |h: &Harness| unsafe { (*h.shard.mem.hdr(h.shard.index.find(h.shard.mem, key))).bits() };
    assert_eq!(bits(&h) & FETCHED, 0);
    h.get(b"k").unwrap();
    assert_ne!(bits(&h) & FETCHED, 0);
}

#[test]
fn a_long_run_takes_every_path() {
    let mut stress = Stress::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for step in 0..20_000 {
        let k = next(40) as u8;
        let op = match next(100) {
            0..=39 => Op::Set(
                k,
                [50, 1500, 20_000][next(3) as usize] + next(100) as usize,
                next(30) as u32,
            ),
            40..=49 => Op::Append(k, next(3000) as usize),
            50..=84 => Op::Get(k),
            85..=89 => Op::Delete(k),
            90..=93 => Op::Incr(k),
            94..=96 => Op::Advance(1 + next(5) as u32),
            97 => Op::Crawl,
            98 if step % 10 == 0 => Op::Flush,
            98 => Op::Get(k),
            _ => Op::Limit(4 + next(6) as usize),
        };
        stress.run(op);
    }
    let stats = stress.h.stats();
    assert!(stats.evictions > 100, "{stats:?}");
    assert!(
        stats.slabs_moved > 10 && stats.slab_reassign_evictions_nomem > 0,
        "{stats:?}"
    );
    assert!(stats.reclaimed + stats.crawler_reclaimed > 0, "{stats:?}");
    assert!(stats.hash_power_level > 3);
}
