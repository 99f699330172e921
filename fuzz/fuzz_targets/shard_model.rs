//! Reads the input as a sequence of operations on one shard (set, add, replace, append,
//! prepend, cas, incr, decr, delete, touch, get, flush, time passing, memory pressure)
//! and checks every answer against a plain `HashMap` model. The only disagreement
//! allowed is an item the model still holds and the shard no longer does, and only when
//! the shard reports an eviction since that item was written.

#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use corecache::storage::{
    Access, Arith, ArithOutcome, Clock, DeleteOutcome, FlushState, KeyHasher, Lookup,
    ManualClock, PagePool, Shard, SlabConfig, Store, StoreMode, StoreOutcome, TouchOutcome,
};
use libfuzzer_sys::fuzz_target;

/// What the model holds for a key.
#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    exptime: u32,
    cas: u64,
    /// The eviction count when the entry was written: a miss is allowed only after more.
    evictions: u64,
}

struct World {
    shard: Shard,
    clock: Arc<ManualClock>,
    flush: Arc<FlushState>,
    hasher: KeyHasher,
    model: HashMap<Vec<u8>, Entry>,
}

impl World {
    fn new() -> World {
        let config = SlabConfig {
            page_size: 64 << 10,
            chunk_max: 32 << 10,
            item_size_max: 256 << 10,
            ..SlabConfig::default()
        };
        let pool = Arc::new(PagePool::new(2 << 20, config.page_size, 1).unwrap());
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let flush = Arc::new(FlushState::new());
        let hasher = KeyHasher::with_seed(3);
        let shard =
            Shard::with_hasher(0, &config, pool, clock.clone(), flush.clone(), hasher.clone());
        World {
            shard,
            clock,
            flush,
            hasher,
            model: HashMap::new(),
        }
    }

    fn evictions(&self) -> u64 {
        let s = self.shard.stats().snapshot();
        s.evictions + s.slabs_moved
    }

    /// The model's live entry for `key`, dropping it if it expired.
    fn live(&mut self, key: &[u8]) -> Option<Entry> {
        let now = self.clock.now();
        let entry = self.model.get(key)?.clone();
        if entry.exptime != 0 && entry.exptime <= now {
            self.model.remove(key);
            return None;
        }
        Some(entry)
    }

    /// Reconciles a shard miss with the model: allowed only after an eviction.
    fn allow_miss(&mut self, key: &[u8]) {
        if let Some(entry) = self.live(key) {
            assert!(
                self.evictions() > entry.evictions,
                "{key:?} lost without an eviction"
            );
            self.model.remove(key);
        }
    }

    fn put(&mut self, key: &[u8], value: Vec<u8>, flags: u32, exptime: u32, cas: u64) {
        let evictions = self.evictions();
        let entry = Entry {
            value,
            flags,
            exptime,
            cas,
            evictions,
        };
        self.model.insert(key.to_vec(), entry);
    }
}

/// Turns fuzz bytes into operations.
struct Ops<'a> {
    data: &'a [u8],
}

impl Ops<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn key(&mut self) -> Option<Vec<u8>> {
        Some(format!("key{}", self.byte()? % 24).into_bytes())
    }

    fn value(&mut self) -> Option<Vec<u8>> {
        let len = match self.byte()? {
            b @ 0..=200 => usize::from(b),
            b => usize::from(b) * 1024,
        };
        let fill = self.byte()?;
        Some((0..len).map(|i| fill.wrapping_add(i as u8)).collect())
    }
}

fn get(world: &mut World, key: &[u8]) {
    let k = world.hasher.key(key);
    let seen = match world.shard.get(k, Access::default()) {
        Lookup::Hit(item) => {
            let mut value = Vec::new();
            item.write_value(&mut value);
            Some((value, item.flags(), item.cas()))
        }
        Lookup::Miss(_) => None,
    };
    match (seen, world.live(key)) {
        (Some((value, flags, cas)), Some(entry)) => {
            assert_eq!(value, entry.value, "value of {key:?}");
            assert_eq!((flags, cas), (entry.flags, entry.cas), "flags and CAS of {key:?}");
        }
        (Some(found), None) => panic!("{key:?} found {found:?} but the model has none"),
        (None, Some(_)) => world.allow_miss(key),
        (None, None) => {}
    }
}

fn store(world: &mut World, key: &[u8], mode: StoreMode, value: Vec<u8>, exptime: u32) {
    let flags = value.len() as u32;
    let k = world.hasher.key(key);
    let request = Store {
        key: k,
        mode,
        flags,
        exptime,
        value: &value,
    };
    let outcome = world.shard.store(request);
    let before = world.live(key);
    match outcome {
        StoreOutcome::Stored { cas } => {
            let joined = match (mode, &before) {
                (StoreMode::Append, Some(e)) => ([&e.value[..], &value[..]].concat(), e.flags, e.exptime),
                (StoreMode::Prepend, Some(e)) => ([&value[..], &e.value[..]].concat(), e.flags, e.exptime),
                (StoreMode::Append | StoreMode::Prepend, None) => {
                    panic!("{mode:?} stored on a key the model lacks")
                }
                _ => (value, flags, exptime),
            };
            if let (StoreMode::Add, Some(_)) = (mode, &before) {
                world.allow_miss(key);
            }
            world.put(key, joined.0, joined.1, joined.2, cas);
        }
        StoreOutcome::NotStored => match mode {
            StoreMode::Add => assert!(before.is_some(), "add refused on an absent key"),
            StoreMode::Replace if before.is_some() => world.allow_miss(key),
            // An append may be refused for size or memory with the item still there; a
            // later get reconciles an eviction.
            _ => {}
        },
        StoreOutcome::Exists => {
            let StoreMode::Cas(c) = mode else { panic!("EXISTS for {mode:?}") };
            assert!(before.is_some_and(|e| e.cas != c), "cas refused a matching item");
        }
        StoreOutcome::NotFound => {
            if before.is_some() {
                world.allow_miss(key);
            }
        }
        StoreOutcome::TooLarge | StoreOutcome::NoMemory => {
            // A refused set removes the old value, as memcached does; other modes keep it.
            if mode == StoreMode::Set {
                world.model.remove(key);
            }
        }
    }
}

