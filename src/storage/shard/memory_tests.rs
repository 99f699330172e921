//! Memory under pressure: eviction, `-M`, page moves, chains, index growth and limit
//! changes.

use super::tests::Harness;
use super::*;

const PAGE: usize = 64 << 10;

/// Small pages and chunks, `pages` pages in all.
fn small(pages: usize, evictions: bool) -> Harness {
    let config = SlabConfig {
        page_size: PAGE,
        chunk_max: PAGE / 2,
        item_size_max: 256 << 10,
        evictions,
        ..SlabConfig::default()
    };
    Harness::new(config, pages * PAGE)
}

/// Stores tiny values under `small0`, `small1`, ... until `pages` pages are in use and
/// at least 3000 are stored; answers how many.
fn fill_small(h: &mut Harness, pages: usize) -> usize {
    let mut i = 0;
    while h.pool.malloced() < pages * PAGE || i < 3000 {
        h.set(format!("small{i}").as_bytes(), b"tiny");
        i += 1;
    }
    i
}

/// Stores 20 values of 20 KB, `large000` to `large019`: new items of another class.
fn set_large(h: &mut Harness) {
    for j in 0..20 {
        h.set(format!("large{j:03}").as_bytes(), &[1; 20_000]);
    }
}

/// The pages `class` holds.
fn class_pages(h: &Harness, class: u8) -> u64 {
    h.stats().classes[usize::from(class)].total_pages
}

fn value_for(key: u32, round: u32, len: usize) -> Vec<u8> {
    let seed = format!("{key}:{round}:");
    seed.bytes().cycle().take(len).collect()
}

#[test]
fn eviction_keeps_memory_in_budget_and_values_exact() {
    let mut h = small(4, true);
    let mut last = std::collections::HashMap::new();
    for round in 0..5u32 {
        for key in 0..500u32 {
            let value = value_for(key, round, 100 + (key as usize * 7) % 900);
            let outcome = h.set(format!("key{key}").as_bytes(), &value);
            assert!(
                matches!(outcome, StoreOutcome::Stored { .. }),
                "{outcome:?}"
            );
            last.insert(key, value);
            assert!(h.pool.malloced() <= h.pool.limit());
        }
    }
    for (key, value) in &last {
        if let Some(got) = h.value(format!("key{key}").as_bytes()) {
            assert_eq!(&got, value);
        }
    }
    let stats = h.stats();
    assert!(stats.evictions > 0);
    assert!(stats.total_malloced as usize <= 4 * PAGE);
    assert_eq!(
        stats.curr_items,
        stats.classes.iter().map(|c| c.number).sum::<u64>()
    );
}

#[test]
fn without_evictions_a_full_cache_says_no_memory() {
    let mut h = small(4, false);
    let value = vec![b'x'; 1000];
    let mut stored = 0;
    while matches!(
        h.set(format!("k{stored}").as_bytes(), &value),
        StoreOutcome::Stored { .. }
    ) {
        stored += 1;
    }
    assert!(stored > 200, "{stored}");
    assert_eq!(h.set(b"another", &value), StoreOutcome::NoMemory);
    for i in 0..stored {
        assert_eq!(h.value(format!("k{i}").as_bytes()).unwrap(), value);
    }
    let stats = h.stats();
    assert_eq!((stats.evictions, stats.curr_items), (0, stored as u64));
    assert_eq!(h.set(b"k0", &[b'y'; 20_000]), StoreOutcome::NoMemory);
    assert_eq!(h.get(b"k0"), Err(Miss::NotFound));
}

#[test]
fn without_evictions_expired_items_still_make_room() {
    let mut h = small(4, false);
    let exptime = h.clock.realtime(1);
    let mut n = 0;
    while matches!(
        h.store(
            StoreMode::Set,
            format!("k{n}").as_bytes(),
            &[b'x'; 1000],
            0,
            exptime
        ),
        StoreOutcome::Stored { .. }
    ) {
        n += 1;
    }
    h.clock.advance(1);
    assert!(matches!(
        h.set(b"fresh", &[b'y'; 1000]),
        StoreOutcome::Stored { .. }
    ));
    assert!(matches!(
        h.set(b"large", &[b'z'; 20_000]),
        StoreOutcome::Stored { .. }
    ));
    assert!(h.stats().reclaimed > 0);
}

