//! The meta-protocol operations of a shard, with a manual clock: reads that hand back the
//! item, vivify, stale stores, deletes that keep the item, and arithmetic with an item.

use super::tests::Harness;
use super::*;
use crate::storage::clock::START;

const GET: MetaGet = MetaGet {
    read: ReadKind::Get,
    no_bump: false,
    vivify: None,
};

const VIVIFY: Vivify = Vivify {
    exptime: 0,
    cas: None,
    binary_key: false,
};

/// What a meta read saw, copied out of the handle.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    value: Vec<u8>,
    cas: u64,
    ttl: Option<u32>,
    fetched_before: bool,
    idle_before: u32,
    stale: bool,
    token_sent: bool,
    created: bool,
}

fn seen(item: &MetaItem<'_>) -> Seen {
    let mut value = Vec::new();
    item.view().write_value(&mut value);
    Seen {
        value,
        cas: item.view().cas(),
        ttl: item.ttl(),
        fetched_before: item.fetched_before(),
        idle_before: item.idle_before(),
        stale: item.stale(),
        token_sent: item.token_sent(),
        created: item.created(),
    }
}

impl Harness {
    fn meta_get(&mut self, key: &[u8], get: MetaGet) -> Option<Seen> {
        let key = self.hasher.key(key);
        match self.shard.meta_get(key, get) {
            MetaLookup::Hit(item) => Some(seen(&item)),
            MetaLookup::Miss(_) => None,
        }
    }

    /// Runs `change` on the item a plain meta read hands back.
    fn with_item(&mut self, key: &[u8], change: impl FnOnce(&mut MetaItem<'_>)) {
        let key = self.hasher.key(key);
        let MetaLookup::Hit(mut item) = self.shard.meta_get(key, GET) else {
            panic!("no item to change");
        };
        change(&mut item);
    }

    fn store_meta(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        value: &[u8],
        options: StoreOptions,
    ) -> (StoreOutcome, usize) {
        let store = Store {
            key: self.hasher.key(key),
            mode,
            flags: 0,
            exptime: 0,
            value,
        };
        self.shard.store_meta(store, &options)
    }

    fn delete_meta(&mut self, key: &[u8], delete: MetaDelete) -> MetaDeleteOutcome {
        let key = self.hasher.key(key);
        self.shard.delete_meta(key, delete)
    }
}

fn remove() -> MetaDelete {
    MetaDelete {
        compare: None,
        mode: DeleteMode::Remove,
        empty: None,
        new_cas: None,
        binary_key: false,
    }
}

fn stored_cas(outcome: (StoreOutcome, usize)) -> u64 {
    match outcome.0 {
        StoreOutcome::Stored { cas } => cas,
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[test]
fn meta_get_reports_fetched_and_last_access_from_before_the_access() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    h.clock.advance(5);
    let first = h.meta_get(b"k", GET).unwrap();
    assert_eq!((first.fetched_before, first.idle_before), (false, 5));
    h.clock.advance(60);
    let second = h.meta_get(b"k", GET).unwrap();
    assert_eq!((second.fetched_before, second.idle_before), (true, 65));
    let third = h.meta_get(b"k", GET).unwrap();
    assert_eq!(
        third.idle_before, 0,
        "the bump after 60 s moved the last access"
    );
    assert_eq!(h.stats().classes[1].get_hits, 3);
}

#[test]
fn no_bump_and_peek_leave_the_item_alone() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    h.clock.advance(70);
    let quiet = MetaGet {
        no_bump: true,
        ..GET
    };
    let peek = MetaGet {
        read: ReadKind::Peek,
        no_bump: true,
        vivify: None,
    };
    for get in [quiet, peek, peek] {
        let seen = h.meta_get(b"k", get).unwrap();
        assert_eq!((seen.fetched_before, seen.idle_before), (false, 70));
    }
    assert_eq!(h.stats().classes[1].get_hits, 1, "peeks count nothing");
}

#[test]
fn touch_reads_count_as_touches() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    let touch = MetaGet {
        read: ReadKind::Touch,
        ..GET
    };
    h.meta_get(b"k", touch).unwrap();
    let class = &h.stats().classes[1];
    assert_eq!((class.touch_hits, class.get_hits), (1, 0));
}

