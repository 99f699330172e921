//! Storage commands: sizing an item, allocating its chunks, writing it, and swapping it
//! in for the old one, under each mode's precondition.
//!
//! An item is written completely before it is linked, and an old item it replaces is
//! pinned while the new one is allocated, so making room can never evict it.

use super::{OlderCas, Shard, Store, StoreMode, StoreOptions, StoreOutcome};
use crate::storage::arena::NIL;
use crate::storage::clock::RelTime;
use crate::storage::index::Key;
use crate::storage::item::{
    accounted_size, ValueWriter, BINARY_KEY, CHAINED, CHAIN_HEADER, HEADER_SIZE, KEY_MAX,
    KIND_CHAIN, STALE, TOKEN_SENT,
};
use crate::storage::stats;

/// Where an item of a given size goes: its head's class and its chain, if any.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    head_class: u8,
    chain: usize,
    last_class: u8,
    lru_class: u8,
}

impl Plan {
    /// An item that fits in one chunk of `class`.
    fn single(class: u8) -> Plan {
        Plan {
            head_class: class,
            chain: 0,
            last_class: 0,
            lru_class: class,
        }
    }
}

/// The attributes a new item gets.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attrs {
    pub(super) flags: u32,
    pub(super) exptime: RelTime,
    /// The CAS to give it (meta `E`); `None` takes the next one.
    pub(super) cas: Option<u64>,
    /// Item bits to set: [`STALE`], [`TOKEN_SENT`], [`BINARY_KEY`].
    pub(super) marks: u16,
}

impl Attrs {
    /// Flags and expiry, with the next CAS and no marks.
    pub(super) fn plain(flags: u32, exptime: RelTime) -> Attrs {
        Attrs {
            flags,
            exptime,
            cas: None,
            marks: 0,
        }
    }
}

impl Shard {
    /// Runs a storage command (after [`Shard::begin`]). Answers the outcome and the
    /// length of the value stored (the combined one after an append), or of the value
    /// given when nothing was stored.
    pub(super) fn store_item(
        &mut self,
        store: Store<'_>,
        options: &StoreOptions,
    ) -> (StoreOutcome, usize) {
        let len = store.value.len();
        let Some(plan) = self.plan(store.key.bytes.len(), len, store.flags) else {
            if store.mode == StoreMode::Set {
                self.remove_key(store.key);
            }
            return (StoreOutcome::TooLarge, len);
        };
        stats::add(&self.stats.class(plan.lru_class).cmd_set, 1);
        let attrs = self.attrs_of(&store, options);
        let outcome = match store.mode {
            StoreMode::Set => self.set(store, &plan, attrs),
            StoreMode::Add => self.add(store, &plan, attrs),
            StoreMode::Replace => self.replace(store, &plan, attrs),
            StoreMode::Append | StoreMode::Prepend => {
                return self.concat(store, &plan, attrs, options);
            }
            StoreMode::Cas(cas) => self.compare_and_set(store, &plan, attrs, (cas, options.older)),
        };
        (outcome, len)
    }

    /// What the item a store creates gets from the request.
    fn attrs_of(&self, store: &Store<'_>, options: &StoreOptions) -> Attrs {
        Attrs {
            flags: store.flags,
            exptime: store.exptime,
            cas: self.explicit_cas(options.new_cas),
            marks: binary_mark(options.binary_key),
        }
    }

    /// A CAS the client chose, kept only while clients see CAS values: with `-C` every
    /// item reads 0, and the internal CAS that `flush_all` relies on stays the shard's.
    pub(super) fn explicit_cas(&self, cas: Option<u64>) -> Option<u64> {
        cas.filter(|_| self.limits.cas_enabled)
    }

