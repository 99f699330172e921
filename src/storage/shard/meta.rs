//! What memcached's meta commands need from a shard beyond the classic operations: a read
//! that hands back the live item to change in place (or an empty one it creates), stores
//! with an explicit CAS or a stale value, deletes that keep the item, and arithmetic that
//! hands back the item it wrote.
//!
//! The item state this needs lives in spare bits of the item header (stale, recache
//! token sent, key sent in base64), so it costs no memory per item. Nothing here knows
//! the meta protocol's flags or replies; the server maps them onto these calls.

use super::arith::Extra;
use super::write::{binary_mark, Attrs};
use super::{Arith, ArithOutcome, Miss, Shard, Store, StoreOptions, StoreOutcome};
use crate::storage::arena::NIL;
use crate::storage::clock::RelTime;
use crate::storage::index::Key;
use crate::storage::item::{Header, ItemView, BINARY_KEY, FETCHED, STALE, TOKEN_SENT};
use crate::storage::stats;

/// Which counter a meta read adds to, as memcached counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// A read (`get_hits`).
    Get,
    /// A read that sets a new expiry (`touch_hits`).
    Touch,
    /// A look that counts nothing (`me`).
    Peek,
}

/// An item a meta read creates when the key is absent (`mg N`): empty, flags 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vivify {
    /// Its expiry; memcached gives it 0 and lets the request's `N` set the real one.
    pub exptime: RelTime,
    /// Its CAS (`E`); `None` takes the next one.
    pub cas: Option<u64>,
    /// Whether its key came in base64.
    pub binary_key: bool,
}

/// How a meta read treats the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaGet {
    /// Which counter it adds to.
    pub read: ReadKind,
    /// Leave the item's LRU place, last access and fetched mark alone (`u`, `me`).
    pub no_bump: bool,
    /// Create the item on a miss.
    pub vivify: Option<Vivify>,
}

/// The result of a meta read.
pub enum MetaLookup<'a> {
    /// The live (or just created) item, to read and change until the shard is used again.
    Hit(MetaItem<'a>),
    /// Nothing found, and why.
    Miss(Miss),
}

/// A live item a meta command holds while it works through its flags, so that it can
/// read and change the item in the order the flags came.
///
/// The fetched mark and last access it reports are those from before this access, as
/// memcached's `h` and `l` report them.
pub struct MetaItem<'a> {
    shard: &'a mut Shard,
    r: u32,
    fetched_before: bool,
    accessed_before: RelTime,
    created: bool,
}

impl MetaItem<'_> {
    fn header(&self) -> *mut Header {
        self.shard.mem.hdr(self.r)
    }

    fn bits(&self) -> u16 {
        // SAFETY: `r` is a linked item head of the shard this handle borrows mutably, so
        // nothing else frees or moves it while the handle lives.
        debug_assert!(self.shard.chunks.holds(self.r));
        unsafe { (*self.header()).bits() }
    }

    fn change_bits(&mut self, set: u16, clear: u16) {
        // SAFETY: as in `bits`.
        debug_assert!(self.shard.chunks.holds(self.r));
        unsafe {
            let h = &*self.header();
            h.clear_bits(clear);
            h.or_bits(set);
        }
    }

    /// A view of the item: key, value, flags, CAS, sizes.
    pub fn view(&self) -> ItemView<'_> {
        // SAFETY: as in `bits`; the view borrows the handle, so no change can happen
        // while it lives.
        debug_assert!(self.shard.chunks.holds(self.r));
        unsafe { self.shard.view(self.r, self.fetched_before) }
    }

    /// Whether this request created the item (`N` on a miss).
    pub fn created(&self) -> bool {
        self.created
    }

    /// When the item expires; 0 never.
    pub fn exptime(&self) -> RelTime {
        // SAFETY: as in `bits`.
        debug_assert!(self.shard.chunks.holds(self.r));
        unsafe { (*self.header()).exptime() }
    }

    /// Sets when the item expires (`T`, `N`).
    pub fn set_exptime(&mut self, exptime: RelTime) {
        // SAFETY: as in `bits`.
        debug_assert!(self.shard.chunks.holds(self.r));
        unsafe { (*self.header()).set_exptime(exptime) };
    }

    /// Seconds left to live, `None` when the item never expires.
    pub fn ttl(&self) -> Option<u32> {
        match self.exptime() {
            0 => None,
            exptime => Some(exptime.saturating_sub(self.shard.now)),
        }
    }

    /// Whether the item is marked stale (`X`).
    pub fn stale(&self) -> bool {
        self.bits() & STALE != 0
    }

    /// Whether a reader was already told to recache the item (`Z`).
    pub fn token_sent(&self) -> bool {
        self.bits() & TOKEN_SENT != 0
    }

    /// Notes that this reader is told to recache the item (`W`).
    pub fn mark_token_sent(&mut self) {
        self.change_bits(TOKEN_SENT, 0);
    }

    /// Whether the item had been read before this access (`h`).
    pub fn fetched_before(&self) -> bool {
        self.fetched_before
    }

    /// Seconds since the item was last accessed, before this access (`l`).
    pub fn idle_before(&self) -> u32 {
        self.shard.now.saturating_sub(self.accessed_before)
    }

    /// Whether the item's key was sent in base64 when it was stored.
    pub fn binary_key(&self) -> bool {
        self.bits() & BINARY_KEY != 0
    }
}

