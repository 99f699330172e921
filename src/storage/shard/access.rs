//! Finding, linking and unlinking items: the steps every shard operation is made of.
//!
//! Functions here that take a ref are `unsafe fn`s whose contract is the shard
//! invariant (see [`Shard`]) plus what each says about the ref's state.

use super::{Access, Miss, Shard};
use crate::storage::arena::NIL;
use crate::storage::index::Key;
use crate::storage::item::{
    self, ItemView, ViewShape, ACCESSED, CHAINED, FETCHED, HEADER_SIZE, KIND, KIND_CHAIN, LINKED,
};
use crate::storage::stats;

/// A hit moves an item to the head of its LRU at most this often (memcached's
/// `ITEM_UPDATE_INTERVAL`), so hot keys do not rewrite list links on every read.
const BUMP_INTERVAL: u32 = 60;

impl Shard {
    /// The live item with `key`; a dead one found on the way is removed.
    pub(super) fn find_live(&mut self, key: Key<'_>) -> Result<u32, Miss> {
        // SAFETY: the index holds only linked item heads of this shard (the invariant).
        debug_assert!(self.pinned == NIL, "lookups run before any item is pinned");
        unsafe {
            let r = self.index.find(self.mem, key);
            if r == NIL {
                return Err(Miss::NotFound);
            }
            debug_assert!(self.chunks.holds(r));
            match self.dead(r) {
                None => Ok(r),
                Some(miss) => {
                    self.unlink(r, key.hash);
                    Err(miss)
                }
            }
        }
    }

    /// Removes the item with `key`, live or dead, without counting a delete.
    pub(super) fn remove_key(&mut self, key: Key<'_>) {
        if let Ok(r) = self.find_live(key) {
            // SAFETY: `r` is a live item head from the index (the invariant).
            debug_assert!(self.chunks.holds(r));
            unsafe { self.unlink(r, key.hash) };
        }
    }

    /// Why item `r` is dead (flushed or expired), or `None` while it lives.
    ///
    /// # Safety
    ///
    /// `r` is an item head of this shard.
    pub(super) unsafe fn dead(&self, r: u32) -> Option<Miss> {
        let h = self.mem.hdr(r);
        let oldest = self.oldest_live;
        let delayed = oldest != 0 && oldest <= self.now && (*h).atime() <= oldest;
        if (*h).cas() < self.flush_cas || delayed {
            return Some(Miss::Flushed);
        }
        let exptime = (*h).exptime();
        (exptime != 0 && exptime <= self.now).then_some(Miss::Expired)
    }

    /// The class whose LRU holds item `r`: its own, or the largest for a chain.
    ///
    /// # Safety
    ///
    /// `r` is an item head of this shard.
    pub(super) unsafe fn lru_class(&self, r: u32) -> u8 {
        let h = self.mem.hdr(r);
        if (*h).bits() & CHAINED != 0 {
            self.limits.largest
        } else {
            (*h).class
        }
    }

    /// The CAS clients see for item `r`.
    ///
    /// # Safety
    ///
    /// `r` is an item head of this shard.
    pub(super) unsafe fn visible_cas(&self, r: u32) -> u64 {
        self.visible((*self.mem.hdr(r)).cas())
    }

    /// Item `r`'s size as the stats count it.
    ///
    /// # Safety
    ///
    /// `r` is a written item head of this shard.
    unsafe fn accounted(&self, r: u32) -> u64 {
        let h = self.mem.hdr(r);
        let (klen, vlen) = (usize::from((*h).klen), (*h).vlen as usize);
        item::accounted_size(klen, vlen, (*h).flags, self.limits.cas_enabled) as u64
    }

