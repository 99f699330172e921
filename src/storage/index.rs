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
use std::ptr::addr_of_mut;
use std::sync::OnceLock;

use ahash::RandomState;

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

/// A shard's hash table from key to item head ref.
///
/// All methods that follow refs are `unsafe`: their contract is the shard invariant
/// that every ref in the table names a linked item head in a page the shard holds.
#[derive(Debug)]
pub struct Index {
    table: Vec<u32>,
    old: Vec<u32>,
    migrated: usize,
    items: usize,
    hasher: KeyHasher,
}

impl Index {
    /// An empty table of `2^hashpower` buckets (at least 2, at most 2^31) whose keys are
    /// hashed by `hasher`: the same hasher that computes the [`Key`]s given to it.
    pub fn new(hashpower: u8, hasher: KeyHasher) -> Index {
        let power = u32::from(hashpower).clamp(1, MAX_POWER);
        Index {
            table: vec![NIL; 1 << power],
            old: Vec::new(),
            migrated: 0,
            items: 0,
            hasher,
        }
    }

    /// log2 of the bucket count (`hash_power_level`).
    pub fn power(&self) -> u8 {
        self.table.len().trailing_zeros() as u8
    }

    /// Bytes of bucket arrays, the old one included while expanding (`hash_bytes`).
    pub fn bytes(&self) -> usize {
        (self.table.len() + self.old.len()) * mem::size_of::<u32>()
    }

    /// Whether old buckets are still being moved (`hash_is_expanding`).
    pub fn is_expanding(&self) -> bool {
        !self.old.is_empty()
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

    /// Which array holds the bucket for `hash` (true: the old one) and its position.
    fn locate(&self, hash: u64) -> (bool, usize) {
        let b = hash as usize & self.old.len().wrapping_sub(1);
        if !self.old.is_empty() && b >= self.migrated {
            return (true, b);
        }
        (false, hash as usize & (self.table.len() - 1))
    }

    fn bucket(&mut self, hash: u64) -> &mut u32 {
        match self.locate(hash) {
            (true, b) => &mut self.old[b],
            (false, b) => &mut self.table[b],
        }
    }

    /// The item head with this key, or [`NIL`].
    ///
    /// # Safety
    ///
    /// The shard invariant (see the type).
    pub(super) unsafe fn find(&self, mem: Arena, key: Key<'_>) -> u32 {
        let mut r = match self.locate(key.hash) {
            (true, b) => self.old[b],
            (false, b) => self.table[b],
        };
        while r != NIL && item::key(mem, r) != key.bytes {
            r = (*mem.hdr(r)).link;
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
        (*mem.hdr(r)).link = *bucket;
        *bucket = r;
        self.items += 1;
        if self.is_expanding() {
            return self.migrate(mem, MIGRATE_PER_INSERT);
        }
        if self.items > self.table.len() / 2 * 3 && u32::from(self.power()) < MAX_POWER {
            let doubled = vec![NIL; self.table.len() * 2];
            self.old = mem::replace(&mut self.table, doubled);
            self.migrated = 0;
            return true;
        }
        false
    }

    /// Removes item head `r`, whose key hashes to `hash`. Returns whether it was there.
    ///
    /// # Safety
    ///
    /// The shard invariant.
    pub(super) unsafe fn remove(&mut self, mem: Arena, r: u32, hash: u64) -> bool {
        let mut at: *mut u32 = self.bucket(hash);
        while *at != NIL {
            if *at == r {
                *at = (*mem.hdr(r)).link;
                self.items -= 1;
                return true;
            }
            at = addr_of_mut!((*mem.hdr(*at)).link);
        }
        false
    }

    /// Moves up to `buckets` old buckets into the new table; returns whether that
    /// finished the expansion.
    unsafe fn migrate(&mut self, mem: Arena, buckets: usize) -> bool {
        let end = (self.migrated + buckets).min(self.old.len());
        for b in self.migrated..end {
            let mut r = mem::replace(&mut self.old[b], NIL);
            while r != NIL {
                let next = (*mem.hdr(r)).link;
                let hash = self.hasher.hash(item::key(mem, r));
                let slot = hash as usize & (self.table.len() - 1);
                (*mem.hdr(r)).link = self.table[slot];
                self.table[slot] = r;
                r = next;
            }
        }
        self.migrated = end;
        if end < self.old.len() {
            return false;
        }
        self.old = Vec::new();
        true
    }
}