    /// Where an item with this key and value length (and flags, which memcached counts
    /// in the size) goes, or `None` if it is too large.
    ///
    /// Known limit: besides `-I`, a chained item's head must hold a 4-byte ref per
    /// chain chunk, so values are limited to about `(chunk_max - 290) / 4` chunks of
    /// `chunk_max - 8` bytes (68 GB with 512 KiB chunks, 65 MB with 16 KiB ones).
    pub(super) fn plan(&self, klen: usize, vlen: usize, flags: u32) -> Option<Plan> {
        let size = accounted_size(klen, vlen, flags, self.limits.cas_enabled);
        let too_large = size > self.limits.item_size_max;
        if klen > KEY_MAX || too_large || u32::try_from(vlen).is_err() {
            return None;
        }
        let classes = self.chunks.classes();
        if let Some(class) = classes.class_for(HEADER_SIZE + klen + vlen) {
            return Some(Plan::single(class));
        }
        let cap = self.limits.chain_cap;
        let chain = vlen.div_ceil(cap);
        let last = vlen - (chain - 1) * cap;
        Some(Plan {
            head_class: classes.class_for(HEADER_SIZE + klen + 4 * chain)?,
            chain,
            last_class: classes.class_for(CHAIN_HEADER + last)?,
            lru_class: self.limits.largest,
        })
    }

    fn set(&mut self, store: Store<'_>, plan: &Plan, attrs: Attrs) -> StoreOutcome {
        if let Ok(old) = self.find_live(store.key) {
            // SAFETY: `old` is a live item head from the index (the invariant).
            debug_assert!(self.chunks.holds(old));
            unsafe { self.unlink(old, store.key.hash) };
        }
        self.put(store, plan, NIL, attrs)
    }

    fn add(&mut self, store: Store<'_>, plan: &Plan, attrs: Attrs) -> StoreOutcome {
        match self.find_live(store.key) {
            Ok(old) => {
                // SAFETY: `old` is a live item head from the index (the invariant).
                debug_assert!(self.chunks.holds(old));
                unsafe { self.bump(old) };
                StoreOutcome::NotStored
            }
            Err(_) => self.put(store, plan, NIL, attrs),
        }
    }

    fn replace(&mut self, store: Store<'_>, plan: &Plan, attrs: Attrs) -> StoreOutcome {
        match self.find_live(store.key) {
            Ok(old) => self.put(store, plan, old, attrs),
            Err(_) => StoreOutcome::NotStored,
        }
    }

    /// `cas`: memcached treats a CAS of 0 as "none given", which never matches, so with
    /// CAS disabled (every item reads 0) every `cas` on a present key answers `Exists`.
    /// With [`OlderCas::MarkStale`] a CAS older than the item's stores anyway, as a stale
    /// value that keeps the old expiry and any recache token already handed out.
    fn compare_and_set(
        &mut self,
        store: Store<'_>,
        plan: &Plan,
        mut attrs: Attrs,
        (cas, older): (u64, OlderCas),
    ) -> StoreOutcome {
        let Ok(old) = self.find_live(store.key) else {
            return StoreOutcome::NotFound;
        };
        // SAFETY: `old` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(old));
        let (current, class) = unsafe { (self.visible_cas(old), self.lru_class(old)) };
        let class = self.stats.class(class);
        let stale = older == OlderCas::MarkStale && cas != 0 && cas < current;
        if !(cas != 0 && cas == current || stale) {
            stats::add(&class.cas_badval, 1);
            return StoreOutcome::Exists;
        }
        stats::add(&class.cas_hits, 1);
        if stale {
            // SAFETY: as above.
            attrs = unsafe { self.stale_attrs(old, attrs) };
        }
        self.put(store, plan, old, attrs)
    }

    /// `attrs` for a stale value replacing item `old`: its expiry, the stale mark, and
    /// its token mark.
    ///
    /// # Safety
    ///
    /// `old` is a written item head of this shard.
    unsafe fn stale_attrs(&self, old: u32, attrs: Attrs) -> Attrs {
        let h = self.mem.hdr(old);
        Attrs {
            exptime: (*h).exptime(),
            marks: attrs.marks | STALE | ((*h).bits() & TOKEN_SENT),
            ..attrs
        }
    }