fn delete(world: &mut World, key: &[u8]) {
    let k = world.hasher.key(key);
    match world.shard.delete(k, 0) {
        DeleteOutcome::Deleted => {
            assert!(world.live(key).is_some(), "deleted a key the model lacks");
            world.model.remove(key);
        }
        DeleteOutcome::NotFound => world.allow_miss(key),
        DeleteOutcome::Exists => panic!("delete without a CAS answered EXISTS"),
    }
}

fn touch(world: &mut World, key: &[u8], exptime: u32) {
    let k = world.hasher.key(key);
    match world.shard.touch(k, exptime) {
        TouchOutcome::Touched => match world.model.get_mut(key) {
            Some(entry) => entry.exptime = exptime,
            None => panic!("touched a key the model lacks"),
        },
        TouchOutcome::NotFound => world.allow_miss(key),
    }
}

fn arith(world: &mut World, key: &[u8], incr: bool, delta: u64) {
    let k = world.hasher.key(key);
    let request = Arith {
        incr,
        delta,
        initial: None,
        cas: 0,
    };
    let outcome = world.shard.arith(k, request);
    let before = world.live(key);
    match outcome {
        ArithOutcome::Value { value, cas } => {
            let entry = before.expect("arith on a key the model lacks");
            let old = c_strtoull(&entry.value).expect("arith on a value that is not a number");
            let want = if incr { old.wrapping_add(delta) } else { old.saturating_sub(delta) };
            assert_eq!(value, want);
            let mut digits = value.to_string().into_bytes();
            if digits.len() < entry.value.len() {
                digits.resize(entry.value.len(), b' ');
            }
            world.put(key, digits, entry.flags, entry.exptime, cas);
        }
        ArithOutcome::NotFound => world.allow_miss(key),
        ArithOutcome::NonNumeric => {
            if let Some(e) = before {
                let chained = e.value.len() > 16 << 10;
                assert!(chained || c_strtoull(&e.value).is_none(), "a number refused");
            }
        }
        ArithOutcome::Exists => panic!("arith without a CAS answered EXISTS"),
        ArithOutcome::NoMemory => world.allow_miss(key),
    }
}

/// C's `strtoull` as memcached applies it to a stored value: leading space, an optional
/// `+`, digits, then nothing or a space character; overflow and `-` refused.
fn c_strtoull(value: &[u8]) -> Option<u64> {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = value.iter().position(|b| !space(b))?;
    let rest = value[start..].strip_prefix(b"+").unwrap_or(&value[start..]);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits).is_some_and(|b| !space(b)) {
        return None;
    }
    rest[..digits].iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn step(world: &mut World, ops: &mut Ops<'_>) -> Option<()> {
    let op = ops.byte()?;
    let key = ops.key()?;
    let now = world.clock.now();
    match op % 14 {
        0 | 1 => get(world, &key),
        2 => store(world, &key, StoreMode::Set, ops.value()?, 0),
        3 => store(world, &key, StoreMode::Set, ops.value()?, now + u32::from(ops.byte()? % 8)),
        4 => store(world, &key, StoreMode::Add, ops.value()?, 0),
        5 => store(world, &key, StoreMode::Replace, ops.value()?, 0),
        6 => store(world, &key, StoreMode::Append, ops.value()?, 0),
        7 => store(world, &key, StoreMode::Prepend, ops.value()?, 0),
        8 => {
            let cas = world.live(&key).map_or(1, |e| e.cas + u64::from(ops.byte().unwrap_or(0) % 2));
            store(world, &key, StoreMode::Cas(cas), ops.value()?, 0);
        }
        9 => store(world, &key, StoreMode::Set, format!("{}", ops.byte()?).into_bytes(), 0),
        10 => arith(world, &key, ops.byte()? % 2 == 0, u64::from(ops.byte()?)),
        11 => delete(world, &key),
        12 => touch(world, &key, now + u32::from(ops.byte()? % 8)),
        _ => match ops.byte()? % 4 {
            0 => {
                world.flush.flush_now();
                world.model.clear();
            }
            1 | 2 => world.clock.advance(u32::from(ops.byte()? % 5)),
            _ => {
                // Memory pressure: one large value.
                let big = vec![b'p'; 200 << 10];
                store(world, b"pressure", StoreMode::Set, big, 0);
            }
        },
    }
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let mut world = World::new();
    let mut ops = Ops { data };
    while step(&mut world, &mut ops).is_some() {}
    let keys: Vec<Vec<u8>> = world.model.keys().cloned().collect();
    for key in keys {
        get(&mut world, &key);
    }
});
