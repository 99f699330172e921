//! How an item lies in its chunk, and the read-only view of it that a hit returns.
//!
//! An item is a 40-byte header followed by the key and then the value; no `\r\n` is
//! stored. A value too big for the largest chunk is a *chain*: the head chunk holds the
//! header, the key and an array of `u32` refs to data chunks, each of which starts with
//! an 8-byte prefix naming its head. Every chunk, whatever it holds, starts with the same
//! 8 bytes (`link`, `klen`, `class`, `bits`), so a page can be walked chunk by chunk and
//! each chunk told apart: free, item head or chain data.
//!
//! This module knows layouts and sizes; it does not allocate, link or evict.

use std::marker::PhantomData;
use std::mem::size_of;
use std::slice;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64};

use super::arena::Arena;
use super::clock::RelTime;

/// Bytes of per-item header. Pinned by a test so that growing it fails loudly.
pub const HEADER_SIZE: usize = 40;

/// Bytes at the start of a chain chunk before its data: the common 8-byte prefix.
pub const CHAIN_HEADER: usize = 8;

/// The longest key the engine stores, as memcached allows.
pub const KEY_MAX: usize = 250;

/// The per-item overhead memcached 1.6 charges on a 64-bit build: its 48-byte
/// header, the key's NUL and the value's `\r\n`.
///
/// The item sizes this module computes add it (and [`CAS_OVERHEAD`] and
/// [`FLAGS_OVERHEAD`] where memcached does) so that the `-I` boundary, `me size=` and
/// the `bytes` stat read exactly as memcached's do. The memory an item really takes
/// here is [`HEADER_SIZE`] plus key plus value, rounded up to its chunk: always less.
pub const BASE_OVERHEAD: usize = 51;

/// What memcached adds to an item's size for its CAS, unless CAS is disabled (`-C`).
pub const CAS_OVERHEAD: usize = 8;

/// What memcached adds to an item's size when its client flags are not 0.
pub const FLAGS_OVERHEAD: usize = 4;

/// The size of an item with a `key_len`-byte key, a `value_len`-byte value, flags 0
/// and CAS on, as memcached's `ITEM_ntotal` reports it; see [`accounted_size`] for
/// the general case.
///
/// # Examples
///
/// ```
/// use corecache::storage::item::item_size;
/// // memcached with -I 1m stores at most 1,048,514 bytes under a 3-byte key.
/// assert_eq!(item_size(3, 1_048_514), 1 << 20);
/// ```
pub fn item_size(key_len: usize, value_len: usize) -> usize {
    accounted_size(key_len, value_len, 0, true)
}

/// The size memcached's `ITEM_ntotal` reports for an item: what the protocol layer
/// compares with `-I` before buffering a value (an item is too large when this exceeds
/// `item_size_max`), and what the shard reports and checks too.
///
/// # Examples
///
/// ```
/// use corecache::storage::item::accounted_size;
/// // Measured on memcached 1.6.18: after `set cnt 0 0 2`, `me cnt` says size=64; it
/// // says 56 with -C, and 68 for `set cnt 5 0 2`.
/// assert_eq!(accounted_size(3, 2, 0, true), 64);
/// assert_eq!(accounted_size(3, 2, 0, false), 56);
/// assert_eq!(accounted_size(3, 2, 5, true), 68);
/// ```
pub fn accounted_size(key_len: usize, value_len: usize, flags: u32, cas_enabled: bool) -> usize {
    let extra = usize::from(flags != 0) * FLAGS_OVERHEAD + usize::from(cas_enabled) * CAS_OVERHEAD;
    (BASE_OVERHEAD + extra)
        .saturating_add(key_len)
        .saturating_add(value_len)
}