    /// Append or prepend: a new item holding both values, with the old flags and expiry.
    /// A non-zero `compare` must match the item's CAS (memcached's simplified check for
    /// these modes, which it skips with CAS disabled); with `vivify`, a miss stores the
    /// value alone, with that expiry.
    fn concat(
        &mut self,
        store: Store<'_>,
        plan: &Plan,
        attrs: Attrs,
        options: &StoreOptions,
    ) -> (StoreOutcome, usize) {
        let len = store.value.len();
        let Ok(old) = self.find_live(store.key) else {
            let Some(exptime) = options.vivify else {
                return (StoreOutcome::NotStored, len);
            };
            let attrs = Attrs { exptime, ..attrs };
            return (self.put(store, plan, NIL, attrs), len);
        };
        // SAFETY: `old` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(old));
        let compare = options.compare != 0 && self.limits.cas_enabled;
        if compare && options.compare != unsafe { self.visible_cas(old) } {
            return (StoreOutcome::Exists, len);
        }
        // SAFETY: as above.
        let (old_attrs, old_len) = unsafe { self.attrs_at(old) };
        let total = old_len + len;
        // SAFETY: as above.
        let outcome = unsafe { self.join(store, old, old_attrs.joined(attrs), total) };
        let stored = matches!(outcome, StoreOutcome::Stored { .. });
        (outcome, if stored { total } else { len })
    }

    /// Writes the new item of an append or prepend to item `old`, `total` bytes long.
    ///
    /// # Safety
    ///
    /// `old` is a live item head from the index, with `store`'s key.
    unsafe fn join(
        &mut self,
        store: Store<'_>,
        old: u32,
        attrs: Attrs,
        total: usize,
    ) -> StoreOutcome {
        let Some(plan) = self.plan(store.key.bytes.len(), total, attrs.flags) else {
            return StoreOutcome::NotStored;
        };
        let (mem, cap, prepend) = (
            self.mem,
            self.limits.chain_cap,
            store.mode == StoreMode::Prepend,
        );
        let fill = |w: &mut ValueWriter| {
            if prepend {
                w.write(store.value);
            }
            // SAFETY: `create` keeps `old` pinned, linked and unchanged until it has
            // filled the new item.
            debug_assert!(old != NIL);
            unsafe { w.copy_item(mem, old, cap) };
            if !prepend {
                w.write(store.value);
            }
        };
        debug_assert!(self.chunks.holds(old));
        let created = self.create(&plan, store.key, attrs, total, old, fill);
        created.map_or(StoreOutcome::NotStored, |cas| StoreOutcome::Stored { cas })
    }

    /// Item `r`'s flags, expiry and base64 mark, and its value's length.
    ///
    /// # Safety
    ///
    /// `r` is a written item head of this shard.
    pub(super) unsafe fn attrs_at(&self, r: u32) -> (Attrs, usize) {
        let h = self.mem.hdr(r);
        let attrs = Attrs {
            marks: (*h).bits() & BINARY_KEY,
            ..Attrs::plain((*h).flags, (*h).exptime())
        };
        (attrs, (*h).vlen as usize)
    }

    /// Stores `store`'s value as a new item that replaces `old` (or [`NIL`]).
    fn put(&mut self, store: Store<'_>, plan: &Plan, old: u32, attrs: Attrs) -> StoreOutcome {
        let len = store.value.len();
        // SAFETY: `old` is NIL or a live item head from the index (the invariant).
        debug_assert!(old == NIL || self.chunks.holds(old));
        let created =
            unsafe { self.create(plan, store.key, attrs, len, old, |w| w.write(store.value)) };
        created.map_or(StoreOutcome::NoMemory, |cas| StoreOutcome::Stored { cas })
    }