/// What a meta delete does to the item it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Remove it.
    Remove,
    /// Keep it, marked stale, with a new CAS and, when given, a new expiry (`I`, `T`).
    Invalidate {
        /// The new expiry.
        exptime: Option<RelTime>,
    },
}

/// The empty item a meta delete leaves in place of the value (`x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emptied {
    /// Its client flags.
    pub flags: u32,
    /// Its expiry.
    pub exptime: RelTime,
}

/// A meta delete (`md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaDelete {
    /// Act only if the item's CAS is this (`C`).
    pub compare: Option<u64>,
    /// Remove or invalidate.
    pub mode: DeleteMode,
    /// Replace the value by an empty one and keep the item (`x`).
    pub empty: Option<Emptied>,
    /// The CAS a kept item gets (`E`); `None` keeps the old one for `x` and takes the
    /// next one for `I`.
    pub new_cas: Option<u64>,
    /// Whether the key came in base64 (marks the empty item `x` leaves).
    pub binary_key: bool,
}

/// What a meta delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaDeleteOutcome {
    /// Removed (or, with `x`, emptied).
    Deleted,
    /// Marked stale.
    Invalidated,
    /// No live item.
    NotFound,
    /// `compare` differs from the item's CAS.
    Exists,
    /// `x` found no memory for the empty item; nothing changed.
    NoMemory,
}

/// An increment or decrement that went through, with its item.
pub struct MetaCounted<'a> {
    /// The counter after the operation.
    pub value: u64,
    /// The item holding it, to read and change (`t`, `T`, `N`).
    pub item: MetaItem<'a>,
}

