//! Reads of a shard by workers that do not own it, without waiting for its owner.
//!
//! A get for a key in another worker's shard would otherwise travel to the owner and
//! back, costing both workers a turn and often a wake-up. A [`Reader`] looks the key up
//! in the owner's index and copies the value directly, while the owner keeps writing:
//! the optimistic "seqlock" protocol. An item's CAS is its version. The owner zeroes it
//! before changing or freeing an item and publishes a new one only once the item is
//! complete; a reader notes the CAS, reads, and checks that the CAS has not changed. If
//! anything moved under it, the reader answers [`Read::Unsure`] and the request goes to
//! the owner the usual way. Index chains are rewired only while the index's sequence
//! number is odd, so a miss is trusted only if that number stayed even and unchanged.
//!
//! A reader never writes to the shard except two flags with atomic OR: `FETCHED` and
//! `ACCESSED` (which tells the owner's eviction that the item was used, in place of
//! moving it in the LRU). It does not reclaim expired items; the owner does.
//!
//! Known limit: per-class hit counters (`stats slabs` `get_hits`) count only the gets
//! the owner ran; the per-worker counters (`get_hits` in `stats`) count every get.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicU32, AtomicU64};
use std::sync::Arc;

use super::arena::{Arena, NIL};
use super::clock::RelTime;
use super::index::{Key, Published};
use super::item::{
    ACCESSED, BINARY_KEY, CHAINED, CHAIN_HEADER, FETCHED, HEADER_SIZE, KEY_MAX, KIND, KIND_ITEM,
    STALE, TOKEN_SENT,
};
use super::shard::FlushState;
use super::Miss;

/// The most chain links a reader follows before giving up: chains average under two
/// items, so a longer walk means the chain is being rewired under it.
const MAX_STEPS: usize = 64;

/// What a read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The item was live; its header line and value were appended.
    Hit,
    /// No live item; nothing was appended.
    Miss(Miss),
    /// The owner changed what the reader was looking at; nothing was appended. Ask the
    /// owner.
    Unsure,
}

/// The attributes of a hit, for the caller to write its reply header with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The client's flags.
    pub flags: u32,
    /// The value's length.
    pub len: usize,
    /// The CAS clients see (0 with `-C`).
    pub cas: u64,
    /// When it expires (0: never).
    pub exptime: RelTime,
    /// Whether the meta commands have marked it (stale, a recache token sent, or a key
    /// stored in base64): an `mg` of it changes it or needs the owner's view.
    pub meta_marked: bool,
}

/// The flush state a shard has applied, published for its readers.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// The flush generation the owner has taken into account.
    pub(super) generation: AtomicU64,
    /// Items with a CAS below this were flushed.
    pub(super) flush_cas: AtomicU64,
    /// The delayed flush boundary the owner has read (0: none).
    pub(super) oldest_live: AtomicU32,
}

/// What does not change about a shard: how to find its items and how to read them.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    pub(super) mem: Arena,
    pub(super) chain_cap: usize,
    pub(super) item_size_max: usize,
    pub(super) cas_enabled: bool,
}

/// A handle through which any worker reads one shard.
#[derive(Clone, Debug)]
pub struct Reader {
    layout: Layout,
    index: Arc<Published>,
    applied: Arc<Applied>,
    flush: Arc<FlushState>,
}

// SAFETY: the arena pointer is only read through the validated protocol of this module,
// and the region it points into lives as long as the page pool every holder keeps.
unsafe impl Send for Reader {}
// SAFETY: as above; a `Reader` holds no state of its own that reads change.
unsafe impl Sync for Reader {}

impl Reader {
    /// A reader over a shard with this layout, index and flush state.
    pub(super) fn new(
        layout: Layout,
        index: Arc<Published>,
        applied: Arc<Applied>,
        flush: Arc<FlushState>,
    ) -> Reader {
        Reader {
            layout,
            index,
            applied,
            flush,
        }
    }

