//! Making room: allocation with its fallbacks (free list, fresh page, the LRU tail,
//! another class's page), giving pages back over quota, and the crawler.
//!
//! With evictions off (`-M`) only dead items (expired or flushed) are ever removed here,
//! and only pages holding nothing live change class.
//!
//! An allocation takes a page from another class only when its own class has nothing
//! to evict (its LRU is empty); once it has items it evicts its own tail. Later shifts
//! in the size mix are followed by the crawl, which moves a page at a time (see
//! `rebalance`).

use super::{Miss, Shard};
use crate::storage::arena::NIL;
use crate::storage::item::{ACCESSED, FETCHED, KIND, KIND_CHAIN, KIND_FREE, KIND_ITEM, LINKED};
use crate::storage::lru::Lrus;
use crate::storage::stats;

/// An allocation makes room at most this many times before giving up.
const ALLOC_TRIES: usize = 16;

/// How far from an LRU tail to look for something dead or unpinned.
const TAIL_SEARCH: usize = 5;

/// Items one allocation may give a second chance before it evicts one that was read
/// anyway: with every item near the tail read by other workers, it must still find room.
const SECOND_CHANCES: usize = 64;

/// Pages one allocation may inspect while looking for one to move.
pub(super) const MOVE_TRIES: usize = 4;

/// Items the crawler checks in one class before moving to the next.
const CRAWL_STEP: usize = 64;

/// Pages one crawl may give back while the shard is over its quota.
const RELEASE_PER_CRAWL: usize = 8;

/// Why an item is being removed to make room, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Removal {
    /// An allocation found it dead at an LRU tail.
    Reclaim,
    /// An allocation evicted it from an LRU tail.
    Evict,
    /// Its page moved to another class.
    Move,
    /// The crawler found it dead.
    Crawl,
}

impl Shard {
    /// A chunk of class `class`, making room if need be; `None` when there is none.
    ///
    /// # Safety
    ///
    /// The pinned item, if any, is a linked item head of this shard.
    pub(super) unsafe fn alloc_chunk(&mut self, class: u8) -> Option<u32> {
        for _ in 0..ALLOC_TRIES {
            if let Some(r) = self.chunks.pop(class) {
                return Some(r);
            }
            if !self.make_room(class) {
                break;
            }
        }
        stats::add(&self.stats.class(class).outofmemory, 1);
        None
    }

    /// Frees at least one chunk, in `class` if it can; false when nothing could be done.
    unsafe fn make_room(&mut self, class: u8) -> bool {
        if self.chunks.over_quota() {
            self.release_pages(1);
        }
        self.chunks.grow(class) || self.free_from_tail(class) || self.move_page(class)
    }

    /// Reclaims a dead item near `class`'s LRU tail, or else evicts the oldest
    /// unpinned one if evictions are on. An item read by another worker since it last
    /// moved (its `ACCESSED` flag) gets a second chance instead: it moves to the head,
    /// as the owner would have moved it had the read been its own.
    unsafe fn free_from_tail(&mut self, class: u8) -> bool {
        let mut r = self.lru.tail(class);
        let (mut victim, mut looked, mut spared) = (NIL, 0, 0);
        while r != NIL && looked < TAIL_SEARCH {
            let newer = Lrus::newer(self.mem, r);
            if r != self.pinned {
                if self.dead(r).is_some() {
                    self.remove(r, Removal::Reclaim);
                    return true;
                }
                let accessed = (*self.mem.hdr(r)).bits() & ACCESSED != 0;
                if accessed && spared < SECOND_CHANCES {
                    self.second_chance(r);
                    spared += 1;
                    r = newer;
                    continue;
                }
                if victim == NIL {
                    victim = r;
                }
            }
            looked += 1;
            r = newer;
        }
        if victim == NIL || !self.limits.evictions {
            return false;
        }
        self.remove(victim, Removal::Evict);
        self.evicting |= 1 << class;
        true
    }

    /// Unlinks item `r` to make room, counting it as `why` says.
    unsafe fn remove(&mut self, r: u32, why: Removal) {
        let direct = matches!(why, Removal::Reclaim | Removal::Evict);
        let why = match (why, self.dead(r)) {
            (Removal::Move, Some(_)) => Removal::Reclaim,
            _ => why,
        };
        let class = self.lru_class(r);
        self.count_removal(r, class, why);
        if direct {
            stats::add(&self.stats.class(class).direct_reclaims, 1);
            stats::add(&self.stats.counters.direct_reclaims, 1);
        }
        self.unlink_found(r);
    }