/// The header of an item head. Its first 8 bytes are the prefix every chunk shares.
///
/// `bits` holds the chunk kind in its low two bits ([`KIND_FREE`], [`KIND_ITEM`],
/// [`KIND_CHAIN`]; 0 while a page is being emptied) and the item flags above them
/// ([`LINKED`], [`CHAINED`], [`FETCHED`], [`ACCESSED`], and the meta protocol's
/// [`STALE`], [`TOKEN_SENT`] and [`BINARY_KEY`]). Bits 9 to 15 are spare.
///
/// The fields other workers read while the owner may write them (`link`, `bits`,
/// `exptime`, `atime`, `cas`: see [`super::read`]) are atomics; the owner accesses them
/// with relaxed loads and stores, which cost what plain ones do. `cas` doubles as the
/// item's version: it is 0 while the chunk is being written or after the item is
/// unlinked, and a reader that sees it change knows what it read is not to be used.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Header {
    /// Item: next item in the hash chain. Free chunk: next free chunk. Chain chunk: head.
    link: AtomicU32,
    /// Key length (item heads only).
    pub(super) klen: u8,
    /// The slab class of this chunk.
    pub(super) class: u8,
    /// Kind and flags.
    bits: AtomicU16,
    /// LRU neighbour towards the head (more recent); previous free chunk in a free list.
    pub(super) prev: u32,
    /// LRU neighbour towards the tail (older).
    pub(super) next: u32,
    /// When the item expires; 0 never.
    exptime: AtomicU32,
    /// When the item was stored or last bumped.
    atime: AtomicU32,
    /// The client's opaque flags.
    pub(super) flags: u32,
    /// Value length in bytes.
    pub(super) vlen: u32,
    /// The item's CAS unique, also its place in time for `flush_all`; 0 while not live.
    cas: AtomicU64,
}

impl Header {
    /// The hash chain's next item, the free list's next chunk, or a chain chunk's head.
    pub(super) fn link(&self) -> u32 {
        self.link.load(Relaxed)
    }

    /// Sets `link`; a release store, so a reader that follows it sees what was written
    /// before.
    pub(super) fn set_link(&self, r: u32) {
        self.link.store(r, Release);
    }

    /// The `link` field itself, for walking a chain while unlinking from it.
    pub(super) fn link_cell(&self) -> &AtomicU32 {
        &self.link
    }

    /// Kind and flags.
    pub(super) fn bits(&self) -> u16 {
        self.bits.load(Relaxed)
    }

    /// Kind and flags with acquire order, as a reader on another worker loads them.
    pub(super) fn bits_acquire(&self) -> u16 {
        self.bits.load(Acquire)
    }

    /// Replaces kind and flags.
    pub(super) fn set_bits(&self, bits: u16) {
        self.bits.store(bits, Relaxed);
    }

    /// Replaces kind and flags with a release store: a reader that sees them sees what
    /// was written before (a zeroed CAS, for a chunk becoming an item head).
    pub(super) fn set_bits_release(&self, bits: u16) {
        self.bits.store(bits, Release);
    }

    /// Sets flags, keeping the others (readers set theirs concurrently).
    pub(super) fn or_bits(&self, bits: u16) {
        self.bits.fetch_or(bits, Relaxed);
    }

    /// Clears flags, keeping the others.
    pub(super) fn clear_bits(&self, bits: u16) {
        self.bits.fetch_and(!bits, Relaxed);
    }

    /// When the item expires; 0 never.
    pub(super) fn exptime(&self) -> RelTime {
        self.exptime.load(Relaxed)
    }

    /// Sets the expiry.
    pub(super) fn set_exptime(&self, exptime: RelTime) {
        self.exptime.store(exptime, Relaxed);
    }

    /// When the item was stored or last bumped.
    pub(super) fn atime(&self) -> RelTime {
        self.atime.load(Relaxed)
    }

    /// Sets the last access time.
    pub(super) fn set_atime(&self, atime: RelTime) {
        self.atime.store(atime, Relaxed);
    }

    /// The CAS unique; 0 while the item is not live.
    pub(super) fn cas(&self) -> u64 {
        self.cas.load(Relaxed)
    }