#[test]
fn the_handle_sets_the_expiry_in_place() {
    let mut h = Harness::roomy();
    let exptime = h.clock.realtime(100);
    h.store(StoreMode::Set, b"k", b"v", 0, exptime);
    let cas = h.cas_of(b"k");
    h.clock.advance(1);
    let thirty = h.clock.realtime(30);
    h.with_item(b"k", |item| {
        assert_eq!(item.ttl(), Some(99));
        item.set_exptime(thirty);
        assert_eq!((item.ttl(), item.exptime()), (Some(30), thirty));
    });
    assert_eq!(
        h.meta_get(b"k", GET).unwrap().cas,
        cas,
        "a touch keeps the CAS"
    );
    h.with_item(b"k", |item| item.set_exptime(0));
    assert_eq!(h.meta_get(b"k", GET).unwrap().ttl, None);
    h.with_item(b"k", |item| item.set_exptime(thirty));
    h.clock.advance(30);
    assert_eq!(h.get(b"k"), Err(Miss::Expired));
}

#[test]
fn the_token_mark_stays_with_the_item() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    h.with_item(b"k", |item| {
        assert!(!item.token_sent());
        item.mark_token_sent();
    });
    assert!(h.meta_get(b"k", GET).unwrap().token_sent);
    h.set(b"k", b"w");
    assert!(
        !h.meta_get(b"k", GET).unwrap().token_sent,
        "a new value starts afresh"
    );
}

#[test]
fn vivify_creates_an_empty_item_once() {
    let mut h = Harness::roomy();
    assert_eq!(h.meta_get(b"v", GET), None);
    let get = MetaGet {
        vivify: Some(Vivify {
            cas: Some(4242),
            binary_key: true,
            ..VIVIFY
        }),
        ..GET
    };
    let created = h.meta_get(b"v", get).unwrap();
    assert_eq!(
        (created.value, created.cas, created.created),
        (vec![], 4242, true)
    );
    assert_eq!(created.ttl, None);
    let again = h.meta_get(b"v", get).unwrap();
    assert!(!again.created && again.fetched_before);
    let key = h.hasher.key(b"v");
    let MetaLookup::Hit(item) = h.shard.meta_get(key, GET) else {
        panic!()
    };
    assert!(item.binary_key());
    let stats = h.stats();
    assert_eq!((stats.curr_items, stats.classes[1].get_hits), (1, 3));
}

#[test]
fn explicit_cas_is_kept_unless_cas_is_disabled() {
    let mut h = Harness::roomy();
    let explicit = StoreOptions {
        new_cas: Some(777),
        ..StoreOptions::default()
    };
    assert_eq!(
        stored_cas(h.store_meta(StoreMode::Set, b"k", b"v", explicit)),
        777
    );
    assert_eq!(h.cas_of(b"k"), 777);
    let next = stored_cas(h.store_meta(StoreMode::Set, b"j", b"v", StoreOptions::default()));
    assert!(
        next < 777,
        "an explicit CAS does not move the shard's counter"
    );
    let config = SlabConfig {
        cas_enabled: false,
        ..SlabConfig::default()
    };
    let mut h = Harness::new(config, 16 << 20);
    assert_eq!(
        stored_cas(h.store_meta(StoreMode::Set, b"k", b"v", explicit)),
        0
    );
}

#[test]
fn an_explicit_cas_below_a_flush_reads_as_flushed_as_in_memcached() {
    let mut h = Harness::roomy();
    for _ in 0..5 {
        h.set(b"filler", b"x");
    }
    h.flush.flush_now();
    let low = StoreOptions {
        new_cas: Some(2),
        ..StoreOptions::default()
    };
    stored_cas(h.store_meta(StoreMode::Set, b"k", b"v", low));
    assert_eq!(h.get(b"k"), Err(Miss::Flushed));
}

