//! The operations a worker runs against the shard it owns: get, store, delete,
//! arithmetic, touch, the richer forms of them that memcached's meta commands need
//! ([`Shard::meta_get`] and its siblings), and the incremental crawl that reclaims
//! expired items.
//!
//! Every operation takes `&mut self`: a shard belongs to one thread and needs no lock.
//! Outcomes are small `Copy` enums that name every case a protocol must answer;
//! turning them into wire replies is the server's job, not this module's.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::arena::{Arena, NIL};
use super::chunks::Chunks;
use super::clock::{Clock, RelTime};
use super::index::{Index, Key, KeyHasher};
use super::item::{self, ItemView, CHAIN_HEADER};
use super::lru::Lrus;
use super::read::{self, Applied, Layout, Reader};
use super::slab::{PagePool, SlabClasses, SlabConfig};
use super::stats::{self, ShardStats};

mod access;
mod arith;
#[cfg(test)]
mod memory_tests;
mod meta;
#[cfg(test)]
mod meta_tests;
#[cfg(test)]
mod model_tests;
mod rebalance;
mod reclaim;
#[cfg(test)]
mod stress_tests;
#[cfg(test)]
mod tests;
mod write;

pub use meta::{
    DeleteMode, Emptied, MetaCounted, MetaDelete, MetaDeleteOutcome, MetaGet, MetaItem, MetaLookup,
    ReadKind, Vivify,
};

/// How a read treats the item it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// A new expiry to set on a hit (`gat`, `gats`, binary GAT); `None` leaves it alone.
    pub touch: Option<RelTime>,
    /// Skip the LRU bump and the last-access update (meta `u`); plain reads bump.
    pub no_bump: bool,
}

/// Why a read found nothing, so that `stats` can count `get_expired` and `get_flushed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No item with this key.
    NotFound,
    /// The item was there but its expiry has passed; it is reclaimed now.
    Expired,
    /// The item was there but a `flush_all` made it invalid; it is reclaimed now.
    Flushed,
}

/// The result of a read.
pub enum Lookup<'a> {
    /// The live item, readable until the shard is used again.
    Hit(ItemView<'a>),
    /// Nothing to return, and why.
    Miss(Miss),
}

/// Which storage command is running: they differ only in their precondition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the bytes after the present value; flags and expiry stay as they are.
    Append,
    /// Add the bytes before the present value; flags and expiry stay as they are.
    Prepend,
    /// Store only if the present item's CAS equals this one.
    Cas(u64),
}

/// One storage request, borrowing key and value from the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Store<'a> {
    /// The key, already hashed.
    pub key: Key<'a>,
    /// Which precondition applies.
    pub mode: StoreMode,
    /// The client's opaque 32-bit flags.
    pub flags: u32,
    /// When the item expires (see [`Clock::realtime`]); 0 means never.
    pub exptime: RelTime,
    /// The value's bytes, copied once into the slab chunk.
    pub value: &'a [u8],
}

/// What a meta-protocol store (`ms`) adds to a [`Store`]; the default adds nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Give the stored item this CAS rather than the next one (`E`). Ignored with CAS
    /// disabled. As in memcached, a CAS below that of a `flush_all` makes the item
    /// count as flushed.
    pub new_cas: Option<u64>,
    /// For [`StoreMode::Append`] and [`StoreMode::Prepend`]: when not 0, store only if
    /// the item's CAS is this, else answer `Exists` (memcached's simpler check for these
    /// modes, which it skips with CAS disabled). The other modes carry their CAS in
    /// [`StoreMode::Cas`].
    pub compare: u64,
    /// For [`StoreMode::Cas`]: what a CAS older than the item's does (`I`).
    pub older: OlderCas,
    /// For [`StoreMode::Append`] and [`StoreMode::Prepend`]: on a miss, store the value
    /// alone with this expiry instead of answering `NotStored` (`N`).
    pub vivify: Option<RelTime>,
    /// Mark the stored item's key as sent in base64 (`b`).
    pub binary_key: bool,
}

/// What a compare-and-set does when the given CAS is older than the item's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OlderCas {
    /// Refuse with `Exists`, as for any mismatch.
    #[default]
    Refuse,
    /// Store anyway, but mark the new value stale and keep the old expiry and recache
    /// token (meta `I`: a late writer's value is kept only until it is recached).
    MarkStale,
}