    /// Counts a read (or touch) of live item `r`, applies `access`, and views it.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard.
    pub(super) unsafe fn hit(&mut self, r: u32, access: Access) -> ItemView<'_> {
        let h = self.mem.hdr(r);
        let fetched = (*h).bits() & FETCHED != 0;
        let class = self.stats.class(self.lru_class(r));
        match access.touch {
            Some(exptime) => {
                (*h).set_exptime(exptime);
                stats::add(&class.touch_hits, 1);
            }
            None => stats::add(&class.get_hits, 1),
        }
        if !access.no_bump {
            (*h).or_bits(FETCHED);
            self.bump(r);
        }
        self.view(r, fetched)
    }

    /// A view of item `r`; `fetched` says whether it had been read before.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard.
    pub(super) unsafe fn view(&self, r: u32, fetched: bool) -> ItemView<'_> {
        let shape = ViewShape {
            lru_class: self.lru_class(r),
            chain_cap: self.limits.chain_cap,
            fetched,
            cas_enabled: self.limits.cas_enabled,
        };
        ItemView::new(self.mem, r, shape)
    }

    /// Moves item `r` to the head of its LRU if it has not been there for a while, and
    /// otherwise marks it `ACCESSED`, as a reader on another worker does: eviction then
    /// gives it a second chance, and the automover does not take its page while it is
    /// in use, although its place in the LRU says it was last used up to a minute ago.
    ///
    /// # Safety
    ///
    /// `r` is a linked item head of this shard.
    pub(super) unsafe fn bump(&mut self, r: u32) {
        let h = self.mem.hdr(r);
        if self.now.saturating_sub((*h).atime()) >= BUMP_INTERVAL {
            self.lru.bump(self.mem, self.lru_class(r), r);
            (*h).set_atime(self.now);
            (*h).clear_bits(ACCESSED);
        } else if (*h).bits() & ACCESSED == 0 {
            (*h).or_bits(ACCESSED);
        }
    }

    /// Moves item `r`, read by another worker since it last moved, to the head of its
    /// LRU and clears the mark.
    ///
    /// # Safety
    ///
    /// `r` is a linked item head of this shard.
    pub(super) unsafe fn second_chance(&mut self, r: u32) {
        let h = self.mem.hdr(r);
        (*h).clear_bits(ACCESSED);
        self.lru.bump(self.mem, self.lru_class(r), r);
        (*h).set_atime(self.now);
        stats::add(&self.stats.class(self.lru_class(r)).moves_within_lru, 1);
    }

    /// Publishes written item `r` under a key hashing to `hash`: index, LRU, stats.
    ///
    /// # Safety
    ///
    /// `r` is a written, unlinked item head of this shard whose key is not in the index.
    pub(super) unsafe fn link(&mut self, r: u32, hash: u64) {
        (*self.mem.hdr(r)).or_bits(LINKED);
        if self.index.insert(self.mem, r, hash) {
            self.note_index_shape();
        }
        let class = self.lru_class(r);
        self.lru.push(self.mem, class, r);
        let size = self.accounted(r);
        let counters = &self.stats.counters;
        stats::add(&counters.curr_items, 1);
        stats::add(&counters.total_items, 1);
        stats::add(&counters.bytes, size);
        let class = self.stats.class(class);
        stats::add(&class.number, 1);
        stats::add(&class.mem_requested, size);
    }

    /// Removes linked item `r`, whose key hashes to `hash`, and frees its chunks.
    ///
    /// # Safety
    ///
    /// `r` is a linked item head of this shard, not pinned.
    pub(super) unsafe fn unlink(&mut self, r: u32, hash: u64) {
        debug_assert!(r != self.pinned);
        // Before anything about it changes, tell readers on other workers it is gone.
        (*self.mem.hdr(r)).retire();
        let found = self.index.remove(self.mem, r, hash);
        debug_assert!(found, "a linked item is in the index");
        let class = self.lru_class(r);
        self.lru.unlink(self.mem, class, r);
        let size = self.accounted(r);
        let counters = &self.stats.counters;
        stats::sub(&counters.curr_items, 1);
        stats::sub(&counters.bytes, size);
        let class = self.stats.class(class);
        stats::sub(&class.number, 1);
        stats::sub(&class.mem_requested, size);
        self.free_item(r);
    }

    /// [`unlink`](Shard::unlink) for an item found without its key's hash at hand.
    ///
    /// # Safety
    ///
    /// As for `unlink`.
    pub(super) unsafe fn unlink_found(&mut self, r: u32) {
        let hash = self.index.hasher().hash(item::key(self.mem, r));
        self.unlink(r, hash);
    }

    /// Frees item `r`'s chunks: its chain's first `chunks`, then its head.
    ///
    /// # Safety
    ///
    /// `r` is an unreachable item head of this shard with at least `chunks` chain refs
    /// written.
    pub(super) unsafe fn free_chunks(&mut self, r: u32, chunks: usize) {
        for i in 0..chunks {
            let c = self.chain_ref(r, i).read_unaligned();
            debug_assert!((*self.mem.hdr(c)).bits() & KIND == KIND_CHAIN);
            self.chunks.free(c);
        }
        self.chunks.free(r);
    }

    /// Frees every chunk of unreachable item `r`.
    ///
    /// # Safety
    ///
    /// `r` is a fully written, unreachable item head of this shard.
    unsafe fn free_item(&mut self, r: u32) {
        self.free_chunks(r, self.chain_len(r));
    }

    /// How many chain chunks item `r` has (0 unless chained).
    ///
    /// # Safety
    ///
    /// `r` is a written item head of this shard.
    pub(super) unsafe fn chain_len(&self, r: u32) -> usize {
        let h = self.mem.hdr(r);
        if (*h).bits() & CHAINED == 0 {
            return 0;
        }
        ((*h).vlen as usize).div_ceil(self.limits.chain_cap)
    }

    /// Where item `r` keeps the ref of its `i`th chain chunk (unaligned).
    ///
    /// # Safety
    ///
    /// `r` is a chained item head of this shard with its key length written.
    pub(super) unsafe fn chain_ref(&self, r: u32, i: usize) -> *mut u32 {
        let klen = usize::from((*self.mem.hdr(r)).klen);
        self.mem.ptr(r).add(HEADER_SIZE + klen + 4 * i).cast()
    }
}