#[test]
fn an_older_cas_stores_a_stale_value_only_when_asked() {
    let mut h = Harness::roomy();
    let exptime = h.clock.realtime(100);
    h.set(b"k", b"first");
    h.store(StoreMode::Set, b"k", b"old", 0, exptime);
    h.with_item(b"k", |item| item.mark_token_sent());
    let cas = h.cas_of(b"k");
    let refuse = StoreOptions::default();
    let outcome = h.store_meta(StoreMode::Cas(cas - 1), b"k", b"late", refuse);
    assert_eq!(outcome, (StoreOutcome::Exists, 4));
    let stale = StoreOptions {
        older: OlderCas::MarkStale,
        ..StoreOptions::default()
    };
    let newer = h.store_meta(StoreMode::Cas(cas + 1), b"k", b"late", stale);
    assert_eq!(newer.0, StoreOutcome::Exists, "only an older CAS lands");
    stored_cas(h.store_meta(StoreMode::Cas(cas - 1), b"k", b"late", stale));
    let seen = h.meta_get(b"k", GET).unwrap();
    assert_eq!(
        (seen.value.as_slice(), seen.stale, seen.token_sent),
        (&b"late"[..], true, true)
    );
    assert_eq!(seen.ttl, Some(100), "a stale value keeps the old expiry");
    let class = &h.stats().classes[1];
    assert_eq!((class.cas_hits, class.cas_badval), (1, 2));
    stored_cas(h.store_meta(StoreMode::Cas(seen.cas), b"k", b"fresh", stale));
    let fresh = h.meta_get(b"k", GET).unwrap();
    assert!(
        !fresh.stale && !fresh.token_sent,
        "a matching CAS stores a fresh value"
    );
}

#[test]
fn append_checks_a_cas_and_reports_the_whole_length() {
    let mut h = Harness::roomy();
    h.store(StoreMode::Set, b"k", b"ab", 7, 0);
    let cas = h.cas_of(b"k");
    let compare = |cas| StoreOptions {
        compare: cas,
        ..StoreOptions::default()
    };
    let wrong = h.store_meta(StoreMode::Append, b"k", b"c", compare(cas + 1));
    assert_eq!(wrong, (StoreOutcome::Exists, 1));
    let right = h.store_meta(StoreMode::Append, b"k", b"cd", compare(cas));
    assert_eq!(right.1, 4);
    let unchecked = h.store_meta(StoreMode::Prepend, b"k", b"z", compare(0));
    assert_eq!(unchecked.1, 5);
    assert_eq!(h.get(b"k").unwrap().0, b"zabcd");
    let missing = h.store_meta(StoreMode::Append, b"none", b"x", compare(cas));
    assert_eq!(missing, (StoreOutcome::NotStored, 1));
}

#[test]
fn append_skips_the_cas_check_with_cas_disabled() {
    let config = SlabConfig {
        cas_enabled: false,
        ..SlabConfig::default()
    };
    let mut h = Harness::new(config, 16 << 20);
    h.set(b"k", b"a");
    let compare = StoreOptions {
        compare: 3,
        ..StoreOptions::default()
    };
    let outcome = h.store_meta(StoreMode::Append, b"k", b"b", compare);
    assert_eq!(outcome, (StoreOutcome::Stored { cas: 0 }, 2));
}

#[test]
fn append_with_vivify_creates_the_item_on_a_miss() {
    let mut h = Harness::roomy();
    let exptime = h.clock.realtime(30);
    let vivify = StoreOptions {
        vivify: Some(exptime),
        binary_key: true,
        ..StoreOptions::default()
    };
    let store = Store {
        key: h.hasher.key(b"k"),
        mode: StoreMode::Append,
        flags: 9,
        exptime: 0,
        value: b"x",
    };
    let (outcome, len) = h.shard.store_meta(store, &vivify);
    assert!(matches!(outcome, StoreOutcome::Stored { .. }) && len == 1);
    let (outcome, len) = h.shard.store_meta(store, &vivify);
    assert!(matches!(outcome, StoreOutcome::Stored { .. }) && len == 2);
    assert_eq!(h.get(b"k").unwrap(), (b"xx".to_vec(), 9, h.cas_of(b"k")));
    let key = h.hasher.key(b"k");
    let MetaLookup::Hit(item) = h.shard.meta_get(key, GET) else {
        panic!()
    };
    assert_eq!((item.ttl(), item.binary_key()), (Some(30), true));
}

#[test]
fn meta_delete_checks_presence_then_cas() {
    let mut h = Harness::roomy();
    assert_eq!(h.delete_meta(b"k", remove()), MetaDeleteOutcome::NotFound);
    h.set(b"k", b"v");
    let cas = h.cas_of(b"k");
    let wrong = MetaDelete {
        compare: Some(cas + 1),
        ..remove()
    };
    assert_eq!(h.delete_meta(b"k", wrong), MetaDeleteOutcome::Exists);
    let right = MetaDelete {
        compare: Some(cas),
        ..remove()
    };
    assert_eq!(h.delete_meta(b"k", right), MetaDeleteOutcome::Deleted);
    assert_eq!(h.get(b"k"), Err(Miss::NotFound));
    assert_eq!(h.stats().classes[1].delete_hits, 1);
}

