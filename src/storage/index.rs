//! The hash index: key bytes to item location.
//!
//! [`KeyHasher`] is keyed with random seeds per process, so that a client cannot choose
//! keys that all land in one bucket or one shard. The same 64-bit hash picks the shard
//! (its high half) and the bucket inside it (its low bits), so it is computed once.
//!
//! [`Index`] is a shard's hash table: a power-of-two array of `u32` bucket heads, each
//! the ref of an item head, chained through the items' own `link` field, so the table
//! costs 4 bytes per bucket and nothing per item. It doubles when it holds more than
//! 1.5 items per bucket, and like memcached's assoc expansion it moves the old buckets
//! over a few at a time on later inserts, so no operation pauses for the whole table.

use std::mem;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};

use ahash::RandomState;
use arc_swap::ArcSwap;

use super::arena::{Arena, NIL};
use super::item;

/// A key with its hash, computed once by whoever parsed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key<'a> {
    /// The key's bytes (1 to 250 in the text protocol).
    pub bytes: &'a [u8],
    /// [`KeyHasher::hash`] of `bytes`.
    pub hash: u64,
}

/// Hashes keys with per-process random seeds.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    state: RandomState,
}

impl KeyHasher {
    /// The process's hasher: its seeds are random, drawn once per process, so every
    /// `KeyHasher::new()` in a process agrees, and a shard can rehash its keys when its
    /// table grows with the same function the router used.
    pub fn new() -> KeyHasher {
        static SEEDS: OnceLock<[u64; 4]> = OnceLock::new();
        let seeds = SEEDS.get_or_init(|| {
            let random = RandomState::new();
            [0u64, 1, 2, 3].map(|i| random.hash_one(i))
        });
        KeyHasher {
            state: RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]),
        }
    }

    /// A hasher with fixed seeds, for tests that need repeatable placement.
    pub fn with_seed(seed: u64) -> KeyHasher {
        KeyHasher {
            state: RandomState::with_seeds(seed, seed ^ 0x9e37_79b9, seed.rotate_left(17), !seed),
        }
    }

    /// The 64-bit hash of `bytes`.
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        self.state.hash_one(bytes)
    }

    /// `bytes` with its hash.
    pub fn key<'a>(&self, bytes: &'a [u8]) -> Key<'a> {
        Key {
            bytes,
            hash: self.hash(bytes),
        }
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::new()
    }
}

/// Old buckets moved to the new table per insert while the table doubles. Doubling N
/// buckets starts at 1.5N items and the next doubling needs 1.5N more inserts, so one
/// bucket per insert would finish in time; two finishes in a third of that, at the
/// cost of rehashing about three items per insert meanwhile.
const MIGRATE_PER_INSERT: usize = 2;

/// The table stops doubling at 2^31 buckets: refs are `u32`, so a shard holds fewer
/// items than that anyway.
const MAX_POWER: u32 = 31;

/// A bucket array. Buckets are atomics because workers other than the owner read them
/// (see [`Published`]); the owner's own loads and stores are relaxed except where a
/// reader must see what was written before.
type Table = Box<[AtomicU32]>;

fn new_table(buckets: usize) -> Arc<Table> {
    Arc::new((0..buckets).map(|_| AtomicU32::new(NIL)).collect())
}

/// The tables as readers on other workers see them: the current one and, while the
/// index doubles, the old one with how many of its buckets have moved.
#[derive(Debug)]
pub(super) struct Tables {
    pub(super) table: Arc<Table>,
    pub(super) old: Option<Arc<Table>>,
}

/// What an index publishes for readers on other workers: its tables (swapped whole,
/// so a reader keeps the ones it loaded alive until it is done with them), how far a
/// doubling has moved, and a sequence number that is odd while the owner rewires chains
/// (a reader that sees it odd, or changed across its lookup, cannot trust a miss).
#[derive(Debug)]
pub(super) struct Published {
    pub(super) tables: ArcSwap<Tables>,
    pub(super) migrated: AtomicUsize,
    pub(super) seq: AtomicU64,
}

impl Published {
    /// The bucket `hash` falls in, in the tables a reader loaded.
    pub(super) fn bucket<'t>(&self, tables: &'t Tables, hash: u64) -> &'t AtomicU32 {
        if let Some(old) = &tables.old {
            let b = hash as usize & (old.len() - 1);
            if b >= self.migrated.load(Acquire) {
                return &old[b];
            }
        }
        &tables.table[hash as usize & (tables.table.len() - 1)]
    }
}

/// A shard's hash table from key to item head ref.
///
/// All methods that follow refs are `unsafe`: their contract is the shard invariant
/// that every ref in the table names a linked item head in a page the shard holds.
#[derive(Debug)]
pub struct Index {
    table: Arc<Table>,
    old: Option<Arc<Table>>,
    migrated: usize,
    items: usize,
    hasher: KeyHasher,
    published: Arc<Published>,
}

