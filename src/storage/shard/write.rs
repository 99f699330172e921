//! Storage commands: sizing an item, allocating its chunks, writing it, and swapping it
//! in for the old one, under each mode's precondition.
//!
//! An item is written completely before it is linked, and an old item it replaces is
//! pinned while the new one is allocated, so making room can never evict it.

use super::{Shard, Store, StoreMode, StoreOutcome};
use crate::storage::arena::NIL;
use crate::storage::clock::RelTime;
use crate::storage::index::Key;
use crate::storage::item::{
    accounted_size, ValueWriter, CHAINED, CHAIN_HEADER, HEADER_SIZE, KEY_MAX, KIND_CHAIN,
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

/// The client-visible attributes a new item gets.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    pub(super) flags: u32,
    pub(super) exptime: RelTime,
}

impl Shard {
    /// Runs a storage command (after [`Shard::begin`]).
    pub(super) fn store_item(&mut self, store: Store<'_>) -> StoreOutcome {
        let Some(plan) = self.plan(store.key.bytes.len(), store.value.len(), store.flags) else {
            if store.mode == StoreMode::Set {
                self.remove_key(store.key);
            }
            return StoreOutcome::TooLarge;
        };
        stats::add(&self.stats.class(plan.lru_class).cmd_set, 1);
        match store.mode {
            StoreMode::Set => self.set(store, &plan),
            StoreMode::Add => self.add(store, &plan),
            StoreMode::Replace => self.replace(store, &plan),
            StoreMode::Append | StoreMode::Prepend => self.concat(store),
            StoreMode::Cas(cas) => self.compare_and_set(store, &plan, cas),
        }
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

    fn set(&mut self, store: Store<'_>, plan: &Plan) -> StoreOutcome {
        if let Ok(old) = self.find_live(store.key) {
            // SAFETY: `old` is a live item head from the index (the invariant).
            debug_assert!(self.chunks.holds(old));
            unsafe { self.unlink(old, store.key.hash) };
        }
        self.put(store, plan, NIL)
    }

    fn add(&mut self, store: Store<'_>, plan: &Plan) -> StoreOutcome {
        match self.find_live(store.key) {
            Ok(old) => {
                // SAFETY: `old` is a live item head from the index (the invariant).
                debug_assert!(self.chunks.holds(old));
                unsafe { self.bump(old) };
                StoreOutcome::NotStored
            }
            Err(_) => self.put(store, plan, NIL),
        }
    }

    fn replace(&mut self, store: Store<'_>, plan: &Plan) -> StoreOutcome {
        match self.find_live(store.key) {
            Ok(old) => self.put(store, plan, old),
            Err(_) => StoreOutcome::NotStored,
        }
    }

    /// `cas`: memcached treats a CAS of 0 as "none given", which never matches, so with
    /// CAS disabled (every item reads 0) every `cas` on a present key answers `Exists`.
    fn compare_and_set(&mut self, store: Store<'_>, plan: &Plan, cas: u64) -> StoreOutcome {
        let Ok(old) = self.find_live(store.key) else {
            return StoreOutcome::NotFound;
        };
        // SAFETY: `old` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(old));
        let (matches, class) = unsafe {
            (
                cas != 0 && self.visible_cas(old) == cas,
                self.lru_class(old),
            )
        };
        let class = self.stats.class(class);
        if !matches {
            stats::add(&class.cas_badval, 1);
            return StoreOutcome::Exists;
        }
        stats::add(&class.cas_hits, 1);
        self.put(store, plan, old)
    }

    /// Append or prepend: a new item holding both values, with the old flags and expiry.
    fn concat(&mut self, store: Store<'_>) -> StoreOutcome {
        let Ok(old) = self.find_live(store.key) else {
            return StoreOutcome::NotStored;
        };
        // SAFETY: `old` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(old));
        let (meta, old_len) = unsafe { self.meta_of(old) };
        let total = old_len + store.value.len();
        let Some(plan) = self.plan(store.key.bytes.len(), total, meta.flags) else {
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
        // SAFETY: `old` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(old));
        let created = unsafe { self.create(&plan, store.key, meta, total, old, fill) };
        created.map_or(StoreOutcome::NotStored, |cas| StoreOutcome::Stored { cas })
    }

    /// Item `r`'s flags and expiry, and its value's length.
    ///
    /// # Safety
    ///
    /// `r` is a written item head of this shard.
    pub(super) unsafe fn meta_of(&self, r: u32) -> (Meta, usize) {
        let h = self.mem.hdr(r);
        let meta = Meta {
            flags: (*h).flags,
            exptime: (*h).exptime,
        };
        (meta, (*h).vlen as usize)
    }

    /// Stores `store`'s value as a new item that replaces `old` (or [`NIL`]).
    fn put(&mut self, store: Store<'_>, plan: &Plan, old: u32) -> StoreOutcome {
        let meta = Meta {
            flags: store.flags,
            exptime: store.exptime,
        };
        let len = store.value.len();
        // SAFETY: `old` is NIL or a live item head from the index (the invariant).
        debug_assert!(old == NIL || self.chunks.holds(old));
        let created =
            unsafe { self.create(plan, store.key, meta, len, old, |w| w.write(store.value)) };
        created.map_or(StoreOutcome::NoMemory, |cas| StoreOutcome::Stored { cas })
    }

    /// Allocates an item for `plan` while `old` is pinned, writes its header and key,
    /// lets `fill` write `vlen` bytes of value, then links it in place of `old`.
    /// Returns the CAS clients see, or `None` when no memory could be found.
    ///
    /// # Safety
    ///
    /// `old` is [`NIL`] or a linked item head of this shard with `key`.
    pub(super) unsafe fn create(
        &mut self,
        plan: &Plan,
        key: Key<'_>,
        meta: Meta,
        vlen: usize,
        old: u32,
        fill: impl FnOnce(&mut ValueWriter),
    ) -> Option<u64> {
        self.pinned = old;
        let r = self.alloc_item(plan, key.bytes.len(), vlen);
        self.pinned = NIL;
        let r = r?;
        let cas = self.init(r, key.bytes, meta);
        fill(&mut ValueWriter::new(self.mem, r, self.limits.chain_cap));
        if old != NIL {
            self.unlink(old, key.hash);
        }
        self.link(r, key.hash);
        Some(self.visible(cas))
    }

    /// The chunks of a new item: head first, then its chain, all or nothing.
    unsafe fn alloc_item(&mut self, plan: &Plan, klen: usize, vlen: usize) -> Option<u32> {
        let r = self.alloc_chunk(plan.head_class)?;
        let h = self.mem.hdr(r);
        (*h).klen = klen as u8;
        (*h).vlen = vlen as u32;
        if plan.chain > 0 {
            (*h).bits |= CHAINED;
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
            (*self.mem.hdr(c)).link = r;
            (*self.mem.hdr(c)).bits = KIND_CHAIN;
            self.chain_ref(r, i).write_unaligned(c);
        }
        Some(r)
    }

    /// Writes the header (all but the sizes and bits `alloc_item` set) and the key.
    unsafe fn init(&mut self, r: u32, key: &[u8], meta: Meta) -> u64 {
        let cas = self.take_cas();
        let h = self.mem.hdr(r);
        (*h).link = NIL;
        (*h).prev = NIL;
        (*h).next = NIL;
        (*h).exptime = meta.exptime;
        (*h).atime = self.now;
        (*h).flags = meta.flags;
        (*h).cas = cas;
        let dst = self.mem.ptr(r).add(HEADER_SIZE);
        std::ptr::copy_nonoverlapping(key.as_ptr(), dst, key.len());
        cas
    }
}