    /// Looks `key` up at time `now`. On a hit, `header` writes the reply's header line
    /// for what was found, then the value is appended; if the read turns out not to be
    /// trustworthy, `out` is put back as it was and the answer is [`Read::Unsure`].
    pub fn get(
        &self,
        key: Key<'_>,
        now: RelTime,
        out: &mut Vec<u8>,
        mut header: impl FnMut(&mut Vec<u8>, Found),
    ) -> Read {
        let Some(flush_cas) = self.flush_boundary() else {
            return Read::Unsure;
        };
        let seq = self.index.seq.load(Acquire);
        if seq % 2 == 1 {
            return Read::Unsure;
        }
        let tables = self.index.tables.load();
        let mut r = self.index.bucket(&tables, key.hash).load(Acquire);
        for _ in 0..MAX_STEPS {
            if r == NIL {
                return self.miss_if_stable(seq, Miss::NotFound);
            }
            match self.visit(r, key, now, flush_cas, out, &mut header) {
                Visit::Next(next) => r = next,
                Visit::Done(read) => return read,
            }
        }
        Read::Unsure
    }

    /// The CAS below which items are flushed, if the owner has applied the latest
    /// immediate flush; `None` when it has not yet (the owner must answer).
    fn flush_boundary(&self) -> Option<u64> {
        let applied = self.applied.generation.load(Acquire);
        if applied != self.flush.generation() {
            return None;
        }
        Some(self.applied.flush_cas.load(Relaxed))
    }

    /// A miss is trusted only if no chain was rewired while the reader walked.
    fn miss_if_stable(&self, seq: u64, miss: Miss) -> Read {
        fence(Acquire);
        if self.index.seq.load(Relaxed) == seq {
            Read::Miss(miss)
        } else {
            Read::Unsure
        }
    }

    /// Looks at chunk `r`: the item with the key (read it), another item (go on to its
    /// successor), or something changing (give up).
    fn visit(
        &self,
        r: u32,
        key: Key<'_>,
        now: RelTime,
        flush_cas: u64,
        out: &mut Vec<u8>,
        header: &mut impl FnMut(&mut Vec<u8>, Found),
    ) -> Visit {
        let mem = self.layout.mem;
        if !mem.contains(r, HEADER_SIZE + KEY_MAX) {
            return Visit::Done(Read::Unsure);
        }
        // SAFETY: `r` names bytes inside the mapped region (checked above). The header's
        // atomics are read atomically; its other fields and the key may be changing
        // and are read with volatile loads whose results are used only if the CAS
        // check below shows nothing changed (the seqlock protocol).
        debug_assert!(mem.hdr(r).is_aligned());
        let h = unsafe { &*mem.hdr(r) };
        if h.bits_acquire() & KIND != KIND_ITEM {
            return Visit::Done(Read::Unsure);
        }
        let version = h.cas_acquire();
        if version == 0 {
            return Visit::Done(Read::Unsure);
        }
        // SAFETY: as above.
        let (matches, next) = unsafe { (key_matches(mem, r, key.bytes), h.link()) };
        fence(Acquire);
        if h.cas() != version {
            return Visit::Done(Read::Unsure);
        }
        if !matches {
            return Visit::Next(next);
        }
        Visit::Done(self.read_item(r, version, now, flush_cas, out, header))
    }

    /// Reads the item `r` whose key matched and whose CAS was `version`.
    fn read_item(
        &self,
        r: u32,
        version: u64,
        now: RelTime,
        flush_cas: u64,
        out: &mut Vec<u8>,
        header: &mut impl FnMut(&mut Vec<u8>, Found),
    ) -> Read {
        let mem = self.layout.mem;
        // SAFETY: `r` was checked to lie in the region by `visit`.
        let h = unsafe { &*mem.hdr(r) };
        // SAFETY: volatile reads of fields that may change, validated below.
        let (flags, vlen, klen) = unsafe {
            let p = mem.hdr(r);
            (
                std::ptr::addr_of!((*p).flags).read_volatile(),
                std::ptr::addr_of!((*p).vlen).read_volatile() as usize,
                usize::from(std::ptr::addr_of!((*p).klen).read_volatile()),
            )
        };
        if let Some(miss) = self.dead(h, version, now, flush_cas) {
            fence(Acquire);
            return if h.cas() == version {
                Read::Miss(miss)
            } else {
                Read::Unsure
            };
        }
        if vlen > self.layout.item_size_max {
            return Read::Unsure;
        }
        let start = out.len();
        let cas = if self.layout.cas_enabled { version } else { 0 };
        header(
            out,
            Found {
                flags,
                len: vlen,
                cas,
                exptime: h.exptime(),
                meta_marked: h.bits() & (STALE | TOKEN_SENT | BINARY_KEY) != 0,
            },
        );
        let copied = self.copy_value(r, klen, vlen, h.bits() & CHAINED != 0, out);
        fence(Acquire);
        if !copied || h.cas() != version {
            out.truncate(start);
            return Read::Unsure;
        }
        if h.bits() & (FETCHED | ACCESSED) != FETCHED | ACCESSED {
            h.or_bits(FETCHED | ACCESSED);
        }
        Read::Hit
    }

