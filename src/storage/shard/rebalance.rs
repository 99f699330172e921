//! Moving pages towards the classes that need them: once per crawl, a page goes from
//! the class holding the oldest items to a class that had to evict much younger ones,
//! so the split of memory between sizes follows the workload (memcached's automover,
//! in its simplest form).
//!
//! Only with evictions on: moving a page evicts what it holds.

use super::reclaim::MOVE_TRIES;
use super::Shard;
use crate::storage::arena::NIL;
use crate::storage::item::{Header, ACCESSED};
use crate::storage::stats;

/// A page moves only when the donor's oldest item is this many times older than the
/// oldest item the starved class had to evict...
const AGE_RATIO: u32 = 2;

/// ...and at least this many seconds older, so that a young cache does not shuffle.
const MIN_AGE_GAP: u32 = 30;

impl Shard {
    /// Moves one page to the evicting class with the youngest tail from the class
    /// with the oldest, if the ages differ enough.
    pub(super) fn rebalance(&mut self) {
        let evicting = std::mem::take(&mut self.evicting);
        if evicting == 0 || !self.limits.evictions {
            return;
        }
        let Some((starved, young)) = self.youngest_evicting(evicting) else {
            return;
        };
        let Some((donor, old)) = self.oldest_donor(starved) else {
            return;
        };
        if old < young.saturating_mul(AGE_RATIO) || old - young < MIN_AGE_GAP {
            return;
        }
        let mut tries = MOVE_TRIES;
        // SAFETY: emptying a page follows only refs the shard invariant covers.
        debug_assert!(self.pinned == NIL);
        if let Some(page) = unsafe { self.empty_page_of(donor, &mut tries) } {
            // SAFETY: the page was just emptied and detached from the donor.
            unsafe { self.chunks.adopt(page, starved) };
            stats::add(&self.stats.counters.slabs_moved, 1);
        }
    }

    /// Among the classes in the `evicting` bit set, the one with the youngest tail.
    fn youngest_evicting(&self, evicting: u64) -> Option<(u8, u32)> {
        (1..=self.limits.largest)
            .filter(|&class| evicting & (1 << class) != 0)
            .filter_map(|class| Some((class, self.tail_age(class)?)))
            .min_by_key(|&(_, age)| age)
    }

    /// The class other than `starved` whose pages hold the oldest items; a class whose
    /// pages are all free counts as the oldest of all.
    fn oldest_donor(&self, starved: u8) -> Option<(u8, u32)> {
        (1..=self.limits.largest)
            .filter(|&class| class != starved && !self.chunks.pages(class).is_empty())
            .filter_map(|class| match self.chunks.all_free(class) {
                true => Some((class, u32::MAX)),
                false => Some((class, self.unused_age(class)?)),
            })
            .max_by_key(|&(_, age)| age)
    }

    /// [`Shard::tail_age`], except that a tail read since it last moved (`ACCESSED`)
    /// counts as just used: items are moved in the LRU at most once a minute, and only
    /// by their owner, so a class whose items are all being read can have an old tail.
    fn unused_age(&self, class: u8) -> Option<u32> {
        let tail = self.tail_header(class)?;
        match tail.bits() & ACCESSED {
            0 => Some(self.now.saturating_sub(tail.atime())),
            _ => Some(0),
        }
    }

    /// Seconds since `class`'s LRU tail was accessed, or `None` when the list is empty.
    pub(super) fn tail_age(&self, class: u8) -> Option<u32> {
        let tail = self.tail_header(class)?;
        Some(self.now.saturating_sub(tail.atime()))
    }

    /// The header of `class`'s LRU tail, or `None` when the list is empty.
    fn tail_header(&self, class: u8) -> Option<&Header> {
        let tail = self.lru.tail(class);
        if tail == NIL {
            return None;
        }
        debug_assert!(self.chunks.holds(tail));
        // SAFETY: an LRU tail is a linked item head of this shard (the invariant), and
        // nothing unlinks it while the shard is borrowed.
        Some(unsafe { &*self.mem.hdr(tail) })
    }
}