    /// Counts the removal of item `r` from `class`'s LRU for reason `why`.
    unsafe fn count_removal(&self, r: u32, class: u8, why: Removal) {
        match why {
            Removal::Reclaim | Removal::Crawl => {
                self.count_reclaim(r, class, why == Removal::Crawl)
            }
            Removal::Evict | Removal::Move => self.count_eviction(r, class, why == Removal::Move),
        }
    }

    /// Counts a dead item removed by an allocation or (`crawl`) the crawler.
    unsafe fn count_reclaim(&self, r: u32, class: u8, crawl: bool) {
        let (shard, class) = (&self.stats.counters, self.stats.class(class));
        let (mine, total) = match crawl {
            true => (&class.crawler_reclaimed, &shard.crawler_reclaimed),
            false => (&class.reclaimed, &shard.reclaimed),
        };
        stats::add(mine, 1);
        stats::add(total, 1);
        // The crawler, like memcached's, counts only expired items as unfetched.
        let counted = !crawl || self.dead(r) == Some(Miss::Expired);
        if counted && (*self.mem.hdr(r)).bits() & FETCHED == 0 {
            stats::add(&class.expired_unfetched, 1);
            stats::add(&shard.expired_unfetched, 1);
        }
    }

    /// Counts a live item evicted from an LRU tail or (`moved`) by a page move.
    unsafe fn count_eviction(&self, r: u32, class: u8, moved: bool) {
        let h = self.mem.hdr(r);
        let (shard, class) = (&self.stats.counters, self.stats.class(class));
        stats::add(&class.evicted, 1);
        stats::add(&shard.evictions, 1);
        stats::add(&shard.slab_reassign_evictions_nomem, u64::from(moved));
        stats::add(&class.evicted_nonzero, u64::from((*h).exptime() != 0));
        stats::set(
            &class.evicted_time,
            u64::from(self.now.saturating_sub((*h).atime())),
        );
        if (*h).bits() & FETCHED == 0 {
            stats::add(&class.evicted_unfetched, 1);
            stats::add(&shard.evicted_unfetched, 1);
        }
    }

    /// Moves a page of another class to `class`.
    unsafe fn move_page(&mut self, class: u8) -> bool {
        let Some(page) = self.empty_some_page(Some(class)) else {
            return false;
        };
        self.chunks.adopt(page, class);
        stats::add(&self.stats.counters.slabs_moved, 1);
        true
    }

    /// Gives up to `max` pages back to the pool while the shard is over its quota.
    pub(super) fn release_pages(&mut self, max: usize) {
        for _ in 0..max {
            if !self.chunks.over_quota() {
                return;
            }
            // SAFETY: emptying a page follows only refs the invariant covers, and it
            // leaves the pinned item, if any, alone.
            debug_assert!(self.chunks.held() > 0);
            let Some(page) = (unsafe { self.empty_some_page(None) }) else {
                return;
            };
            self.chunks.release(page);
        }
    }

    /// Empties and detaches a page of the class holding the most pages (ties: the one
    /// with the oldest LRU tail), other than `except`. Returns it, or `None` when no
    /// page that may be emptied was found within [`MOVE_TRIES`].
    unsafe fn empty_some_page(&mut self, except: Option<u8>) -> Option<u32> {
        let mut tries = MOVE_TRIES;
        for class in self.victim_classes(except) {
            if let Some(page) = self.empty_page_of(class, &mut tries) {
                return Some(page);
            }
        }
        None
    }

    /// Empties and detaches a page of `class`, inspecting at most `tries` pages.
    pub(super) unsafe fn empty_page_of(&mut self, class: u8, tries: &mut usize) -> Option<u32> {
        for page in self.candidate_pages(class) {
            if *tries == 0 {
                return None;
            }
            *tries -= 1;
            if self.empty_page(page, class) {
                self.chunks.detach(page, class);
                return Some(page);
            }
        }
        None
    }

    /// Classes holding pages, most pages first, then oldest tail first.
    unsafe fn victim_classes(&self, except: Option<u8>) -> Vec<u8> {
        let largest = self.limits.largest;
        let mut classes: Vec<u8> = (1..=largest)
            .filter(|&c| Some(c) != except && !self.chunks.pages(c).is_empty())
            .collect();
        let tail_age = |c: u8| match self.lru.tail(c) {
            NIL => 0,
            r => (*self.mem.hdr(r)).atime(),
        };
        classes.sort_by_key(|&c| (std::cmp::Reverse(self.chunks.pages(c).len()), tail_age(c)));
        classes
    }