/// What a storage request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored; the new item's CAS.
    Stored {
        /// The CAS unique of the stored item.
        cas: u64,
    },
    /// The mode's precondition failed (`add` on a present key, `replace`, `append` or
    /// `prepend` on an absent one, or an append that would exceed the item size limit).
    NotStored,
    /// `cas` found the key with another CAS.
    Exists,
    /// `cas` found no such key.
    NotFound,
    /// Header, key and value together exceed the item size limit. For `Set` the old
    /// item with this key is removed, as memcached does, so stale data cannot outlive it.
    TooLarge,
    /// No memory could be found (evictions disabled, or nothing evictable). For `Set` the
    /// old item with this key is removed, as memcached does.
    NoMemory,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The item was removed.
    Deleted,
    /// There was no live item with this key.
    NotFound,
    /// A CAS was given and the item's differs; nothing was removed.
    Exists,
}

/// What a touch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchOutcome {
    /// The expiry was updated.
    Touched,
    /// There was no live item with this key.
    NotFound,
}

/// The value an increment or decrement creates when the key is absent (binary protocol,
/// meta `N`); text `incr` never creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initial {
    /// The number stored, as decimal text, when the key is absent.
    pub value: u64,
    /// Flags of the created item.
    pub flags: u32,
    /// Expiry of the created item.
    pub exptime: RelTime,
}

/// An increment or decrement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arith {
    /// Increment (wraps at 2^64) or decrement (stops at 0).
    pub incr: bool,
    /// The amount.
    pub delta: u64,
    /// Create the item with this value on a miss; `None` answers `NotFound`.
    pub initial: Option<Initial>,
    /// Compare with the item's CAS first; 0 means do not compare.
    pub cas: u64,
}

/// What an increment or decrement did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value (or the initial value just created) and the item's new CAS.
    Value {
        /// The counter after the operation.
        value: u64,
        /// The CAS unique of the updated item.
        cas: u64,
    },
    /// No live item and no initial value.
    NotFound,
    /// The stored value is not a decimal number below 2^64.
    NonNumeric,
    /// A CAS was given and the item's differs.
    Exists,
    /// The longer number needed a new item and no memory could be found.
    NoMemory,
}

/// Process-wide `flush_all` state that every shard reads lazily.
///
/// An immediate flush bumps `generation`; each shard, on its next operation, marks every
/// item it stored before that moment invalid (by CAS, so items stored in the same second
/// afterwards survive). A delayed flush sets `oldest_live`: once the clock reaches it,
/// items last written at or before it are invalid, as in memcached.
#[derive(Debug, Default)]
pub struct FlushState {
    generation: AtomicU64,
    oldest_live: AtomicU32,
}

impl FlushState {
    /// A state in which nothing has been flushed.
    pub fn new() -> FlushState {
        FlushState::default()
    }