#[test]
fn invalidate_keeps_the_value_stale_with_a_new_cas() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    h.with_item(b"k", |item| item.mark_token_sent());
    let cas = h.cas_of(b"k");
    let exptime = h.clock.realtime(30);
    let invalidate = MetaDelete {
        mode: DeleteMode::Invalidate {
            exptime: Some(exptime),
        },
        ..remove()
    };
    assert_eq!(
        h.delete_meta(b"k", invalidate),
        MetaDeleteOutcome::Invalidated
    );
    let seen = h.meta_get(b"k", GET).unwrap();
    assert_eq!(
        (seen.value.as_slice(), seen.stale, seen.token_sent),
        (&b"v"[..], true, false)
    );
    assert!(seen.cas > cas);
    assert_eq!(seen.ttl, Some(30));
    let chosen = MetaDelete {
        new_cas: Some(5000),
        mode: DeleteMode::Invalidate { exptime: None },
        ..remove()
    };
    h.delete_meta(b"k", chosen);
    let seen = h.meta_get(b"k", GET).unwrap();
    assert_eq!((seen.cas, seen.ttl), (5000, Some(30)));
    assert_eq!(
        h.stats().classes[1].delete_hits,
        0,
        "invalidating is not deleting"
    );
}

#[test]
fn remove_value_leaves_an_empty_item_with_its_cas() {
    let mut h = Harness::roomy();
    h.store(StoreMode::Set, b"k", b"value", 3, 0);
    let cas = h.cas_of(b"k");
    let exptime = h.clock.realtime(50);
    let emptied = MetaDelete {
        empty: Some(Emptied { flags: 8, exptime }),
        ..remove()
    };
    assert_eq!(h.delete_meta(b"k", emptied), MetaDeleteOutcome::Deleted);
    assert_eq!(h.get(b"k").unwrap(), (vec![], 8, cas));
    let stats = h.stats();
    assert_eq!((stats.curr_items, stats.classes[1].delete_hits), (1, 1));
    let stale = MetaDelete {
        empty: Some(Emptied {
            flags: 0,
            exptime: 0,
        }),
        mode: DeleteMode::Invalidate { exptime: None },
        new_cas: Some(99),
        ..remove()
    };
    assert_eq!(h.delete_meta(b"k", stale), MetaDeleteOutcome::Invalidated);
    let seen = h.meta_get(b"k", GET).unwrap();
    assert_eq!((seen.cas, seen.stale, seen.ttl), (99, true, None));
}

#[test]
fn arith_meta_hands_back_the_item_it_wrote() {
    let mut h = Harness::roomy();
    let key = h.hasher.key(b"n");
    let arith = Arith {
        incr: true,
        delta: 1,
        initial: Some(Initial {
            value: 9,
            flags: 0,
            exptime: 0,
        }),
        cas: 0,
    };
    let counted = h.shard.arith_meta(key, arith, None, true).unwrap();
    assert_eq!((counted.value, counted.item.created()), (9, true));
    assert!(counted.item.binary_key());
    let mut counted = h.shard.arith_meta(key, arith, Some(12345), false).unwrap();
    assert_eq!((counted.value, counted.item.created()), (10, false));
    assert_eq!(counted.item.view().cas(), 12345);
    let exptime = h.clock.realtime(40);
    counted.item.set_exptime(exptime);
    let bigger = Arith {
        delta: 990,
        ..arith
    };
    let counted = h.shard.arith_meta(key, bigger, Some(777), false).unwrap();
    assert_eq!((counted.value, counted.item.view().cas()), (1000, 777));
    assert_eq!(
        counted.item.ttl(),
        Some(40),
        "a longer number keeps the expiry"
    );
    assert!(counted.item.binary_key(), "and the base64 mark");
    let wrong = Arith { cas: 1, ..arith };
    assert!(matches!(
        h.shard.arith_meta(key, wrong, None, false),
        Err(ArithOutcome::Exists)
    ));
    let class = &h.stats().classes[1];
    assert_eq!(class.incr_hits, 2);
}

#[test]
fn idle_time_counts_from_the_clock_start() {
    let mut h = Harness::roomy();
    h.set(b"k", b"v");
    let key = h.hasher.key(b"k");
    let MetaLookup::Hit(item) = h.shard.meta_get(key, GET) else {
        panic!()
    };
    assert_eq!(item.view().last_access(), START);
    assert_eq!(item.idle_before(), 0);
}