#[test]
fn pages_move_to_a_starving_class() {
    let mut h = small(4, true);
    fill_small(&mut h, 4);
    for j in 0..6 {
        let value = vec![j as u8; 20_000];
        assert!(matches!(
            h.set(format!("large{j}").as_bytes(), &value),
            StoreOutcome::Stored { .. }
        ));
        assert_eq!(h.value(format!("large{j}").as_bytes()).unwrap(), value);
    }
    let stats = h.stats();
    assert!(stats.slabs_moved > 0);
    assert!(stats.slab_reassign_evictions_nomem > 0);
    assert!(h.pool.malloced() <= 4 * PAGE);
}

#[test]
fn crawls_move_pages_to_a_class_evicting_younger_items() {
    let mut h = small(6, true);
    fill_small(&mut h, 6);
    h.clock.advance(100);
    let large = h.shard.chunks.classes().class_for(40 + 8 + 20_000).unwrap();
    set_large(&mut h);
    let pages = |h: &Harness| class_pages(h, large);
    let before = pages(&h);
    h.shard.crawl(10);
    assert_eq!(pages(&h), before + 1);
    h.shard.crawl(10);
    assert_eq!(pages(&h), before + 1, "no new evictions, no move");
}

#[test]
fn crawls_leave_the_pages_of_a_class_in_use() {
    let mut h = small(6, true);
    let i = fill_small(&mut h, 6);
    // Read too soon after they were stored to move in the LRU: the tail keeps its age.
    h.clock.advance(30);
    for k in 0..i {
        assert!(h.value(format!("small{k}").as_bytes()).is_some());
    }
    h.clock.advance(70);
    let small = h.shard.chunks.classes().class_for(40 + 12 + 4).unwrap();
    set_large(&mut h);
    let pages = |h: &Harness| class_pages(h, small);
    let before = pages(&h);
    h.shard.crawl(10);
    assert_eq!(
        pages(&h),
        before,
        "a class whose items are read keeps its pages"
    );
}

#[test]
fn append_never_evicts_the_item_it_reads() {
    let mut h = small(2, true);
    let mut n = 0;
    while h.pool.malloced() < 2 * PAGE || n < 200 {
        h.set(format!("k{n}").as_bytes(), &[b'a'; 500]);
        n += 1;
    }
    let oldest = (0..n)
        .find(|i| h.get(format!("k{i}").as_bytes()).is_ok())
        .unwrap();
    let key = format!("k{oldest}");
    let outcome = h.store(StoreMode::Append, key.as_bytes(), b"tail", 0, 0);
    assert!(
        matches!(outcome, StoreOutcome::Stored { .. }),
        "{outcome:?}"
    );
    let mut expected = vec![b'a'; 500];
    expected.extend_from_slice(b"tail");
    assert_eq!(h.value(key.as_bytes()).unwrap(), expected);
}

fn chained() -> Harness {
    let config = SlabConfig {
        item_size_max: 8 << 20,
        chunk_max: 512 << 10,
        ..SlabConfig::default()
    };
    Harness::new(config, 64 << 20)
}

#[test]
fn chained_values_round_trip_exactly() {
    let mut h = chained();
    let largest = h.shard.chunks.classes().largest();
    let sizes = [(512 << 10) - 20, 3 << 20, (5 << 20) + 7, (8 << 20) - 100];
    for (i, &len) in sizes.iter().enumerate() {
        let value: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
        let key = format!("big{i}");
        assert!(matches!(
            h.set(key.as_bytes(), &value),
            StoreOutcome::Stored { .. }
        ));
        let hit = h.shard.get(h.hasher.key(key.as_bytes()), Access::default());
        let Lookup::Hit(item) = hit else { panic!() };
        assert_eq!(item.value_parts().count(), len.div_ceil((512 << 10) - 8));
        assert_eq!(item.class_id(), largest);
        assert_eq!(item.total_size(), 59 + key.len() + len);
        let mut out = Vec::new();
        item.write_value(&mut out);
        assert!(out == value, "value {i} differs");
    }
    assert_eq!(
        h.set(b"toolarge", &vec![0; 8 << 20]),
        StoreOutcome::TooLarge
    );
}