    /// Invalidates every item stored so far, in every shard.
    pub fn flush_now(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Invalidates, once the clock reaches `at`, every item last written at or before it.
    pub fn flush_at(&self, at: RelTime) {
        self.oldest_live.store(at, Ordering::SeqCst);
    }

    /// The number of immediate flushes so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The delayed-flush boundary, 0 when none was set.
    pub fn oldest_live(&self) -> RelTime {
        self.oldest_live.load(Ordering::SeqCst)
    }
}

/// One worker's share of the cache.
///
/// Soundness rests on one invariant that every method keeps: each ref in the index,
/// an LRU list, a free list or a chain names a chunk in a page this shard holds, in the
/// state the structure expects (linked item head, free chunk, chain chunk of its head).
/// The `unsafe` blocks inside rely on it and nothing else.
pub struct Shard {
    id: usize,
    mem: Arena,
    chunks: Chunks,
    lru: Lrus,
    index: Index,
    clock: Arc<dyn Clock>,
    flush: Arc<FlushState>,
    stats: Arc<ShardStats>,
    limits: Limits,
    now: RelTime,
    next_cas: u64,
    /// The flush state readers on other workers need, published by [`Shard::begin`].
    applied: Arc<Applied>,
    /// How far apart this shard's CAS values are: the number of shards, so that shard
    /// `i` hands out `i + 1`, `i + 1 + n`, ... and no two items in the process share one.
    cas_stride: u64,
    flush_generation: u64,
    flush_cas: u64,
    oldest_live: RelTime,
    pinned: u32,
    crawl_class: u8,
    move_rotor: usize,
    evicting: u64,
}

// SAFETY: the arena pointer reaches only pages this shard holds (the invariant above),
// which no other thread touches; moving the shard to its worker moves that ownership.
unsafe impl Send for Shard {}

/// The settings a shard consults on every store.
#[derive(Clone, Copy, Debug)]
struct Limits {
    item_size_max: usize,
    chain_cap: usize,
    largest: u8,
    evictions: bool,
    cas_enabled: bool,
}

impl Limits {
    fn new(slab: &SlabConfig, classes: &SlabClasses) -> Limits {
        Limits {
            item_size_max: slab.item_size_max,
            chain_cap: classes.chunk_size(classes.largest()) - CHAIN_HEADER,
            largest: classes.largest(),
            evictions: slab.evictions,
            cas_enabled: slab.cas_enabled,
        }
    }
}

impl Shard {
    /// A shard drawing pages from `pool`, with classes from `slab`.
    ///
    /// Keys must be hashed with [`KeyHasher::new`], the process's hasher, which the
    /// shard uses to rehash keys as its index grows; see [`Shard::with_hasher`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use corecache::storage::*;
    ///
    /// let config = SlabConfig::default();
    /// let pool = Arc::new(PagePool::new(64 << 20, config.page_size, 1)?);
    /// let clock = Arc::new(SystemClock::new());
    /// let mut shard = Shard::new(0, &config, pool, clock, Arc::new(FlushState::new()));
    ///
    /// let key = KeyHasher::new().key(b"greeting");
    /// let value = b"hello";
    /// let store = Store { key, mode: StoreMode::Set, flags: 0, exptime: 0, value };
    /// assert!(matches!(shard.store(store), StoreOutcome::Stored { .. }));
    /// let Lookup::Hit(item) = shard.get(key, Access::default()) else { panic!() };
    /// assert_eq!(item.value_parts().collect::<Vec<_>>(), [b"hello"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(
        id: usize,
        slab: &SlabConfig,
        pool: Arc<PagePool>,
        clock: Arc<dyn Clock>,
        flush: Arc<FlushState>,
    ) -> Shard {
        Shard::with_hasher(id, slab, pool, clock, flush, KeyHasher::new())
    }

    /// As [`Shard::new`], for keys hashed with `hasher` (tests use seeded hashers).
    pub fn with_hasher(
        id: usize,
        slab: &SlabConfig,
        pool: Arc<PagePool>,
        clock: Arc<dyn Clock>,
        flush: Arc<FlushState>,
        hasher: KeyHasher,
    ) -> Shard {
        let mem = pool.arena();
        let cas_stride = pool.shards().max(1) as u64;
        let classes = SlabClasses::with_align(slab, mem.align());
        let stats = Arc::new(ShardStats::new(&classes));
        let limits = Limits::new(slab, &classes);
        let shard = Shard {
            id,
            mem,
            lru: Lrus::new(classes.len()),
            chunks: Chunks::new(pool, id, classes, Arc::clone(&stats)),
            index: Index::new(slab.hashpower, hasher),
            clock,
            flush: Arc::clone(&flush),
            stats,
            limits,
            now: 0,
            next_cas: 1 + id as u64,
            cas_stride,
            applied: Arc::new(Applied::default()),
            flush_generation: flush.generation(),
            flush_cas: 0,
            oldest_live: 0,
            pinned: NIL,
            crawl_class: 0,
            move_rotor: 0,
            evicting: 0,
        };
        shard.note_index_shape();
        shard
    }

