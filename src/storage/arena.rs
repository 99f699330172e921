//! Addresses inside the page region: the `u32` refs that item headers, chains, free
//! lists, LRU links and index buckets store instead of pointers.
//!
//! A ref is a chunk's byte offset in the region shifted right by the region's alignment
//! shift, plus one, so that 0 ([`NIL`]) means "none" and a bucket array can start zeroed.
//! Refs are half the size of pointers, which is how an item header stays at 40 bytes.
//!
//! This module only computes addresses. It does not decide which shard holds a page
//! (that is [`PagePool`](super::slab::PagePool) and the shard's chunk allocator), and it
//! never reads or writes through the addresses it computes.

use super::item::Header;

/// The ref that names no chunk: an empty bucket, the end of a list.
pub const NIL: u32 = 0;

/// The page region as a shard sees it: where it starts and how refs map onto it.
///
/// `Copy` and without lifetime: the region lives as long as the `Arc<PagePool>` that
/// every holder of an `Arena` also holds.
#[derive(Clone, Copy, Debug)]
pub struct Arena {
    base: *mut u8,
    len: usize,
    shift: u32,
    page_size: usize,
}

impl Arena {
    /// The arena over `len` bytes at `base`, with refs counting units of `1 << shift`
    /// bytes and pages of `page_size` bytes.
    pub(super) fn new(base: *mut u8, len: usize, shift: u32, page_size: usize) -> Arena {
        Arena {
            base,
            len,
            shift,
            page_size,
        }
    }

    /// The alignment every chunk has, and so the granularity of chunk sizes.
    pub fn align(self) -> usize {
        1 << self.shift
    }

    /// The ref of the chunk that starts `offset` bytes into the region.
    pub(super) fn ref_at(self, offset: usize) -> u32 {
        debug_assert!(offset < self.len && offset % self.align() == 0);
        ((offset >> self.shift) + 1) as u32
    }

    /// The byte offset in the region of the chunk `r`.
    pub(super) fn offset(self, r: u32) -> usize {
        debug_assert!(r != NIL);
        ((r - 1) as usize) << self.shift
    }

    /// The page that holds chunk `r`.
    pub(super) fn page_of(self, r: u32) -> u32 {
        (self.offset(r) / self.page_size) as u32
    }

    /// The ref of the first chunk of `page`.
    pub(super) fn page_start(self, page: u32) -> u32 {
        self.ref_at(page as usize * self.page_size)
    }

    /// The address of chunk `r`. Computing it is safe; reading or writing through it is
    /// for the unsafe functions of the modules that own the chunk.
    pub(super) fn ptr(self, r: u32) -> *mut u8 {
        debug_assert!(self.offset(r) < self.len);
        self.base.wrapping_add(self.offset(r))
    }

    /// Whether chunk `r` and the `bytes` after its start lie inside the region: what a
    /// reader on another worker checks before following a ref it read under concurrent
    /// writes.
    pub(super) fn contains(self, r: u32, bytes: usize) -> bool {
        r != NIL && self.contains_bytes(((r - 1) as usize) << self.shift, bytes)
    }

    /// Whether `len` bytes at `offset` lie inside the region.
    pub(super) fn contains_bytes(self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// The address `offset` bytes into the region.
    pub(super) fn ptr_at(self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.len);
        self.base.wrapping_add(offset)
    }

    /// The header at the start of chunk `r` (every chunk starts with its prefix).
    pub(super) fn hdr(self, r: u32) -> *mut Header {
        self.ptr(r).cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip_and_skip_nil() {
        let arena = Arena::new(std::ptr::null_mut(), 1 << 20, 3, 1 << 16);
        assert_eq!(arena.ref_at(0), 1);
        assert_eq!(arena.offset(arena.ref_at(4096)), 4096);
        assert_eq!(arena.page_of(arena.ref_at(3 << 16)), 3);
        assert_eq!(arena.offset(arena.page_start(2)), 2 << 16);
    }
}