    /// Sets the CAS unique. Setting a non-zero one publishes what was written before it
    /// (a release store); see [`Header::retire`] for the other direction.
    pub(super) fn set_cas(&self, cas: u64) {
        self.cas.store(cas, Release);
    }

    /// Marks the item as no longer live before its chunk is changed: CAS 0, then a
    /// release fence, so that a reader who sees any later write to the chunk also sees
    /// the 0 and drops what it read.
    pub(super) fn retire(&self) {
        self.cas.store(0, Relaxed);
        fence(Release);
    }

    /// The CAS as a reader loads it, with acquire order.
    pub(super) fn cas_acquire(&self) -> u64 {
        self.cas.load(Acquire)
    }
}

/// Mask of the chunk kind in [`Header::bits`].
pub(super) const KIND: u16 = 0b11;
/// A chunk on its class's free list.
pub(super) const KIND_FREE: u16 = 1;
/// An item head (allocated; linked once [`LINKED`] is set).
pub(super) const KIND_ITEM: u16 = 2;
/// A data chunk of a chained value; `link` names its head.
pub(super) const KIND_CHAIN: u16 = 3;
/// The item is in the index and its LRU.
pub(super) const LINKED: u16 = 1 << 2;
/// The value is stored in chain chunks named after the key.
pub(super) const CHAINED: u16 = 1 << 3;
/// The item has been read since it was stored.
pub(super) const FETCHED: u16 = 1 << 4;
/// The item was read since it last moved in its LRU: eviction gives it a second chance,
/// and the automover leaves its page alone. Readers on other workers set it instead of
/// moving the item, which only the owner may; the owner sets it for a read too soon
/// after the item last moved to move it again.
pub(super) const ACCESSED: u16 = 1 << 8;
/// The item was invalidated (meta `md I`, or `ms I` with an older CAS): readers are told
/// its value is stale, and the first of them is told to recache it.
pub(super) const STALE: u16 = 1 << 5;
/// A reader was already told to recache the item (meta `W`), so later ones hear `Z`.
pub(super) const TOKEN_SENT: u16 = 1 << 6;
/// The key was sent in base64 (meta `b`), so replies show it in base64 again.
pub(super) const BINARY_KEY: u16 = 1 << 7;

/// The key of item head `r`.
///
/// # Safety
///
/// `r` must name a written item head in a page the calling shard holds, left unchanged
/// while the slice is in use.
pub(super) unsafe fn key<'a>(mem: Arena, r: u32) -> &'a [u8] {
    let len = usize::from((*mem.hdr(r)).klen);
    slice::from_raw_parts(mem.ptr(r).add(HEADER_SIZE), len)
}

/// A read-only view of a live item, valid until the shard is used again.
pub struct ItemView<'a> {
    head: *const Header,
    r: u32,
    mem: Arena,
    lru_class: u8,
    chain_cap: usize,
    fetched: bool,
    cas_enabled: bool,
    _shard: PhantomData<&'a Header>,
}