    /// This shard's number, which is also its place in the pool's quotas.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Finds a live item, bumping it in its LRU unless told not to.
    pub fn get(&mut self, key: Key<'_>, access: Access) -> Lookup<'_> {
        self.begin();
        match self.find_live(key) {
            // SAFETY: `r` is a live item head from the index (the invariant).
            Ok(r) => unsafe {
                debug_assert!(self.chunks.holds(r));
                Lookup::Hit(self.hit(r, access))
            },
            Err(miss) => Lookup::Miss(miss),
        }
    }

    /// Runs a storage command.
    pub fn store(&mut self, store: Store<'_>) -> StoreOutcome {
        self.begin();
        self.store_item(store, &StoreOptions::default()).0
    }

    /// Calls `each` with up to `limit` live items of class `class` (all when `limit` is
    /// 0), most recent first, without bumping them: `stats cachedump`. A class id this
    /// shard does not have lists nothing.
    pub fn dump(&mut self, class: u8, limit: usize, mut each: impl FnMut(&ItemView<'_>)) {
        self.begin();
        if !self.lru.has_class(class) {
            return;
        }
        let mut r = self.lru.head(class);
        let mut listed = 0;
        while r != NIL && (limit == 0 || listed < limit) {
            // SAFETY: `r` is in `class`'s list, so a linked item head (the invariant).
            unsafe {
                debug_assert!(self.chunks.holds(r));
                let fetched = (*self.mem.hdr(r)).bits() & item::FETCHED != 0;
                if self.dead(r).is_none() {
                    each(&self.view(r, fetched));
                    listed += 1;
                }
                r = Lrus::older(self.mem, r);
            }
        }
    }

    /// Removes an item, if `cas` is 0 or matches.
    pub fn delete(&mut self, key: Key<'_>, cas: u64) -> DeleteOutcome {
        self.begin();
        let Ok(r) = self.find_live(key) else {
            return DeleteOutcome::NotFound;
        };
        // SAFETY: `r` is a live item head from the index (the invariant).
        unsafe {
            debug_assert!(self.chunks.holds(r));
            if cas != 0 && cas != self.visible_cas(r) {
                return DeleteOutcome::Exists;
            }
            stats::add(&self.stats.class(self.lru_class(r)).delete_hits, 1);
            self.unlink(r, key.hash);
        }
        DeleteOutcome::Deleted
    }

    /// Removes an item without counting a delete: used when a `set` is rejected.
    pub fn discard(&mut self, key: Key<'_>) {
        self.begin();
        self.remove_key(key);
    }

    /// Sets a new expiry on a live item.
    pub fn touch(&mut self, key: Key<'_>, exptime: RelTime) -> TouchOutcome {
        self.begin();
        let Ok(r) = self.find_live(key) else {
            return TouchOutcome::NotFound;
        };
        let access = Access {
            touch: Some(exptime),
            no_bump: false,
        };
        // SAFETY: `r` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(r));
        unsafe { self.hit(r, access) };
        TouchOutcome::Touched
    }

    /// Increments or decrements a decimal counter.
    pub fn arith(&mut self, key: Key<'_>, arith: Arith) -> ArithOutcome {
        self.begin();
        self.arith_item(key, arith)
    }

    /// Reclaims expired and flushed items, looking at no more than `budget` items.
    /// Also hands pages back to the pool while the shard is over its quota, moves a
    /// page towards a class that evicts much younger items than another class holds,
    /// and refreshes the `age` of each class. Returns the number of items reclaimed.
    /// The worker calls it about once a second.
    pub fn crawl(&mut self, budget: usize) -> usize {
        self.begin();
        self.crawl_classes(budget)
    }

    /// This shard's counters, readable from any thread.
    pub fn stats(&self) -> &Arc<ShardStats> {
        &self.stats
    }

    /// Reads the clock and any `flush_all` since the last operation, and publishes the
    /// flush state for readers on other workers when it changed.
    fn begin(&mut self) {
        self.now = self.clock.now();
        let generation = self.flush.generation();
        let oldest_live = self.flush.oldest_live();
        if generation != self.flush_generation || oldest_live != self.oldest_live {
            if generation != self.flush_generation {
                self.flush_generation = generation;
                self.flush_cas = self.next_cas;
            }
            self.oldest_live = oldest_live;
            read::publish_flush(&self.applied, generation, self.flush_cas, oldest_live);
        }
    }

    /// A handle through which other workers read this shard without its owner (see
    /// [`Reader`]).
    pub fn reader(&self) -> Reader {
        let layout = Layout {
            mem: self.mem,
            chain_cap: self.limits.chain_cap,
            item_size_max: self.limits.item_size_max,
            cas_enabled: self.limits.cas_enabled,
        };
        Reader::new(
            layout,
            self.index.published().clone(),
            self.applied.clone(),
            self.flush.clone(),
        )
    }

    /// The CAS clients see for a CAS unique: 0 when CAS is disabled.
    fn visible(&self, cas: u64) -> u64 {
        if self.limits.cas_enabled {
            cas
        } else {
            0
        }
    }

    /// The next CAS unique.
    fn take_cas(&mut self) -> u64 {
        let cas = self.next_cas;
        self.next_cas += self.cas_stride;
        cas
    }

    /// Publishes the index's size in the stats after it changed.
    fn note_index_shape(&self) {
        let counters = &self.stats.counters;
        stats::set(&counters.hash_power_level, u64::from(self.index.power()));
        stats::set(&counters.hash_bytes, self.index.bytes() as u64);
        stats::set(
            &counters.hash_is_expanding,
            u64::from(self.index.is_expanding()),
        );
    }
}