    /// Pages of `class` worth trying: the one holding its LRU tail, then others in turn.
    unsafe fn candidate_pages(&mut self, class: u8) -> Vec<u32> {
        let tail = self.lru.tail(class);
        let mut candidates = Vec::with_capacity(MOVE_TRIES + 1);
        if tail != NIL && (*self.mem.hdr(tail)).class == class {
            candidates.push(self.mem.page_of(tail));
        }
        let start = self.move_rotor;
        self.move_rotor = self.move_rotor.wrapping_add(1);
        let pages = self.chunks.pages(class);
        for i in 0..pages.len().min(MOVE_TRIES) {
            candidates.push(pages[start.wrapping_add(i) % pages.len()]);
        }
        candidates
    }

    /// Removes everything in `page` (of class `class`) and takes its chunks off the
    /// free list, if nothing in it is busy or (with evictions off) live.
    unsafe fn empty_page(&mut self, page: u32, class: u8) -> bool {
        let mut chunks = self.chunks.chunk_refs(page, class);
        if !chunks.all(|c| self.chunk_movable(c)) {
            return false;
        }
        for c in self.chunks.chunk_refs(page, class) {
            let h = self.mem.hdr(c);
            match (*h).bits() & KIND {
                KIND_ITEM => self.remove(c, Removal::Move),
                KIND_CHAIN => self.remove((*h).link(), Removal::Move),
                _ => {}
            }
            debug_assert_eq!((*h).bits() & KIND, KIND_FREE);
            self.chunks.unfree(c, class);
        }
        true
    }

    /// Whether chunk `c` is free or belongs to an item that may be removed now.
    unsafe fn chunk_movable(&self, c: u32) -> bool {
        let h = self.mem.hdr(c);
        match (*h).bits() & KIND {
            KIND_FREE => true,
            KIND_ITEM => self.item_movable(c),
            KIND_CHAIN => self.item_movable((*h).link()),
            _ => false,
        }
    }

    /// Whether item head `r` is linked, unpinned and, with evictions off, dead.
    unsafe fn item_movable(&self, r: u32) -> bool {
        let linked = (*self.mem.hdr(r)).bits() & LINKED != 0;
        linked && r != self.pinned && (self.limits.evictions || self.dead(r).is_some())
    }

    /// The crawl behind [`Shard::crawl`]: round-robin over classes, from each tail
    /// towards its head, resuming where the last crawl stopped.
    pub(super) fn crawl_classes(&mut self, budget: usize) -> usize {
        self.release_pages(RELEASE_PER_CRAWL);
        self.rebalance();
        let n = self.limits.largest;
        let all = ((1u128 << (n + 1)) - 2) as u64;
        let (mut done, mut checked, mut reclaimed) = (0u64, 0, 0);
        while checked < budget && done != all {
            self.crawl_class = self.crawl_class % n + 1;
            let class = self.crawl_class;
            if done & (1 << class) != 0 {
                continue;
            }
            // SAFETY: the crawler follows LRU links, which name linked item heads.
            debug_assert!(self.pinned == NIL);
            let (seen, dead, finished) =
                unsafe { self.crawl_one(class, (budget - checked).min(CRAWL_STEP)) };
            (checked, reclaimed) = (checked + seen, reclaimed + dead);
            done |= u64::from(finished) << class;
        }
        self.note_ages();
        reclaimed
    }

    /// Checks up to `max` items of `class` from its crawl cursor towards the head.
    /// Returns how many it checked and reclaimed, and whether it reached the head.
    unsafe fn crawl_one(&mut self, class: u8, max: usize) -> (usize, usize, bool) {
        let mut r = match self.lru.cursor(class) {
            NIL => self.lru.tail(class),
            cursor => cursor,
        };
        let (mut checked, mut reclaimed) = (0, 0);
        while r != NIL && checked < max {
            let newer = Lrus::newer(self.mem, r);
            checked += 1;
            if self.dead(r).is_some() {
                self.remove(r, Removal::Crawl);
                reclaimed += 1;
            }
            r = newer;
        }
        self.lru.set_cursor(class, r);
        stats::add(
            &self.stats.class(class).crawler_items_checked,
            checked as u64,
        );
        stats::add(&self.stats.counters.crawler_items_checked, checked as u64);
        (checked, reclaimed, r == NIL)
    }

    /// Publishes each class's `age`: seconds since its LRU tail was accessed.
    fn note_ages(&self) {
        for class in 1..=self.limits.largest {
            let age = self.tail_age(class).unwrap_or(0);
            stats::set(&self.stats.class(class).age, u64::from(age));
        }
    }
}