impl<'a> ItemView<'a> {
    /// A view of the item head `r`.
    ///
    /// # Safety
    ///
    /// `r` must name an item head in a page the calling shard holds, fully written, and
    /// nothing may write to or free it or its chain chunks while `'a` lasts.
    pub(super) unsafe fn new(mem: Arena, r: u32, shape: ViewShape) -> ItemView<'a> {
        ItemView {
            head: mem.hdr(r),
            r,
            mem,
            lru_class: shape.lru_class,
            chain_cap: shape.chain_cap,
            fetched: shape.fetched,
            cas_enabled: shape.cas_enabled,
            _shard: PhantomData,
        }
    }

    fn header(&self) -> &'a Header {
        // SAFETY: `new`'s contract: the head is written and unchanged while 'a lasts.
        debug_assert!(self.head.is_aligned());
        unsafe { &*self.head }
    }

    /// The key.
    pub fn key(&self) -> &'a [u8] {
        let len = usize::from(self.header().klen);
        // SAFETY: the key follows the header in the head chunk (see `new`).
        debug_assert!(len <= KEY_MAX);
        unsafe { slice::from_raw_parts(self.head.cast::<u8>().add(HEADER_SIZE), len) }
    }

    /// The client's flags.
    pub fn flags(&self) -> u32 {
        self.header().flags
    }

    /// The CAS unique clients see: 0 when CAS is disabled (`-C`).
    pub fn cas(&self) -> u64 {
        if self.cas_enabled {
            self.header().cas()
        } else {
            0
        }
    }

    /// The value's length in bytes.
    pub fn value_len(&self) -> usize {
        self.header().vlen as usize
    }

    /// The value as one slice per chunk: one for most items, several for chained ones,
    /// so a reply can be written with vectored I/O straight from the chunks.
    pub fn value_parts(&self) -> ValueParts<'a> {
        // SAFETY: `new`'s contract: the item and its chain stay unchanged for 'a.
        debug_assert!(self.header().bits() & KIND == KIND_ITEM);
        let segments = unsafe { Segments::new(self.mem, self.r, self.chain_cap) };
        ValueParts {
            segments,
            _item: PhantomData,
        }
    }

    /// Appends the whole value to `out`.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        out.reserve(self.value_len());
        for part in self.value_parts() {
            out.extend_from_slice(part);
        }
    }

    /// When the item expires; 0 means never.
    pub fn exptime(&self) -> RelTime {
        self.header().exptime()
    }

    /// When the item was stored or last moved to the head of its LRU.
    pub fn last_access(&self) -> RelTime {
        self.header().atime()
    }

    /// Whether the item had been read before this read (meta `h`, `me fetch=`).
    pub fn fetched(&self) -> bool {
        self.fetched
    }

    /// The slab class whose LRU holds the item (`me cls=`, `stats items`).
    pub fn class_id(&self) -> u8 {
        self.lru_class
    }

    /// The item's size as memcached reports it (`me size=`): see [`accounted_size`].
    pub fn total_size(&self) -> usize {
        accounted_size(
            self.key().len(),
            self.value_len(),
            self.flags(),
            self.cas_enabled,
        )
    }
}

/// What a shard knows about an item that its header does not say.
#[derive(Clone, Copy, Debug)]
pub(super) struct ViewShape {
    /// The class whose LRU holds it.
    pub(super) lru_class: u8,
    /// Data bytes per full chain chunk.
    pub(super) chain_cap: usize,
    /// Whether it had been read before this read.
    pub(super) fetched: bool,
    /// Whether clients see CAS values.
    pub(super) cas_enabled: bool,
}

/// The value of an item, one chunk's slice at a time.
pub struct ValueParts<'a> {
    segments: Segments,
    _item: PhantomData<&'a [u8]>,
}

impl<'a> Iterator for ValueParts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (ptr, len) = self.segments.next()?;
        // SAFETY: the segment lies in the item's chunks, which the `ItemView` this came
        // from keeps unchanged for 'a.
        debug_assert!(!ptr.is_null());
        Some(unsafe { slice::from_raw_parts(ptr, len) })
    }
}

/// The value of an item as raw segments, one per chunk: what both reading and writing
/// a value walk.
pub(super) struct Segments {
    single: Option<(*mut u8, usize)>,
    mem: Arena,
    refs: *const u8,
    left: usize,
    cap: usize,
}

impl Segments {
    /// The segments of item head `r`, whose full chain chunks hold `cap` bytes each.
    ///
    /// # Safety
    ///
    /// `r` must name an item head of the calling shard whose key length, value length,
    /// bits and chain refs are written, and stay so while the segments are walked.
    pub(super) unsafe fn new(mem: Arena, r: u32, cap: usize) -> Segments {
        let h = mem.hdr(r);
        let body = mem.ptr(r).add(HEADER_SIZE + usize::from((*h).klen));
        let vlen = (*h).vlen as usize;
        let chained = (*h).bits() & CHAINED != 0;
        Segments {
            single: (!chained).then_some((body, vlen)),
            mem,
            refs: body,
            left: if chained { vlen } else { 0 },
            cap,
        }
    }
}

