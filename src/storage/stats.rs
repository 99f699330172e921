//! The counters a shard keeps for `stats`, `stats slabs` and `stats items`, named as
//! memcached names them.
//!
//! Only the owning worker writes them, with a relaxed load and store (no locked
//! instruction on the hot path); any thread may read them through
//! [`ShardStats::snapshot`], which returns plain numbers that add up across shards. This
//! module counts; it does not format stats lines, which is the server's job.

use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};

use super::slab::SlabClasses;

/// Adds `n` to a counter that only its owner writes.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    set(counter, counter.load(Ordering::Relaxed).wrapping_add(n));
}

/// Subtracts `n` from a gauge that only its owner writes.
pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    set(counter, counter.load(Ordering::Relaxed).wrapping_sub(n));
}

/// Sets a gauge that only its owner writes.
pub(crate) fn set(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}

/// Declares a struct of atomic counters and its plain snapshot from one list of
/// fields, each with how shards combine it (`sum` or `max`) and whether `stats reset`
/// zeroes it (`reset` or `keep`). `extra` fields exist in the snapshot only.
macro_rules! counters {
    (
        $(#[$am:meta])* atomics $atomics:ident;
        $(#[$sm:meta])* snapshot $snap:ident;
        fields { $( $(#[$fm:meta])* $field:ident: $merge:ident $reset:ident, )* }
        extra { $( $(#[$xm:meta])* $xfield:ident: $xty:ty, )* }
    ) => {
        $(#[$am])*
        #[derive(Debug, Default)]
        pub struct $atomics {
            $( $(#[$fm])* pub(crate) $field: AtomicU64, )*
        }

        $(#[$sm])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $snap {
            $( $(#[$fm])* pub $field: u64, )*
            $( $(#[$xm])* pub $xfield: $xty, )*
        }

        impl $atomics {
            fn load(&self) -> $snap {
                $snap {
                    $( $field: self.$field.load(Ordering::Relaxed), )*
                    ..Default::default()
                }
            }

            /// Zeroes the counters that memcached's `stats reset` zeroes; gauges such as
            /// item counts and pages stay.
            pub fn reset(&self) {
                $( counters!(@reset $reset self.$field); )*
            }
        }

        impl $snap {
            /// Adds another shard's counters into these (some combine as a maximum; see
            /// the type's documentation).
            pub fn merge(&mut self, other: &$snap) {
                $( counters!(@merge $merge self.$field, other.$field); )*
                self.merge_extra(other);
            }
        }

        impl AddAssign<&$snap> for $snap {
            fn add_assign(&mut self, other: &$snap) {
                self.merge(other);
            }
        }
    };
    (@reset reset $f:expr) => { $f.store(0, Ordering::Relaxed) };
    (@reset keep $f:expr) => {};
    (@merge sum $a:expr, $b:expr) => { $a = $a.wrapping_add($b) };
    (@merge max $a:expr, $b:expr) => { $a = $a.max($b) };
}

counters! {
    /// A shard's whole-cache counters (`stats`).
    atomics ShardCounters;
    /// A shard's counters as plain numbers, with its classes; `+=` adds another shard's.
    ///
    /// `hash_power_level` and `hash_is_expanding` combine as the maximum over shards,
    /// since each shard has its own table; the others add up.
    snapshot ShardSnapshot;
    fields {
        /// Items stored now.
        curr_items: sum keep,
        /// Items ever stored.
        total_items: sum reset,
        /// Sum of the items' sizes as memcached counts them (see `accounted_size`).
        bytes: sum keep,
        /// Live items removed to make room, including by page moves.
        evictions: sum reset,
        /// Expired or flushed items whose memory an allocation reused.
        reclaimed: sum reset,
        /// Reclaimed items that were never read.
        expired_unfetched: sum reset,
        /// Evicted items that were never read.
        evicted_unfetched: sum reset,
        /// Evicted items that were active; always 0 with one LRU per class.
        evicted_active: sum reset,
        /// Dead items the crawler removed.
        crawler_reclaimed: sum reset,
        /// Items the crawler looked at.
        crawler_items_checked: sum reset,
        /// Pages moved from one class to another.
        slabs_moved: sum reset,
        /// Live items evicted because their page moved to another class.
        slab_reassign_evictions_nomem: sum reset,
        /// Evictions and reclaims an allocation did itself.
        direct_reclaims: sum reset,
        /// Always 0: there are no LRU segments to move between.
        moves_to_cold: sum reset,
        /// Always 0: there are no LRU segments to move between.
        moves_to_warm: sum reset,
        /// Always 0: there are no LRU segments to move within.
        moves_within_lru: sum reset,
        /// log2 of the index's bucket count.
        hash_power_level: max keep,
        /// Bytes of index buckets.
        hash_bytes: sum keep,
        /// 1 while the index is doubling.
        hash_is_expanding: max keep,
        /// Bytes of pages this shard holds.
        total_malloced: sum keep,
    }
    extra {
        /// Per class, indexed by class id (index 0 is unused).
        classes: Vec<ClassSnapshot>,
    }
}

counters! {
    /// One slab class's counters (`stats slabs`, `stats items`).
    ///
    /// With one LRU per class, every item counts as `number_cold` and every hit as
    /// `hits_to_cold`; the hot, warm and temp figures stay 0.
    atomics ClassStats;
    /// One class's counters as plain numbers.
    ///
    /// `chunk_size`, `chunks_per_page`, `age` and `evicted_time` combine as the maximum
    /// over shards; the others add up.
    snapshot ClassSnapshot;
    fields {
        /// Bytes per chunk.
        chunk_size: max keep,
        /// Chunks per page.
        chunks_per_page: max keep,
        /// Pages the class holds.
        total_pages: sum keep,
        /// Chunks on the free list.
        free_chunks: sum keep,
        /// Always 0: pages are carved whole.
        free_chunks_end: sum keep,
        /// Sum of the sizes of the items in the class's LRU.
        mem_requested: sum keep,
        /// Reads that found an item.
        get_hits: sum reset,
        /// Storage commands.
        cmd_set: sum reset,
        /// Deletes that found an item.
        delete_hits: sum reset,
        /// Increments that found a number.
        incr_hits: sum reset,
        /// Decrements that found a number.
        decr_hits: sum reset,
        /// `cas` commands that matched.
        cas_hits: sum reset,
        /// `cas` commands that found another CAS.
        cas_badval: sum reset,
        /// Touches (and touching reads) that found an item.
        touch_hits: sum reset,
        /// Items in the class's LRU.
        number: sum keep,
        /// Always 0 (one LRU per class).
        number_hot: sum keep,
        /// Always 0 (one LRU per class).
        number_warm: sum keep,
        /// Always 0 (one LRU per class).
        age_hot: max keep,
        /// Always 0 (one LRU per class).
        age_warm: max keep,
        /// Seconds since the LRU tail was last accessed, as of the last crawl.
        age: max keep,
        /// Live items evicted.
        evicted: sum reset,
        /// Evicted items that had an expiry.
        evicted_nonzero: sum reset,
        /// Seconds since the last evicted item was accessed.
        evicted_time: max reset,
        /// Allocations that found no memory.
        outofmemory: sum reset,
        /// Always 0: items have no reference counts to leak.
        tailrepairs: sum reset,
        /// Dead items whose memory an allocation reused.
        reclaimed: sum reset,
        /// Reclaimed items that were never read.
        expired_unfetched: sum reset,
        /// Evicted items that were never read.
        evicted_unfetched: sum reset,
        /// Always 0 (one LRU per class).
        evicted_active: sum reset,
        /// Dead items the crawler removed.
        crawler_reclaimed: sum reset,
        /// Items the crawler looked at.
        crawler_items_checked: sum reset,
        /// Always 0: items have no reference counts to hold them.
        lrutail_reflocked: sum reset,
        /// Always 0 (one LRU per class).
        moves_to_cold: sum reset,
        /// Always 0 (one LRU per class).
        moves_to_warm: sum reset,
        /// Always 0 (one LRU per class).
        moves_within_lru: sum reset,
        /// Evictions and reclaims an allocation in this class did itself.
        direct_reclaims: sum reset,
        /// Always 0 (one LRU per class).
        hits_to_hot: sum reset,
        /// Always 0 (one LRU per class).
        hits_to_warm: sum reset,
        /// Always 0 (one LRU per class).
        hits_to_temp: sum reset,
    }
    extra {
        /// `total_pages * chunks_per_page`.
        total_chunks: u64,
        /// Chunks holding items or chain data.
        used_chunks: u64,
        /// Same as `number`.
        number_cold: u64,
        /// Hits on the class's items: `get_hits + touch_hits`.
        hits_to_cold: u64,
    }
}

/// All of one shard's counters; the shard holds it in an `Arc` so `stats` can read it
/// from any thread.
#[derive(Debug)]
pub struct ShardStats {
    pub(crate) counters: ShardCounters,
    classes: Box<[ClassStats]>,
}

impl ShardStats {
    /// Zeroed counters for `classes`, with each class's chunk geometry filled in.
    pub fn new(classes: &SlabClasses) -> ShardStats {
        let stats: Box<[ClassStats]> = (0..=classes.len()).map(|_| ClassStats::default()).collect();
        for id in 1..=classes.largest() {
            let class = &stats[usize::from(id)];
            set(&class.chunk_size, classes.chunk_size(id) as u64);
            set(&class.chunks_per_page, classes.chunks_per_page(id) as u64);
        }
        ShardStats {
            counters: ShardCounters::default(),
            classes: stats,
        }
    }

    /// The counters of class `id`.
    ///
    /// # Panics
    ///
    /// If `id` is above the shard's largest class.
    pub fn class(&self, id: u8) -> &ClassStats {
        &self.classes[usize::from(id)]
    }

    /// The counters now, as plain numbers.
    pub fn snapshot(&self) -> ShardSnapshot {
        let mut snapshot = self.counters.load();
        snapshot.classes = self.classes.iter().map(ClassStats::snapshot).collect();
        snapshot
    }

    /// Zeroes what `stats reset` zeroes, here and in every class.
    pub fn reset(&self) {
        self.counters.reset();
        self.classes.iter().for_each(ClassStats::reset);
    }
}

impl ClassStats {
    /// The counters now, as plain numbers.
    pub fn snapshot(&self) -> ClassSnapshot {
        let mut snapshot = self.load();
        snapshot.total_chunks = snapshot.total_pages * snapshot.chunks_per_page;
        snapshot.used_chunks = snapshot.total_chunks.saturating_sub(snapshot.free_chunks);
        snapshot.number_cold = snapshot.number;
        snapshot.hits_to_cold = snapshot.get_hits + snapshot.touch_hits;
        snapshot
    }
}

impl ShardSnapshot {
    fn merge_extra(&mut self, other: &ShardSnapshot) {
        if self.classes.len() < other.classes.len() {
            self.classes
                .resize(other.classes.len(), ClassSnapshot::default());
        }
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            *mine += theirs;
        }
    }
}

impl ClassSnapshot {
    fn merge_extra(&mut self, other: &ClassSnapshot) {
        self.total_chunks += other.total_chunks;
        self.used_chunks += other.used_chunks;
        self.number_cold += other.number_cold;
        self.hits_to_cold += other.hits_to_cold;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::slab::SlabConfig;

    #[test]
    fn snapshots_add_up_and_reset_keeps_gauges() {
        let stats = ShardStats::new(&SlabClasses::new(&SlabConfig::default()));
        add(&stats.counters.curr_items, 3);
        add(&stats.counters.evictions, 2);
        add(&stats.class(1).get_hits, 5);
        set(&stats.class(1).total_pages, 1);
        set(&stats.class(1).free_chunks, 10);
        let mut total = stats.snapshot();
        total += &stats.snapshot();
        let mut merged = ShardSnapshot::default();
        merged.merge(&total);
        assert_eq!(merged, total);
        assert_eq!(total.curr_items, 6);
        assert_eq!(total.classes[1].get_hits, 10);
        assert_eq!(total.classes[1].chunk_size, 88);
        assert_eq!(total.classes[1].used_chunks, 2 * (11915 - 10));
        stats.reset();
        let after = stats.snapshot();
        assert_eq!((after.curr_items, after.evictions), (3, 0));
        assert_eq!(after.classes[1].get_hits, 0);
    }
}