#[test]
fn chained_values_append_delete_and_free_their_chunks() {
    let mut h = chained();
    let head: Vec<u8> = (0..3_000_000u32).map(|b| b as u8).collect();
    h.set(b"c", &head);
    h.store(StoreMode::Append, b"c", b"end", 0, 0);
    h.store(StoreMode::Prepend, b"c", b"start", 0, 0);
    let got = h.value(b"c").unwrap();
    assert_eq!(
        (&got[..5], &got[got.len() - 3..], got.len()),
        (&b"start"[..], &b"end"[..], 3_000_008)
    );
    assert!(got[5..got.len() - 3] == head[..]);
    assert_eq!(h.arith(b"c", true, 1), ArithOutcome::NonNumeric);
    assert_eq!(h.delete(b"c", 0), DeleteOutcome::Deleted);
    let stats = h.stats();
    assert_eq!(stats.classes.iter().map(|c| c.used_chunks).sum::<u64>(), 0);
    assert_eq!((stats.curr_items, stats.bytes), (0, 0));
}

#[test]
fn index_grows_incrementally_and_finds_every_key() {
    let config = SlabConfig {
        hashpower: 4,
        ..SlabConfig::default()
    };
    let mut h = Harness::new(config, 64 << 20);
    let mut expanding_seen = false;
    for i in 0..200_000u32 {
        h.set(format!("key:{i}").as_bytes(), &i.to_le_bytes());
        expanding_seen |= h.stats().hash_is_expanding == 1;
    }
    for i in 0..200_000u32 {
        assert_eq!(
            h.value(format!("key:{i}").as_bytes()).unwrap(),
            i.to_le_bytes()
        );
    }
    let stats = h.stats();
    assert!(expanding_seen);
    assert_eq!(stats.hash_power_level, 18);
    assert_eq!(stats.curr_items, 200_000);
}

#[test]
fn lowering_the_limit_gives_pages_back() {
    let mut h = small(8, true);
    for i in 0..4000 {
        h.set(format!("k{i}").as_bytes(), &[b'v'; 100]);
    }
    assert_eq!(h.pool.malloced(), 8 * PAGE);
    assert!(h.pool.set_limit(3 * PAGE));
    h.shard.crawl(10);
    assert!(h.pool.malloced() <= 3 * PAGE, "{}", h.pool.malloced());
    for i in 0..1000 {
        h.set(format!("again{i}").as_bytes(), &[b'w'; 100]);
        assert!(h.pool.malloced() <= 3 * PAGE);
    }
    assert_eq!(h.value(b"again999").unwrap(), vec![b'w'; 100]);
}

#[test]
fn shards_stay_within_their_quotas() {
    let pool = Arc::new(PagePool::new(5 * PAGE, PAGE, 2).unwrap());
    let config = SlabConfig {
        page_size: PAGE,
        chunk_max: PAGE / 2,
        ..SlabConfig::default()
    };
    let clock = Arc::new(crate::storage::clock::ManualClock::new(0));
    let flush = Arc::new(FlushState::new());
    let hasher = KeyHasher::with_seed(1);
    let mut shards: Vec<Shard> = (0..2)
        .map(|id| {
            Shard::with_hasher(
                id,
                &config,
                pool.clone(),
                clock.clone(),
                flush.clone(),
                hasher.clone(),
            )
        })
        .collect();
    for i in 0..3000 {
        let key = format!("k{i}");
        let store = Store {
            key: hasher.key(key.as_bytes()),
            mode: StoreMode::Set,
            flags: 0,
            exptime: 0,
            value: &[1; 200],
        };
        shards[i % 2].store(store);
    }
    let held: Vec<u64> = shards
        .iter()
        .map(|s| s.stats().snapshot().total_malloced)
        .collect();
    assert_eq!(held, vec![3 * PAGE as u64, 2 * PAGE as u64]);
}