    /// Why an item is dead to a reader, if it is: expired, or flushed (immediately, by
    /// CAS, or by a delayed flush).
    fn dead(
        &self,
        h: &super::item::Header,
        version: u64,
        now: RelTime,
        flush_cas: u64,
    ) -> Option<Miss> {
        let oldest = self.applied.oldest_live.load(Relaxed);
        let delayed = oldest != 0 && oldest <= now && h.atime() <= oldest;
        if version < flush_cas || delayed {
            return Some(Miss::Flushed);
        }
        let exptime = h.exptime();
        (exptime != 0 && exptime <= now).then_some(Miss::Expired)
    }

    /// Appends the value of item `r` (key length `klen`, value length `vlen`): from the
    /// head chunk, or from its chain. Answers false if a ref points outside the region,
    /// which only a concurrent change can cause.
    fn copy_value(
        &self,
        r: u32,
        klen: usize,
        vlen: usize,
        chained: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let mem = self.layout.mem;
        let body = mem.offset(r) + HEADER_SIZE + klen.min(KEY_MAX);
        if !chained {
            return mem.contains_bytes(body, vlen) && copy_bytes(mem, body, vlen, out);
        }
        let cap = self.layout.chain_cap;
        let chunks = vlen.div_ceil(cap);
        if !mem.contains_bytes(body, chunks * 4) {
            return false;
        }
        (0..chunks).all(|i| {
            let len = cap.min(vlen - i * cap);
            // SAFETY: the ref array lies in the region (checked above); a torn ref is
            // caught by the bounds check and the caller's CAS check.
            let c = unsafe { mem.ptr_at(body + 4 * i).cast::<u32>().read_unaligned() };
            c != NIL
                && mem.contains(c, CHAIN_HEADER + len)
                && copy_bytes(mem, mem.offset(c) + CHAIN_HEADER, len, out)
        })
    }
}

/// What looking at one chunk of a chain found.
enum Visit {
    /// Another key: go on to this chunk.
    Next(u32),
    /// The answer.
    Done(Read),
}

/// Whether item `r`'s key equals `key`, read with volatile loads.
///
/// # Safety
///
/// `r`'s header and `KEY_MAX` bytes after it lie in the mapped region.
unsafe fn key_matches(mem: Arena, r: u32, key: &[u8]) -> bool {
    let p = mem.hdr(r);
    let klen = usize::from(std::ptr::addr_of!((*p).klen).read_volatile());
    if klen != key.len() {
        return false;
    }
    let stored = mem.ptr(r).add(HEADER_SIZE);
    key.iter()
        .enumerate()
        .all(|(i, &b)| stored.add(i).read_volatile() == b)
}

/// Appends `len` bytes at `offset` in the region to `out`.
fn copy_bytes(mem: Arena, offset: usize, len: usize, out: &mut Vec<u8>) -> bool {
    out.reserve(len);
    let at = out.len();
    // SAFETY: the caller checked that the bytes lie in the mapped region, and `out` has
    // room for them. They may be changing under a concurrent write; the caller drops
    // them unless the item's CAS shows they did not (the seqlock protocol; like
    // crossbeam's `AtomicCell`, this relies on a racy copy whose result is discarded
    // when torn).
    unsafe {
        std::ptr::copy_nonoverlapping(mem.ptr_at(offset), out.as_mut_ptr().add(at), len);
        out.set_len(at + len);
    }
    true
}

/// Publishes the flush state a shard has applied; called by the owner.
pub(super) fn publish_flush(applied: &Applied, generation: u64, flush_cas: u64, oldest: RelTime) {
    applied.flush_cas.store(flush_cas, Relaxed);
    applied.oldest_live.store(oldest, Relaxed);
    applied.generation.store(generation, Release);
}

#[cfg(test)]
mod tests;