    /// [`create_item`](Shard::create_item), answering the CAS clients see.
    ///
    /// # Safety
    ///
    /// As for `create_item`.
    pub(super) unsafe fn create(
        &mut self,
        plan: &Plan,
        key: Key<'_>,
        attrs: Attrs,
        vlen: usize,
        old: u32,
        fill: impl FnOnce(&mut ValueWriter),
    ) -> Option<u64> {
        let r = self.create_item(plan, key, attrs, vlen, old, fill)?;
        Some(self.visible_cas(r))
    }

    /// Allocates an item for `plan` while `old` is pinned, writes its header and key,
    /// lets `fill` write `vlen` bytes of value, then links it in place of `old`.
    /// Returns the new item, or `None` when no memory could be found.
    ///
    /// # Safety
    ///
    /// `old` is [`NIL`] or a linked item head of this shard with `key`.
    pub(super) unsafe fn create_item(
        &mut self,
        plan: &Plan,
        key: Key<'_>,
        attrs: Attrs,
        vlen: usize,
        old: u32,
        fill: impl FnOnce(&mut ValueWriter),
    ) -> Option<u32> {
        self.pinned = old;
        let r = self.alloc_item(plan, key.bytes.len(), vlen);
        self.pinned = NIL;
        let r = r?;
        let cas = self.init(r, key.bytes, attrs);
        fill(&mut ValueWriter::new(self.mem, r, self.limits.chain_cap));
        if old != NIL {
            self.unlink(old, key.hash);
        }
        // Publishing the CAS last tells readers on other workers the item is complete.
        (*self.mem.hdr(r)).set_cas(cas);
        self.link(r, key.hash);
        Some(r)
    }

    /// The chunks of a new item: head first, then its chain, all or nothing.
    unsafe fn alloc_item(&mut self, plan: &Plan, klen: usize, vlen: usize) -> Option<u32> {
        let r = self.alloc_chunk(plan.head_class)?;
        let h = self.mem.hdr(r);
        (*h).klen = klen as u8;
        (*h).vlen = vlen as u32;
        if plan.chain > 0 {
            (*h).or_bits(CHAINED);
        }
        for i in 0..plan.chain {
            let class = if i + 1 == plan.chain {
                plan.last_class
            } else {
                self.limits.largest
            };
            let Some(c) = self.alloc_chunk(class) else {
                self.free_chunks(r, i);
                return None;
            };
            (*self.mem.hdr(c)).set_link(r);
            (*self.mem.hdr(c)).set_bits(KIND_CHAIN);
            self.chain_ref(r, i).write_unaligned(c);
        }
        Some(r)
    }

    /// Writes the header (all but the sizes and bits `alloc_item` set, and the CAS, which
    /// it returns: the caller publishes it once the value is written) and the key.
    unsafe fn init(&mut self, r: u32, key: &[u8], attrs: Attrs) -> u64 {
        let cas = match attrs.cas {
            Some(cas) => cas,
            None => self.take_cas(),
        };
        let h = self.mem.hdr(r);
        (*h).set_link(NIL);
        (*h).prev = NIL;
        (*h).next = NIL;
        (*h).set_exptime(attrs.exptime);
        (*h).set_atime(self.now);
        (*h).flags = attrs.flags;
        debug_assert_eq!((*h).cas(), 0, "a chunk being written is not live");
        (*h).or_bits(attrs.marks);
        let dst = self.mem.ptr(r).add(HEADER_SIZE);
        std::ptr::copy_nonoverlapping(key.as_ptr(), dst, key.len());
        cas
    }
}

impl Attrs {
    /// The attributes of an append or prepend to an item with these: its flags and
    /// expiry, the request's CAS, and both marks.
    fn joined(self, request: Attrs) -> Attrs {
        Attrs {
            cas: request.cas,
            marks: self.marks | request.marks,
            ..self
        }
    }
}

/// The mark of an item whose key came in base64.
pub(super) fn binary_mark(binary_key: bool) -> u16 {
    if binary_key {
        BINARY_KEY
    } else {
        0
    }
}