impl Iterator for Segments {
    type Item = (*mut u8, usize);

    fn next(&mut self) -> Option<(*mut u8, usize)> {
        if let Some(single) = self.single.take() {
            return Some(single);
        }
        if self.left == 0 {
            return None;
        }
        let len = self.left.min(self.cap);
        self.left -= len;
        // SAFETY: `refs` walks the head's array of chain refs, one per chunk of the
        // value (`new`'s contract).
        debug_assert!(self.cap > 0);
        let r = unsafe { self.refs.cast::<u32>().read_unaligned() };
        self.refs = self.refs.wrapping_add(size_of::<u32>());
        Some((self.mem.ptr(r).wrapping_add(CHAIN_HEADER), len))
    }
}

/// Fills an item's value from one or more sources, across its chunks.
pub(super) struct ValueWriter {
    segments: Segments,
    dst: *mut u8,
    room: usize,
}

impl ValueWriter {
    /// A writer at the start of item `r`'s value.
    ///
    /// # Safety
    ///
    /// As for [`Segments::new`], and nothing else may use the value while it is written.
    pub(super) unsafe fn new(mem: Arena, r: u32, cap: usize) -> ValueWriter {
        ValueWriter {
            segments: Segments::new(mem, r, cap),
            dst: std::ptr::null_mut(),
            room: 0,
        }
    }

    /// Copies `src` next. Bytes past the value's length are dropped; the shard sizes
    /// the item for exactly what it writes.
    pub(super) fn write(&mut self, mut src: &[u8]) {
        while !src.is_empty() {
            if self.room == 0 {
                let Some((dst, room)) = self.segments.next() else {
                    return;
                };
                (self.dst, self.room) = (dst, room);
                continue;
            }
            let n = self.room.min(src.len());
            // SAFETY: `dst` has `room` bytes of this item's value left (`new`'s
            // contract); `src` is the caller's buffer or another item's chunk.
            debug_assert!(!self.dst.is_null());
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.dst, n) };
            self.dst = self.dst.wrapping_add(n);
            self.room -= n;
            src = &src[n..];
        }
    }

    /// Copies the value of another item, `r`, next.
    ///
    /// # Safety
    ///
    /// As for [`Segments::new`] for `r`, which must not be the item being written.
    pub(super) unsafe fn copy_item(&mut self, mem: Arena, r: u32, cap: usize) {
        for (ptr, len) in Segments::new(mem, r, cap) {
            self.write(slice::from_raw_parts(ptr, len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_forty_bytes() {
        assert_eq!(HEADER_SIZE, 40);
        assert_eq!(size_of::<Header>(), HEADER_SIZE);
        assert_eq!(std::mem::align_of::<Header>(), 8);
    }

    #[test]
    fn item_size_matches_memcached_boundary() {
        assert_eq!(item_size(3, 1_048_514), 1_048_576);
        assert_eq!(item_size(250, 1_048_267), 1_048_576);
        assert_eq!(item_size(usize::MAX, 1), usize::MAX);
    }

    #[test]
    fn flags_and_cas_change_the_size_as_in_memcached() {
        // Measured on memcached 1.6.18: `me cnt` after `set cnt 0 0 2` is size=64, and
        // 56 with -C; a 4-byte key with flags 5 is 69.
        assert_eq!(accounted_size(3, 2, 0, true), 64);
        assert_eq!(accounted_size(3, 2, 0, false), 56);
        assert_eq!(accounted_size(4, 2, 5, true), 69);
        // -I 1m, 3-byte key, flags 1: 1,048,510 bytes fit; with -C, 1,048,518.
        assert_eq!(accounted_size(3, 1_048_510, 1, true), 1 << 20);
        assert_eq!(accounted_size(3, 1_048_518, 1, false), 1 << 20);
    }
}
