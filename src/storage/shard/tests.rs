//! Round trips of every shard operation and every outcome, with a manual clock.

use std::sync::Arc;

use super::*;
use crate::storage::clock::ManualClock;
use crate::storage::stats::ShardSnapshot;

/// A shard with a manual clock, a seeded hasher and its own pool.
pub(super) struct Harness {
    pub(super) shard: Shard,
    pub(super) clock: Arc<ManualClock>,
    pub(super) flush: Arc<FlushState>,
    pub(super) pool: Arc<PagePool>,
    pub(super) hasher: KeyHasher,
}

/// What a hit showed: value, flags, CAS.
pub(super) type Hit = (Vec<u8>, u32, u64);

impl Harness {
    /// A single shard over `limit` bytes.
    pub(super) fn new(config: SlabConfig, limit: usize) -> Harness {
        let pool = Arc::new(PagePool::new(limit, config.page_size, 1).unwrap());
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let flush = Arc::new(FlushState::new());
        let hasher = KeyHasher::with_seed(7);
        let shard = Shard::with_hasher(
            0,
            &config,
            Arc::clone(&pool),
            clock.clone(),
            Arc::clone(&flush),
            hasher.clone(),
        );
        Harness {
            shard,
            clock,
            flush,
            pool,
            hasher,
        }
    }

    /// The default configuration over 64 MiB.
    pub(super) fn roomy() -> Harness {
        Harness::new(SlabConfig::default(), 64 << 20)
    }

    pub(super) fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: RelTime,
    ) -> StoreOutcome {
        let key = self.hasher.key(key);
        self.shard.store(Store {
            key,
            mode,
            flags,
            exptime,
            value,
        })
    }

    pub(super) fn set(&mut self, key: &[u8], value: &[u8]) -> StoreOutcome {
        self.store(StoreMode::Set, key, value, 0, 0)
    }

    pub(super) fn get_with(&mut self, key: &[u8], access: Access) -> Result<Hit, Miss> {
        let key = self.hasher.key(key);
        match self.shard.get(key, access) {
            Lookup::Hit(item) => {
                let mut value = Vec::new();
                item.write_value(&mut value);
                Ok((value, item.flags(), item.cas()))
            }
            Lookup::Miss(miss) => Err(miss),
        }
    }

    pub(super) fn get(&mut self, key: &[u8]) -> Result<Hit, Miss> {
        self.get_with(key, Access::default())
    }

    pub(super) fn value(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key).ok().map(|hit| hit.0)
    }

    pub(super) fn arith(&mut self, key: &[u8], incr: bool, delta: u64) -> ArithOutcome {
        let key = self.hasher.key(key);
        self.shard.arith(
            key,
            Arith {
                incr,
                delta,
                initial: None,
                cas: 0,
            },
        )
    }

    pub(super) fn delete(&mut self, key: &[u8], cas: u64) -> DeleteOutcome {
        let key = self.hasher.key(key);
        self.shard.delete(key, cas)
    }

    pub(super) fn touch(&mut self, key: &[u8], exptime: RelTime) -> TouchOutcome {
        let key = self.hasher.key(key);
        self.shard.touch(key, exptime)
    }

    pub(super) fn stats(&self) -> ShardSnapshot {
        self.shard.stats().snapshot()
    }

    pub(super) fn cas_of(&mut self, key: &[u8]) -> u64 {
        self.get(key).unwrap().2
    }
}

