//! Recency order: one doubly linked list of item heads per slab class, most recent at
//! the head, the eviction candidates at the tail.
//!
//! The links live in the item headers (`prev` towards the head, `next` towards the
//! tail), so a list costs nothing per item beyond the header. This module only keeps the
//! order; when to bump, what to evict and what counts as dead are the shard's decisions.
//! Known limit: one list per class, not memcached's hot/warm/cold segments.

use super::arena::{Arena, NIL};

/// One class's list, plus the crawler's place in it.
#[derive(Clone, Copy, Debug, Default)]
struct List {
    head: u32,
    tail: u32,
    len: u32,
    cursor: u32,
}

/// The LRU lists of one shard, indexed by class id.
///
/// Methods that follow refs are `unsafe`: their contract is the shard invariant that
/// every ref in a list names a linked item head in a page the shard holds.
#[derive(Debug)]
pub struct Lrus {
    lists: Vec<List>,
}

impl Lrus {
    /// Empty lists for class ids 1 to `classes`.
    pub fn new(classes: usize) -> Lrus {
        Lrus {
            lists: vec![List::default(); classes + 1],
        }
    }

    /// Items in class `class`'s list.
    pub fn len(&self, class: u8) -> usize {
        self.lists[usize::from(class)].len as usize
    }

    /// Whether class `class`'s list is empty.
    pub fn is_empty(&self, class: u8) -> bool {
        self.len(class) == 0
    }

    /// Whether `class` is a class id these lists cover.
    pub fn has_class(&self, class: u8) -> bool {
        class != 0 && usize::from(class) < self.lists.len()
    }

    /// The most recently used item of `class`, or `NIL` (0).
    pub fn head(&self, class: u8) -> u32 {
        self.lists[usize::from(class)].head
    }

    /// The least recently used item of `class`, or `NIL` (0).
    pub fn tail(&self, class: u8) -> u32 {
        self.lists[usize::from(class)].tail
    }

    /// Where the crawler resumes in `class`: an item, or `NIL` (0) for the tail.
    pub fn cursor(&self, class: u8) -> u32 {
        self.lists[usize::from(class)].cursor
    }

    /// Sets where the crawler resumes in `class`.
    pub fn set_cursor(&mut self, class: u8, r: u32) {
        self.lists[usize::from(class)].cursor = r;
    }

    /// The item just more recent than `r`, or `NIL` (0) at the head.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must be in a list.
    pub(super) unsafe fn newer(mem: Arena, r: u32) -> u32 {
        (*mem.hdr(r)).prev
    }

    /// The item just less recent than `r`, or `NIL` (0) at the tail.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must be in a list.
    pub(super) unsafe fn older(mem: Arena, r: u32) -> u32 {
        (*mem.hdr(r)).next
    }

    /// Puts `r` at the head of `class`'s list.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must be an item head in no list.
    pub(super) unsafe fn push(&mut self, mem: Arena, class: u8, r: u32) {
        let list = &mut self.lists[usize::from(class)];
        let h = mem.hdr(r);
        (*h).prev = NIL;
        (*h).next = list.head;
        if list.head == NIL {
            list.tail = r;
        } else {
            (*mem.hdr(list.head)).prev = r;
        }
        list.head = r;
        list.len += 1;
    }

    /// Takes `r` out of `class`'s list; a crawler resuming at `r` resumes at the item
    /// just more recent instead.
    ///
    /// # Safety
    ///
    /// The shard invariant, and `r` must be in `class`'s list.
    pub(super) unsafe fn unlink(&mut self, mem: Arena, class: u8, r: u32) {
        let list = &mut self.lists[usize::from(class)];
        let h = mem.hdr(r);
        let (prev, next) = ((*h).prev, (*h).next);
        if prev == NIL {
            list.head = next;
        } else {
            (*mem.hdr(prev)).next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            (*mem.hdr(next)).prev = prev;
        }
        if list.cursor == r {
            list.cursor = prev;
        }
        list.len -= 1;
    }

    /// Moves `r` to the head of `class`'s list.
    ///
    /// # Safety
    ///
    /// As for [`unlink`](Lrus::unlink).
    pub(super) unsafe fn bump(&mut self, mem: Arena, class: u8, r: u32) {
        if self.lists[usize::from(class)].head != r {
            self.unlink(mem, class, r);
            self.push(mem, class, r);
        }
    }
}
