//! A shard's slab allocator: the pages it holds, each carved into the chunks of one
//! class, and a free list per class.
//!
//! Free lists are doubly linked through the free chunks themselves (`link` forwards,
//! `prev` back), so a page leaving its class can take its free chunks out of the list in
//! constant time each. Pages are carved whole when taken, like memcached 1.6 does.
//! This module hands out and takes back chunks; choosing what to evict or which page to
//! move is the shard's job.

use std::sync::Arc;

use super::arena::{Arena, NIL};
use super::item::{KIND, KIND_FREE, KIND_ITEM};
use super::slab::{PagePool, SlabClasses};
use super::stats::{self, ShardStats};

/// One class's free list.
#[derive(Clone, Copy, Debug, Default)]
struct FreeList {
    head: u32,
    len: u32,
}

/// The chunks and pages of one shard.
///
/// Methods that follow refs are `unsafe`: their contract is the shard invariant that
/// every ref given names a chunk in a page this shard holds, and every ref on a free
/// list names a free chunk of that list's class.
#[derive(Debug)]
pub struct Chunks {
    mem: Arena,
    pool: Arc<PagePool>,
    shard: usize,
    classes: SlabClasses,
    free: Vec<FreeList>,
    pages: Vec<Vec<u32>>,
    page_class: Vec<u8>,
    held: u32,
    stats: Arc<ShardStats>,
}

impl Chunks {
    /// No pages yet; pages come from `pool` as shard number `shard`.
    pub fn new(
        pool: Arc<PagePool>,
        shard: usize,
        classes: SlabClasses,
        stats: Arc<ShardStats>,
    ) -> Chunks {
        let n = classes.len() + 1;
        Chunks {
            mem: pool.arena(),
            pool,
            shard,
            classes,
            free: vec![FreeList::default(); n],
            pages: vec![Vec::new(); n],
            page_class: Vec::new(),
            held: 0,
            stats,
        }
    }

    /// The slab classes chunks are cut to.
    pub fn classes(&self) -> &SlabClasses {
        &self.classes
    }

    /// Whether the shard holds more pages than its quota (after a limit decrease).
    pub fn over_quota(&self) -> bool {
        self.held > self.pool.quota(self.shard)
    }

    /// The pages of class `class`.
    pub fn pages(&self, class: u8) -> &[u32] {
        &self.pages[usize::from(class)]
    }

    /// Pages this shard holds.
    pub fn held(&self) -> u32 {
        self.held
    }

    /// Whether every chunk of class `class` is free.
    pub fn all_free(&self, class: u8) -> bool {
        let total = self.pages(class).len() * self.classes.chunks_per_page(class);
        self.free[usize::from(class)].len as usize == total
    }

    /// Whether chunk `r` lies in a page this shard holds: for debug assertions.
    pub fn holds(&self, r: u32) -> bool {
        if r == NIL {
            return false;
        }
        let page = self.mem.page_of(r) as usize;
        self.page_class.get(page).is_some_and(|&class| class != 0)
    }

    /// The refs of the chunks of `page`, which holds class `class`.
    pub fn chunk_refs(&self, page: u32, class: u8) -> impl DoubleEndedIterator<Item = u32> {
        let start = self.mem.page_start(page);
        let step = (self.classes.chunk_size(class) / self.mem.align()) as u32;
        let count = self.classes.chunks_per_page(class) as u32;
        (0..count).map(move |i| start + i * step)
    }

    /// A chunk of class `class` off its free list, marked as an unlinked item head.
    ///
    /// # Safety
    ///
    /// The shard invariant (see the type).
    pub(super) unsafe fn pop(&mut self, class: u8) -> Option<u32> {
        let list = &mut self.free[usize::from(class)];
        let r = list.head;
        if r == NIL {
            return None;
        }
        let h = self.mem.hdr(r);
        list.head = (*h).link();
        list.len -= 1;
        if list.head != NIL {
            (*self.mem.hdr(list.head)).prev = NIL;
        }
        // A free chunk's CAS field may hold anything (the bytes of a chain chunk or of
        // another class's chunk); zero it before the chunk can be taken for an item,
        // so that a reader on another worker never trusts what is being written.
        (*h).retire();
        (*h).set_bits_release(KIND_ITEM);
        stats::sub(&self.stats.class(class).free_chunks, 1);
        Some(r)
    }