impl Shard {
    /// Finds a live item (or creates one, with `vivify`) and hands it back to be read
    /// and changed; counts a hit unless `get.read` is [`ReadKind::Peek`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use corecache::storage::*;
    ///
    /// let config = SlabConfig::default();
    /// let pool = Arc::new(PagePool::new(64 << 20, config.page_size, 1)?);
    /// let clock = Arc::new(SystemClock::new());
    /// let mut shard = Shard::new(0, &config, pool, clock, Arc::new(FlushState::new()));
    ///
    /// // `mg k N30`: the first reader creates the item and wins the recache token.
    /// let key = KeyHasher::new().key(b"k");
    /// let vivify = Vivify { exptime: 0, cas: None, binary_key: false };
    /// let get = MetaGet { read: ReadKind::Get, no_bump: false, vivify: Some(vivify) };
    /// let MetaLookup::Hit(mut item) = shard.meta_get(key, get) else { panic!() };
    /// assert!(item.created() && !item.token_sent());
    /// item.mark_token_sent();
    ///
    /// let MetaLookup::Hit(item) = shard.meta_get(key, get) else { panic!() };
    /// assert!(!item.created() && item.token_sent());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn meta_get(&mut self, key: Key<'_>, get: MetaGet) -> MetaLookup<'_> {
        self.begin();
        let (r, created) = match self.find_live(key) {
            Ok(r) => (r, false),
            Err(miss) => match get.vivify.and_then(|v| self.vivify(key, v)) {
                Some(r) => (r, true),
                None => return MetaLookup::Miss(miss),
            },
        };
        // SAFETY: `r` is a live item head from the index or just linked (the invariant).
        debug_assert!(self.chunks.holds(r));
        MetaLookup::Hit(unsafe { self.held(r, get, created) })
    }

    /// Creates the empty item of `mg N`.
    fn vivify(&mut self, key: Key<'_>, vivify: Vivify) -> Option<u32> {
        let plan = self.plan(key.bytes.len(), 0, 0)?;
        let attrs = Attrs {
            cas: self.explicit_cas(vivify.cas),
            marks: binary_mark(vivify.binary_key),
            ..Attrs::plain(0, vivify.exptime)
        };
        // SAFETY: there is no old item to replace.
        debug_assert!(self.pinned == NIL);
        unsafe { self.create_item(&plan, key, attrs, 0, NIL, |_| {}) }
    }

    /// Counts and bumps live item `r` as `get` says, and hands it out.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard.
    unsafe fn held(&mut self, r: u32, get: MetaGet, created: bool) -> MetaItem<'_> {
        let h = self.mem.hdr(r);
        let (fetched_before, accessed_before) = ((*h).bits() & FETCHED != 0, (*h).atime());
        let class = self.stats.class(self.lru_class(r));
        match get.read {
            ReadKind::Get => stats::add(&class.get_hits, 1),
            ReadKind::Touch => stats::add(&class.touch_hits, 1),
            ReadKind::Peek => {}
        }
        if !get.no_bump {
            (*h).or_bits(FETCHED);
            self.bump(r);
        }
        MetaItem {
            shard: self,
            r,
            fetched_before,
            accessed_before,
            created,
        }
    }

    /// Runs a storage command with the meta protocol's options. Answers the outcome and
    /// the length of the value now stored (the combined one after an append), or of the
    /// value given when nothing was stored.
    pub fn store_meta(
        &mut self,
        store: Store<'_>,
        options: &StoreOptions,
    ) -> (StoreOutcome, usize) {
        self.begin();
        self.store_item(store, options)
    }

    /// Runs a meta delete.
    pub fn delete_meta(&mut self, key: Key<'_>, delete: MetaDelete) -> MetaDeleteOutcome {
        self.begin();
        let Ok(mut r) = self.find_live(key) else {
            return MetaDeleteOutcome::NotFound;
        };
        // SAFETY: `r` is a live item head from the index (the invariant).
        debug_assert!(self.chunks.holds(r));
        unsafe {
            if delete.compare.is_some_and(|cas| cas != self.visible_cas(r)) {
                return MetaDeleteOutcome::Exists;
            }
            if let Some(empty) = delete.empty {
                match self.empty_item(r, key, empty, &delete) {
                    Some(kept) => r = kept,
                    None => return MetaDeleteOutcome::NoMemory,
                }
            }
            match delete.mode {
                DeleteMode::Invalidate { exptime } => self.invalidate(r, exptime, delete.new_cas),
                DeleteMode::Remove => self.count_delete(r, key, delete.empty.is_none()),
            }
        }
    }

    /// Replaces live item `r` by an empty one (`md x`), keeping its CAS unless `E` gives
    /// one.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard with `key`.
    unsafe fn empty_item(
        &mut self,
        r: u32,
        key: Key<'_>,
        empty: Emptied,
        delete: &MetaDelete,
    ) -> Option<u32> {
        let plan = self.plan(key.bytes.len(), 0, empty.flags)?;
        let kept_cas = (*self.mem.hdr(r)).cas();
        let attrs = Attrs {
            cas: Some(self.explicit_cas(delete.new_cas).unwrap_or(kept_cas)),
            marks: binary_mark(delete.binary_key),
            ..Attrs::plain(empty.flags, empty.exptime)
        };
        self.create_item(&plan, key, attrs, 0, r, |_| {})
    }

    /// Marks live item `r` stale, clears its token so the next reader may win it, and
    /// gives it a new CAS and, when given, a new expiry.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard.
    unsafe fn invalidate(
        &mut self,
        r: u32,
        exptime: Option<RelTime>,
        cas: Option<u64>,
    ) -> MetaDeleteOutcome {
        let cas = match self.explicit_cas(cas) {
            Some(cas) => cas,
            None => self.take_cas(),
        };
        let h = self.mem.hdr(r);
        if let Some(exptime) = exptime {
            (*h).set_exptime(exptime);
        }
        (*h).set_bits(((*h).bits() | STALE) & !TOKEN_SENT);
        (*h).set_cas(cas);
        MetaDeleteOutcome::Invalidated
    }

    /// Counts a delete of live item `r` and, when `remove`, removes it.
    ///
    /// # Safety
    ///
    /// `r` is a live, linked item head of this shard with `key`.
    unsafe fn count_delete(&mut self, r: u32, key: Key<'_>, remove: bool) -> MetaDeleteOutcome {
        stats::add(&self.stats.class(self.lru_class(r)).delete_hits, 1);
        if remove {
            self.unlink(r, key.hash);
        }
        MetaDeleteOutcome::Deleted
    }

    /// Runs an increment or decrement and hands back the item it wrote, which gets CAS
    /// `new_cas` when given (`E`). An item created from `arith.initial` is marked as
    /// created, and with `binary_key` as having a base64 key.
    pub fn arith_meta(
        &mut self,
        key: Key<'_>,
        arith: Arith,
        new_cas: Option<u64>,
        binary_key: bool,
    ) -> Result<MetaCounted<'_>, ArithOutcome> {
        self.begin();
        let extra = Extra {
            cas: new_cas,
            marks: binary_mark(binary_key),
        };
        let done = self.count(key, arith, extra)?;
        // SAFETY: `done.r` is the item just written, linked in the index.
        debug_assert!(self.chunks.holds(done.r));
        let h = self.mem.hdr(done.r);
        let (fetched_before, accessed_before) =
            unsafe { ((*h).bits() & FETCHED != 0, (*h).atime()) };
        Ok(MetaCounted {
            value: done.value,
            item: MetaItem {
                shard: self,
                r: done.r,
                fetched_before,
                accessed_before,
                created: done.created,
            },
        })
    }
}