impl Index {
    /// An empty table of `2^hashpower` buckets (at least 2, at most 2^31) whose keys are
    /// hashed by `hasher`: the same hasher that computes the [`Key`]s given to it.
    pub fn new(hashpower: u8, hasher: KeyHasher) -> Index {
        let power = u32::from(hashpower).clamp(1, MAX_POWER);
        let table = new_table(1 << power);
        let tables = Tables {
            table: table.clone(),
            old: None,
        };
        let published = Arc::new(Published {
            tables: ArcSwap::from_pointee(tables),
            migrated: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
        });
        Index {
            table,
            old: None,
            migrated: 0,
            items: 0,
            hasher,
            published,
        }
    }

    /// What readers on other workers look this index up through.
    pub(super) fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// log2 of the bucket count (`hash_power_level`).
    pub fn power(&self) -> u8 {
        self.table.len().trailing_zeros() as u8
    }

    /// Bytes of bucket arrays, the old one included while expanding (`hash_bytes`).
    pub fn bytes(&self) -> usize {
        let old = self.old.as_ref().map_or(0, |t| t.len());
        (self.table.len() + old) * mem::size_of::<u32>()
    }

    /// Whether old buckets are still being moved (`hash_is_expanding`).
    pub fn is_expanding(&self) -> bool {
        self.old.is_some()
    }

    /// The number of items in the table.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether the table holds no item.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The hasher the table's keys are hashed with.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    fn bucket(&self, hash: u64) -> &AtomicU32 {
        if let Some(old) = &self.old {
            let b = hash as usize & (old.len() - 1);
            if b >= self.migrated {
                return &old[b];
            }
        }
        &self.table[hash as usize & (self.table.len() - 1)]
    }

    /// The item head with this key, or [`NIL`].
    ///
    /// # Safety
    ///
    /// The shard invariant (see the type).
    pub(super) unsafe fn find(&self, mem: Arena, key: Key<'_>) -> u32 {
        let mut r = self.bucket(key.hash).load(Relaxed);
        while r != NIL && item::key(mem, r) != key.bytes {
            r = (*mem.hdr(r)).link();
        }
        r
    }

    /// Adds item head `r`, whose key hashes to `hash` and is not in the table yet.
    /// Returns whether the table's size or expanding state changed.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must name a written, unlinked item head of the shard.
    pub(super) unsafe fn insert(&mut self, mem: Arena, r: u32, hash: u64) -> bool {
        debug_assert_eq!(self.hasher.hash(item::key(mem, r)), hash);
        let bucket = self.bucket(hash);
        (*mem.hdr(r)).set_link(bucket.load(Relaxed));
        bucket.store(r, Release);
        self.items += 1;
        if self.is_expanding() {
            return self.migrate(mem, MIGRATE_PER_INSERT);
        }
        if self.items > self.table.len() / 2 * 3 && u32::from(self.power()) < MAX_POWER {
            self.double();
            return true;
        }
        false
    }

    /// Starts doubling: a new empty table, the current one becoming the old one.
    fn double(&mut self) {
        let doubled = new_table(self.table.len() * 2);
        let old = mem::replace(&mut self.table, doubled);
        self.old = Some(old);
        self.migrated = 0;
        self.published.migrated.store(0, Release);
        self.publish_tables();
    }

    fn publish_tables(&self) {
        self.published.tables.store(Arc::new(Tables {
            table: self.table.clone(),
            old: self.old.clone(),
        }));
    }

    /// Removes item head `r`, whose key hashes to `hash`. Returns whether it was there.
    ///
    /// # Safety
    ///
    /// The shard invariant.
    pub(super) unsafe fn remove(&mut self, mem: Arena, r: u32, hash: u64) -> bool {
        let mut at: &AtomicU32 = self.bucket(hash);
        loop {
            let here = at.load(Relaxed);
            if here == NIL {
                return false;
            }
            if here == r {
                at.store((*mem.hdr(r)).link(), Release);
                self.items -= 1;
                return true;
            }
            at = (*mem.hdr(here)).link_cell();
        }
    }

    /// Moves up to `buckets` old buckets into the new table; returns whether that
    /// finished the expansion. Readers are told by the odd sequence number that chains
    /// are being rewired meanwhile.
    unsafe fn migrate(&mut self, mem: Arena, buckets: usize) -> bool {
        let Some(old) = self.old.clone() else {
            return false;
        };
        let end = (self.migrated + buckets).min(old.len());
        self.published.seq.fetch_add(1, Release);
        for bucket in &old[self.migrated..end] {
            self.move_chain(mem, bucket.swap(NIL, Relaxed));
        }
        self.migrated = end;
        self.published.migrated.store(end, Release);
        self.published.seq.fetch_add(1, Release);
        if end < old.len() {
            return false;
        }
        self.old = None;
        self.publish_tables();
        true
    }

    /// Moves the items of one old chain, starting at `r`, to their new buckets.
    unsafe fn move_chain(&self, mem: Arena, mut r: u32) {
        while r != NIL {
            let next = (*mem.hdr(r)).link();
            let hash = self.hasher.hash(item::key(mem, r));
            let slot = &self.table[hash as usize & (self.table.len() - 1)];
            (*mem.hdr(r)).set_link(slot.load(Relaxed));
            slot.store(r, Release);
            r = next;
        }
    }
}