    /// Returns chunk `r` to its class's free list.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must be allocated (not free) and unreachable.
    pub(super) unsafe fn free(&mut self, r: u32) {
        debug_assert!((*self.mem.hdr(r)).bits() & KIND != KIND_FREE);
        self.push(r, (*self.mem.hdr(r)).class);
    }

    unsafe fn push(&mut self, r: u32, class: u8) {
        let list = &mut self.free[usize::from(class)];
        let h = self.mem.hdr(r);
        (*h).set_link(list.head);
        (*h).class = class;
        (*h).set_bits(KIND_FREE);
        (*h).prev = NIL;
        if list.head != NIL {
            (*self.mem.hdr(list.head)).prev = r;
        }
        list.head = r;
        list.len += 1;
        stats::add(&self.stats.class(class).free_chunks, 1);
    }

    /// Takes free chunk `r` of class `class` off its free list, for a page leaving it.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must be on `class`'s free list.
    pub(super) unsafe fn unfree(&mut self, r: u32, class: u8) {
        let h = self.mem.hdr(r);
        let (next, prev) = ((*h).link(), (*h).prev);
        let list = &mut self.free[usize::from(class)];
        if prev == NIL {
            list.head = next;
        } else {
            (*self.mem.hdr(prev)).set_link(next);
        }
        if next != NIL {
            (*self.mem.hdr(next)).prev = prev;
        }
        list.len -= 1;
        (*h).set_bits(0);
        stats::sub(&self.stats.class(class).free_chunks, 1);
    }

    /// Takes a page from the pool for class `class` if the shard is under its quota.
    pub fn grow(&mut self, class: u8) -> bool {
        let Some(page) = self.pool.take(self.shard, self.held) else {
            return false;
        };
        self.held += 1;
        stats::add(
            &self.stats.counters.total_malloced,
            self.pool.page_size() as u64,
        );
        // SAFETY: the pool just gave the page to this shard alone.
        debug_assert!(!self.holds(self.mem.page_start(page)));
        unsafe { self.adopt(page, class) };
        true
    }

    /// Carves `page` into chunks of class `class` and frees them all.
    ///
    /// # Safety
    ///
    /// The page must belong to this shard and hold nothing anyone refers to: fresh from
    /// the pool, or detached with every chunk off its free list.
    pub(super) unsafe fn adopt(&mut self, page: u32, class: u8) {
        let at = page as usize;
        if at >= self.page_class.len() {
            self.page_class.resize((at + 1).next_power_of_two(), 0);
        }
        self.page_class[at] = class;
        self.pages[usize::from(class)].push(page);
        stats::add(&self.stats.class(class).total_pages, 1);
        for r in self.chunk_refs(page, class).rev() {
            self.push(r, class);
        }
    }

    /// Takes `page` out of class `class`; the caller has emptied it.
    pub fn detach(&mut self, page: u32, class: u8) {
        let pages = &mut self.pages[usize::from(class)];
        if let Some(i) = pages.iter().position(|&p| p == page) {
            pages.swap_remove(i);
            stats::sub(&self.stats.class(class).total_pages, 1);
        }
    }

    /// Gives a detached, empty page back to the pool.
    pub fn release(&mut self, page: u32) {
        self.page_class[page as usize] = 0;
        self.held -= 1;
        stats::sub(
            &self.stats.counters.total_malloced,
            self.pool.page_size() as u64,
        );
        self.pool.give(page);
    }
}