fn stored(outcome: StoreOutcome) -> u64 {
    match outcome {
        StoreOutcome::Stored { cas } => cas,
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[test]
fn set_then_get_returns_value_flags_and_cas() {
    let mut h = Harness::roomy();
    let cas = stored(h.store(StoreMode::Set, b"foo", b"bar", 5, 0));
    assert!(cas > 0);
    assert_eq!(h.get(b"foo"), Ok((b"bar".to_vec(), 5, cas)));
    assert_eq!(h.get(b"nope"), Err(Miss::NotFound));
    let again = stored(h.set(b"foo", b"baz"));
    assert!(again > cas);
    assert_eq!(h.value(b"foo").unwrap(), b"baz");
}

#[test]
fn view_reports_size_class_and_fetched() {
    let mut h = Harness::roomy();
    h.set(b"cnt", b"10");
    let key = h.hasher.key(b"cnt");
    let Lookup::Hit(item) = h.shard.get(key, Access::default()) else {
        panic!()
    };
    assert_eq!(
        (item.key(), item.value_len(), item.total_size()),
        (&b"cnt"[..], 2, 64)
    );
    assert_eq!(
        (item.class_id(), item.exptime(), item.fetched()),
        (1, 0, false)
    );
    let Lookup::Hit(item) = h.shard.get(key, Access::default()) else {
        panic!()
    };
    assert!(item.fetched());
    assert_eq!(item.value_parts().count(), 1);
}

#[test]
fn no_bump_read_leaves_fetched_alone() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    let access = Access {
        touch: None,
        no_bump: true,
    };
    let key = h.hasher.key(b"k");
    for _ in 0..2 {
        let Lookup::Hit(item) = h.shard.get(key, access) else {
            panic!()
        };
        assert!(!item.fetched());
    }
}

#[test]
fn add_stores_only_when_absent() {
    let mut h = Harness::roomy();
    stored(h.store(StoreMode::Add, b"k", b"1", 0, 0));
    assert_eq!(
        h.store(StoreMode::Add, b"k", b"2", 0, 0),
        StoreOutcome::NotStored
    );
    assert_eq!(h.value(b"k").unwrap(), b"1");
}

#[test]
fn replace_stores_only_when_present() {
    let mut h = Harness::roomy();
    assert_eq!(
        h.store(StoreMode::Replace, b"k", b"1", 0, 0),
        StoreOutcome::NotStored
    );
    h.set(b"k", b"1");
    stored(h.store(StoreMode::Replace, b"k", b"2", 3, 0));
    assert_eq!(h.get(b"k").unwrap().0, b"2");
}

#[test]
fn append_and_prepend_keep_flags_and_expiry() {
    let mut h = Harness::roomy();
    assert_eq!(
        h.store(StoreMode::Append, b"foo", b"x", 0, 0),
        StoreOutcome::NotStored
    );
    assert_eq!(
        h.store(StoreMode::Prepend, b"foo", b"x", 0, 0),
        StoreOutcome::NotStored
    );
    let exptime = h.clock.realtime(100);
    let first = stored(h.store(StoreMode::Set, b"foo", b"bar", 5, exptime));
    let appended = stored(h.store(StoreMode::Append, b"foo", b"baz", 99, 0));
    stored(h.store(StoreMode::Prepend, b"foo", b"qux", 99, 0));
    assert!(appended > first);
    let (value, flags, _) = h.get(b"foo").unwrap();
    assert_eq!((value.as_slice(), flags), (&b"quxbarbaz"[..], 5));
    let key = h.hasher.key(b"foo");
    let Lookup::Hit(item) = h.shard.get(key, Access::default()) else {
        panic!()
    };
    assert_eq!(item.exptime(), exptime);
}

#[test]
fn append_past_the_item_limit_is_not_stored() {
    let config = SlabConfig {
        item_size_max: 4096,
        ..SlabConfig::default()
    };
    let mut h = Harness::new(config, 16 << 20);
    stored(h.set(b"ap", &[b'a'; 3000]));
    assert_eq!(
        h.store(StoreMode::Append, b"ap", &[b'b'; 1100], 0, 0),
        StoreOutcome::NotStored
    );
    assert_eq!(h.value(b"ap").unwrap().len(), 3000);
}

#[test]
fn cas_checks_presence_then_value() {
    let mut h = Harness::roomy();
    assert_eq!(
        h.store(StoreMode::Cas(1), b"k", b"x", 0, 0),
        StoreOutcome::NotFound
    );
    let cas = stored(h.set(b"k", b"x"));
    assert_eq!(
        h.store(StoreMode::Cas(cas + 1000), b"k", b"y", 0, 0),
        StoreOutcome::Exists
    );
    let next = stored(h.store(StoreMode::Cas(cas), b"k", b"z", 0, 0));
    assert_eq!(h.get(b"k"), Ok((b"z".to_vec(), 0, next)));
    let class = &h.stats().classes[1];
    assert_eq!((class.cas_hits, class.cas_badval), (1, 1));
}

#[test]
fn disabled_cas_reads_zero_and_never_matches() {
    let config = SlabConfig {
        cas_enabled: false,
        ..SlabConfig::default()
    };
    let mut h = Harness::new(config, 16 << 20);
    assert_eq!(h.set(b"k", b"x"), StoreOutcome::Stored { cas: 0 });
    assert_eq!(h.cas_of(b"k"), 0);
    for cas in [0, 5] {
        let outcome = h.store(StoreMode::Cas(cas), b"k", b"y", 0, 0);
        assert_eq!(outcome, StoreOutcome::Exists);
    }
    let absent = h.store(StoreMode::Cas(0), b"absent", b"y", 0, 0);
    assert_eq!(absent, StoreOutcome::NotFound);
    assert_eq!(h.delete(b"k", 5), DeleteOutcome::Exists);
    assert_eq!(h.value(b"k").unwrap(), b"x");
    h.flush.flush_now();
    assert_eq!(h.get(b"k"), Err(Miss::Flushed));
}

#[test]
fn delete_checks_cas_and_counts() {
    let mut h = Harness::roomy();
    assert_eq!(h.delete(b"k", 0), DeleteOutcome::NotFound);
    let cas = stored(h.set(b"k", b"x"));
    assert_eq!(h.delete(b"k", cas + 1), DeleteOutcome::Exists);
    assert_eq!(h.delete(b"k", cas), DeleteOutcome::Deleted);
    assert_eq!(h.get(b"k"), Err(Miss::NotFound));
    h.set(b"k", b"x");
    assert_eq!(h.delete(b"k", 0), DeleteOutcome::Deleted);
    let stats = h.stats();
    assert_eq!(
        (stats.classes[1].delete_hits, stats.curr_items, stats.bytes),
        (2, 0, 0)
    );
}

#[test]
fn discard_removes_without_counting() {
    let mut h = Harness::roomy();
    h.set(b"k", b"x");
    let key = h.hasher.key(b"k");
    h.shard.discard(key);
    h.shard.discard(key);
    assert_eq!(h.get(b"k"), Err(Miss::NotFound));
    assert_eq!(h.stats().classes[1].delete_hits, 0);
}

#[test]
fn touch_and_gat_set_expiry_without_changing_cas() {
    let mut h = Harness::roomy();
    assert_eq!(h.touch(b"t", 0), TouchOutcome::NotFound);
    let cas = stored(h.set(b"t", b"x"));
    let exptime = h.clock.realtime(10);
    assert_eq!(h.touch(b"t", exptime), TouchOutcome::Touched);
    assert_eq!(h.cas_of(b"t"), cas);
    h.clock.advance(10);
    assert_eq!(h.get(b"t"), Err(Miss::Expired));
    h.set(b"g", b"y");
    let access = Access {
        touch: Some(h.clock.realtime(5)),
        no_bump: false,
    };
    assert_eq!(h.get_with(b"g", access).unwrap().0, b"y");
    h.clock.advance(5);
    assert_eq!(h.get(b"g"), Err(Miss::Expired));
    assert_eq!(h.stats().classes[1].touch_hits, 2);
}

#[test]
fn items_expire_at_their_exptime() {
    let mut h = Harness::roomy();
    let exptime = h.clock.realtime(10);
    h.store(StoreMode::Set, b"ttl", b"x", 0, exptime);
    h.clock.advance(9);
    assert!(h.get(b"ttl").is_ok());
    h.clock.advance(1);
    assert_eq!(h.get(b"ttl"), Err(Miss::Expired));
    assert_eq!(h.get(b"ttl"), Err(Miss::NotFound));
    h.store(
        StoreMode::Set,
        b"past",
        b"x",
        0,
        crate::storage::clock::EXPIRED,
    );
    assert_eq!(h.get(b"past"), Err(Miss::Expired));
}

#[test]
fn immediate_flush_spares_later_items_of_the_same_second() {
    let mut h = Harness::roomy();
    h.set(b"old", b"x");
    h.set(b"fa", b"x");
    h.flush.flush_now();
    h.set(b"new", b"y");
    assert_eq!(h.get(b"old"), Err(Miss::Flushed));
    assert_eq!(h.value(b"new").unwrap(), b"y");
    stored(h.store(StoreMode::Add, b"fa", b"y", 0, 0));
    assert_eq!(h.value(b"fa").unwrap(), b"y");
}

#[test]
fn delayed_flush_hides_items_once_due() {
    let mut h = Harness::roomy();
    h.set(b"fa", b"x");
    h.flush.flush_at(h.clock.now() + 2);
    h.clock.advance(1);
    h.set(b"between", b"x");
    assert!(h.get(b"fa").is_ok());
    h.clock.advance(1);
    assert_eq!(h.get(b"fa"), Err(Miss::Flushed));
    assert_eq!(h.get(b"between"), Err(Miss::Flushed));
    h.clock.advance(1);
    h.set(b"after", b"z");
    assert_eq!(h.value(b"after").unwrap(), b"z");
}

#[test]
fn incr_and_decr_follow_memcached() {
    let mut h = Harness::roomy();
    h.set(b"n", b"10");
    assert!(matches!(
        h.arith(b"n", true, 5),
        ArithOutcome::Value { value: 15, .. }
    ));
    assert!(matches!(
        h.arith(b"n", false, 3),
        ArithOutcome::Value { value: 12, .. }
    ));
    assert!(matches!(
        h.arith(b"n", false, 100),
        ArithOutcome::Value { value: 0, .. }
    ));
    h.set(b"big", b"18446744073709551615");
    assert!(matches!(
        h.arith(b"big", true, 1),
        ArithOutcome::Value { value: 0, .. }
    ));
    assert_eq!(h.arith(b"nokey", true, 1), ArithOutcome::NotFound);
    for bad in [&b"abc"[..], b"-1", b"", b"18446744073709551616"] {
        h.set(b"s", bad);
        assert_eq!(h.arith(b"s", true, 1), ArithOutcome::NonNumeric);
    }
    let stats = h.stats();
    assert_eq!(
        (stats.classes[1].incr_hits, stats.classes[1].decr_hits),
        (2, 2)
    );
}

#[test]
fn shorter_numbers_are_padded_in_place() {
    let mut h = Harness::roomy();
    let cas = stored(h.set(b"d", b"100"));
    let ArithOutcome::Value {
        value: 99,
        cas: after,
    } = h.arith(b"d", false, 1)
    else {
        panic!()
    };
    assert!(after > cas);
    assert_eq!(h.get(b"d").unwrap(), (b"99 ".to_vec(), 0, after));
    h.arith(b"d", false, 95);
    assert_eq!(h.value(b"d").unwrap(), b"4  ");
}

#[test]
fn longer_numbers_get_a_new_item_with_the_same_flags() {
    let mut h = Harness::roomy();
    h.store(StoreMode::Set, b"g", b"99", 123, 0);
    assert!(matches!(
        h.arith(b"g", true, 1),
        ArithOutcome::Value { value: 100, .. }
    ));
    assert_eq!(h.get(b"g").unwrap().0, b"100");
    assert_eq!(h.get(b"g").unwrap().1, 123);
    assert_eq!(h.stats().curr_items, 1);
}

#[test]
fn arith_checks_cas_and_creates_from_initial() {
    let mut h = Harness::roomy();
    let key = h.hasher.key(b"c");
    let initial = Some(Initial {
        value: 7,
        flags: 3,
        exptime: 0,
    });
    let create = Arith {
        incr: true,
        delta: 1,
        initial,
        cas: 0,
    };
    let ArithOutcome::Value { value: 7, cas } = h.shard.arith(key, create) else {
        panic!()
    };
    assert_eq!(h.get(b"c").unwrap(), (b"7".to_vec(), 3, cas));
    let wrong = Arith {
        cas: cas + 1,
        ..create
    };
    assert_eq!(h.shard.arith(key, wrong), ArithOutcome::Exists);
    let right = Arith { cas, ..create };
    assert!(matches!(
        h.shard.arith(key, right),
        ArithOutcome::Value { value: 8, .. }
    ));
}

#[test]
fn too_large_set_removes_the_old_item() {
    let mut h = Harness::roomy();
    h.set(b"big", b"x");
    h.set(b"keep", b"x");
    assert_eq!(h.set(b"big", &vec![b'a'; 1 << 20]), StoreOutcome::TooLarge);
    assert_eq!(h.get(b"big"), Err(Miss::NotFound));
    let too_large = h.store(StoreMode::Replace, b"keep", &vec![b'a'; 1 << 20], 0, 0);
    assert_eq!(too_large, StoreOutcome::TooLarge);
    assert!(h.get(b"keep").is_ok());
    assert_eq!(h.set(&[b'k'; 251], b"x"), StoreOutcome::TooLarge);
}

#[test]
fn largest_value_that_fits_matches_memcached() {
    let mut h = Harness::roomy();
    stored(h.set(b"abc", &vec![b'a'; 1_048_514]));
    assert_eq!(
        h.set(b"abc", &vec![b'a'; 1_048_515]),
        StoreOutcome::TooLarge
    );
    let flagged =
        |h: &mut Harness, len: usize| h.store(StoreMode::Set, b"abc", &vec![b'a'; len], 1, 0);
    stored(flagged(&mut h, 1_048_510));
    assert_eq!(flagged(&mut h, 1_048_511), StoreOutcome::TooLarge);
    let no_cas = SlabConfig {
        cas_enabled: false,
        ..SlabConfig::default()
    };
    let mut h = Harness::new(no_cas, 64 << 20);
    stored(flagged(&mut h, 1_048_518));
    assert_eq!(flagged(&mut h, 1_048_519), StoreOutcome::TooLarge);
}

#[test]
fn stats_track_items_and_reset_keeps_gauges() {
    let mut h = Harness::roomy();
    h.set(b"a", b"1");
    h.set(b"b", b"22");
    h.set(b"a", b"333");
    h.get(b"a").unwrap();
    let stats = h.stats();
    assert_eq!((stats.curr_items, stats.total_items), (2, 3));
    assert_eq!(stats.bytes, (59 + 1 + 2) + (59 + 1 + 3));
    let class = &stats.classes[1];
    assert_eq!(
        (
            class.number,
            class.get_hits,
            class.cmd_set,
            class.used_chunks
        ),
        (2, 1, 3, 2)
    );
    assert_eq!(class.total_pages, 1);
    assert_eq!(stats.total_malloced, 1 << 20);
    h.shard.stats().reset();
    let stats = h.stats();
    assert_eq!(
        (
            stats.curr_items,
            stats.total_items,
            stats.classes[1].get_hits
        ),
        (2, 0, 0)
    );
}

#[test]
fn crawler_reclaims_expired_items() {
    let mut h = Harness::roomy();
    for i in 0..100u32 {
        let exptime = if i % 2 == 0 { h.clock.realtime(5) } else { 0 };
        h.store(StoreMode::Set, format!("k{i}").as_bytes(), b"v", 0, exptime);
    }
    h.clock.advance(5);
    assert_eq!(h.shard.crawl(30), 15);
    assert_eq!(h.shard.crawl(1000), 35);
    let stats = h.stats();
    assert_eq!((stats.crawler_reclaimed, stats.curr_items), (50, 50));
    assert_eq!(
        stats.classes[1].crawler_items_checked,
        stats.crawler_items_checked
    );
    assert_eq!(stats.classes[1].age, 5);
}

#[test]
fn hits_bump_only_after_the_update_interval() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    let key = h.hasher.key(b"k");
    h.clock.advance(59);
    let Lookup::Hit(item) = h.shard.get(key, Access::default()) else {
        panic!()
    };
    assert_eq!(item.last_access(), crate::storage::clock::START);
    h.clock.advance(1);
    h.shard.get(key, Access::default());
    let Lookup::Hit(item) = h.shard.get(key, Access::default()) else {
        panic!()
    };
    assert_eq!(item.last_access(), crate::storage::clock::START + 60);
}
