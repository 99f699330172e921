//! Memory: the global [`PagePool`] that holds the `-m` budget, and the [`SlabClasses`]
//! that cut its pages into chunks.
//!
//! The pool reserves one contiguous virtual region, so that a `u32` ref can name any
//! chunk, and hands whole pages to shards without locks. The physical memory behind a
//! page is used only once a shard touches it. What a shard does inside a page (carving,
//! free lists, moving pages between classes) lives in the shard's chunk allocator.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crossbeam::queue::SegQueue;

use super::arena::Arena;
use super::item::HEADER_SIZE;

/// At most this many slab classes (ids 1 to 63), as in memcached.
pub const MAX_CLASSES: usize = 63;

/// The smallest reservation: refs of 8-byte units reach 32 GiB.
const MIN_RESERVATION: usize = 32 << 30;

/// Tunables of the slab allocator, taken from the command line by the config layer.
#[derive(Clone, Debug)]
pub struct SlabConfig {
    /// Bytes per page: the unit shards take from the pool and move between classes.
    pub page_size: usize,
    /// Smallest key plus value space of the first class (memcached `-n`).
    pub min_size: usize,
    /// Each class's chunk size over the previous one's (memcached `-f`).
    pub growth_factor: f64,
    /// The largest chunk (`slab_chunk_max`); bigger items become chains.
    pub chunk_max: usize,
    /// The largest item accepted (`-I`), as measured by
    /// [`accounted_size`](super::item::accounted_size).
    pub item_size_max: usize,
    /// Whether live items may be evicted to make room (false with `-M`).
    pub evictions: bool,
    /// Whether clients see CAS values (false with `-C`); they are tracked regardless.
    pub cas_enabled: bool,
    /// The index starts with 2^hashpower buckets (memcached `-o hashpower`).
    pub hashpower: u8,
}

impl Default for SlabConfig {
    fn default() -> SlabConfig {
        SlabConfig {
            page_size: 1 << 20,
            min_size: 48,
            growth_factor: 1.25,
            chunk_max: 1 << 19,
            item_size_max: 1 << 20,
            evictions: true,
            cas_enabled: true,
            hashpower: 16,
        }
    }
}

/// The chunk sizes of the slab classes, ids 1 to [`len`](SlabClasses::len) as memcached's
/// `stats slabs` numbers them.
#[derive(Clone, Debug)]
pub struct SlabClasses {
    sizes: Vec<usize>,
    page_size: usize,
}

impl SlabClasses {
    /// Classes from `HEADER_SIZE + min_size` growing by `growth_factor`, 8-byte aligned,
    /// the last one exactly `chunk_max`.
    ///
    /// `chunk_max` is clamped to the page size and rounded down to the alignment; a
    /// growth factor of 1 or less still grows each class by one alignment step.
    pub fn new(config: &SlabConfig) -> SlabClasses {
        SlabClasses::with_align(config, 8)
    }

    /// As [`new`](SlabClasses::new), with chunks aligned to `align` bytes: the pool's
    /// alignment, which is above 8 only for reservations over 32 GiB.
    pub fn with_align(config: &SlabConfig, align: usize) -> SlabClasses {
        let top = align_down(config.chunk_max.min(config.page_size), align);
        let top = top.max(align_up(HEADER_SIZE + 8, align));
        let factor = config.growth_factor.max(1.0);
        let mut sizes = vec![0];
        let mut size = align_up(HEADER_SIZE + config.min_size, align);
        while sizes.len() < MAX_CLASSES && (size as f64) < top as f64 / factor {
            sizes.push(size);
            size = align_up(((size as f64 * factor) as usize).max(size + align), align);
        }
        sizes.push(top);
        SlabClasses {
            sizes,
            page_size: config.page_size,
        }
    }

    /// The number of classes; ids run from 1 to this.
    pub fn len(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Never true: there is always at least the `chunk_max` class.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the largest class, whose chunks hold chained values.
    pub fn largest(&self) -> u8 {
        self.len() as u8
    }

    /// Bytes per chunk of class `id`.
    ///
    /// # Panics
    ///
    /// If `id` is not a class id (1 to [`len`](SlabClasses::len)); 0 reads as 0.
    pub fn chunk_size(&self, id: u8) -> usize {
        self.sizes[usize::from(id)]
    }

    /// Chunks per page of class `id`.
    ///
    /// # Panics
    ///
    /// If `id` is 0 or not a class id.
    pub fn chunks_per_page(&self, id: u8) -> usize {
        self.page_size / self.chunk_size(id)
    }

    /// The smallest class whose chunks hold `total_size` bytes, or `None` when it is
    /// bigger than the largest chunk (a chain is then needed).
    pub fn class_for(&self, total_size: usize) -> Option<u8> {
        let id = self.sizes[1..].partition_point(|&s| s < total_size) + 1;
        (id < self.sizes.len()).then_some(id as u8)
    }
}

fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

fn align_down(n: usize, align: usize) -> usize {
    n / align * align
}

/// The `-m` budget: pages of one reserved region that shards take and give back
/// without locks.
///
/// Each shard may hold at most its quota, `limit_pages / shards` (the remainder spread
/// over the first shards), so that shards never starve each other. Known limit: after a
/// limit decrease, a shard above its new quota gives pages back as it frees them, so
/// until then the pages handed out can exceed the new limit.
#[derive(Debug)]
pub struct PagePool {
    region: Mapping,
    page_size: usize,
    shift: u32,
    shards: usize,
    limit: AtomicUsize,
    limit_pages: AtomicU32,
    bumped: AtomicU32,
    out: AtomicU32,
    free: SegQueue<u32>,
}

// SAFETY: the pool only hands out page numbers and never reads or writes page memory;
// the region's address is used only to build arenas, to discard returned pages and to
// unmap the region when the last holder drops the pool.
unsafe impl Send for PagePool {}
// SAFETY: as for `Send`; all shared state is atomic or the lock-free queue.
unsafe impl Sync for PagePool {}

impl PagePool {
    /// A pool of `limit_bytes` in pages of `page_size` bytes for `shards` shards.
    ///
    /// It reserves `max(limit, 32 GiB)` of address space (or exactly the limit if that
    /// fails) without committing memory, so the limit can later grow to the reservation.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when there are no shards, the page size is not a multiple of the
    /// alignment, or the limit gives a shard fewer than 2 pages (the message says how
    /// much memory is needed); the OS error when the region cannot be mapped.
    pub fn new(limit_bytes: usize, page_size: usize, shards: usize) -> io::Result<PagePool> {
        check_shape(limit_bytes, page_size, shards)?;
        let region = reserve(limit_bytes, page_size)?;
        let shift = shift_for(region.len);
        if page_size % (1 << shift) != 0 {
            let align = 1 << shift;
            return Err(invalid(format!(
                "page size {page_size} is not a multiple of {align}"
            )));
        }
        let pool = PagePool {
            region,
            page_size,
            shift,
            shards,
            limit: AtomicUsize::new(0),
            limit_pages: AtomicU32::new(0),
            bumped: AtomicU32::new(0),
            out: AtomicU32::new(0),
            free: SegQueue::new(),
        };
        if !pool.set_limit(limit_bytes) {
            let reserved = pool.reserved();
            return Err(invalid(format!(
                "{limit_bytes} bytes exceed the {reserved}-byte region"
            )));
        }
        Ok(pool)
    }

    /// The memory limit in bytes (`limit_maxbytes`).
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Changes the memory limit (`cache_memlimit`). Returns false, changing nothing,
    /// when `bytes` is more than the reserved region (see [`reserved`](Self::reserved))
    /// or leaves a shard fewer than 2 pages.
    ///
    /// A lower limit takes effect as shards free pages: see the type's documentation.
    pub fn set_limit(&self, bytes: usize) -> bool {
        if bytes > self.region.len || check_shape(bytes, self.page_size, self.shards).is_err() {
            return false;
        }
        self.limit.store(bytes, Ordering::Relaxed);
        let pages = (bytes / self.page_size) as u32;
        self.limit_pages.store(pages, Ordering::Relaxed);
        true
    }

    /// Bytes of pages handed out to shards (memcached's `total_malloced`).
    pub fn malloced(&self) -> usize {
        self.out.load(Ordering::Relaxed) as usize * self.page_size
    }

    /// Bytes per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Bytes of address space reserved: the most the limit can be raised to.
    pub fn reserved(&self) -> usize {
        self.region.len
    }

    /// The number of shards sharing the pool.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The region as shards address it.
    pub(super) fn arena(&self) -> Arena {
        Arena::new(
            self.region.base.as_ptr(),
            self.region.len,
            self.shift,
            self.page_size,
        )
    }

    /// The most pages shard `shard` may hold under the current limit.
    pub(super) fn quota(&self, shard: usize) -> u32 {
        let limit = self.limit_pages.load(Ordering::Relaxed);
        let n = self.shards as u32;
        limit / n + u32::from((shard as u32) < limit % n)
    }

    /// A page for shard `shard`, which holds `held` pages, if it is under its quota.
    pub(super) fn take(&self, shard: usize, held: u32) -> Option<u32> {
        if held >= self.quota(shard) {
            return None;
        }
        let page = self.free.pop().or_else(|| self.bump())?;
        self.out.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    fn bump(&self) -> Option<u32> {
        let total = (self.region.len / self.page_size) as u32;
        let next = |b: u32| (b < total).then_some(b + 1);
        match self
            .bumped
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, next)
        {
            Ok(page) => Some(page),
            Err(_) => self.free.pop(),
        }
    }

    /// Takes back a page a shard no longer holds, and returns its physical memory.
    pub(super) fn give(&self, page: u32) {
        let start = self.arena().ptr(self.arena().page_start(page));
        // SAFETY: the page lies inside the mapping and no shard holds it any more, so
        // discarding its contents (it reads back as zeroes) affects nobody.
        debug_assert!((page as usize + 1) * self.page_size <= self.region.len);
        unsafe { libc::madvise(start.cast(), self.page_size, libc::MADV_DONTNEED) };
        self.out.fetch_sub(1, Ordering::Relaxed);
        self.free.push(page);
    }
}

fn check_shape(limit: usize, page_size: usize, shards: usize) -> io::Result<()> {
    if shards == 0 || page_size < 1024 {
        let shape = format!("{shards} shards of {page_size}-byte pages");
        return Err(invalid(format!(
            "need at least one shard and 1 KiB pages: {shape}"
        )));
    }
    if limit / page_size / shards < 2 {
        let needed = 2 * page_size * shards;
        let mib = needed.div_ceil(1 << 20);
        return Err(invalid(format!(
            "memory limit of {limit} bytes is too small: {shards} shards need 2 pages of \
             {page_size} bytes each, at least {needed} bytes ({mib} MiB) in all"
        )));
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Maps `max(limit, 32 GiB)` bytes, or just the limit (in whole pages) if that fails.
fn reserve(limit: usize, page_size: usize) -> io::Result<Mapping> {
    let wanted = align_up(limit.max(MIN_RESERVATION), page_size);
    map(wanted).or_else(|_| map(align_up(limit, page_size)))
}

/// A mapped region, unmapped when dropped.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

fn map(len: usize) -> io::Result<Mapping> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: an anonymous mapping at an address of the kernel's choosing aliases nothing.
    debug_assert!(len > 0);
    let ptr = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?;
    Ok(Mapping { base, len })
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `map` mapped exactly this range; the pool owning the mapping is being
        // dropped, and every shard holds an `Arc` of it, so none is left to use it.
        debug_assert!(self.len > 0);
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The smallest shift of at least 3 for which every chunk start in `reserved` bytes
/// has a ref below `u32::MAX`.
fn shift_for(reserved: usize) -> u32 {
    let last = reserved.saturating_sub(HEADER_SIZE) as u64;
    (3..)
        .find(|&s| (last >> s) < u64::from(u32::MAX))
        .unwrap_or(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classes_grow_by_factor_and_end_at_chunk_max() {
        let classes = SlabClasses::new(&SlabConfig::default());
        assert_eq!(classes.chunk_size(1), 88);
        assert_eq!(classes.chunk_size(2), 112);
        assert_eq!(classes.chunk_size(classes.largest()), 1 << 19);
        assert!(classes.len() <= MAX_CLASSES);
        for id in 2..=classes.largest() {
            assert!(classes.chunk_size(id) > classes.chunk_size(id - 1));
            assert_eq!(classes.chunk_size(id) % 8, 0);
        }
        assert_eq!(classes.chunks_per_page(1), (1 << 20) / 88);
    }

    #[test]
    fn class_for_picks_the_smallest_fit() {
        let classes = SlabClasses::new(&SlabConfig::default());
        assert_eq!(classes.class_for(1), Some(1));
        assert_eq!(classes.class_for(88), Some(1));
        assert_eq!(classes.class_for(89), Some(2));
        assert_eq!(classes.class_for(1 << 19), Some(classes.largest()));
        assert_eq!(classes.class_for((1 << 19) + 1), None);
    }

    #[test]
    fn tiny_factor_is_capped_at_63_classes() {
        let config = SlabConfig {
            growth_factor: 1.01,
            ..SlabConfig::default()
        };
        let classes = SlabClasses::new(&config);
        assert_eq!(classes.len(), MAX_CLASSES);
        assert_eq!(classes.chunk_size(63), 1 << 19);
    }

    #[test]
    fn pool_refuses_less_than_two_pages_per_shard() {
        let err = PagePool::new(3 << 20, 1 << 20, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("4194304 bytes"), "{err}");
    }

    #[test]
    fn pool_hands_out_quotas_and_takes_pages_back() {
        let pool = PagePool::new(5 << 16, 1 << 16, 2).unwrap();
        assert_eq!((pool.quota(0), pool.quota(1)), (3, 2));
        let pages: Vec<u32> = (0..3).map(|held| pool.take(0, held).unwrap()).collect();
        assert_eq!(pool.take(0, 3), None);
        assert_eq!(pool.malloced(), 3 << 16);
        pool.give(pages[1]);
        assert_eq!(pool.malloced(), 2 << 16);
        assert_eq!(pool.take(1, 0), Some(pages[1]));
    }

    #[test]
    fn limit_changes_within_the_reservation_only() {
        let pool = PagePool::new(4 << 16, 1 << 16, 1).unwrap();
        assert!(pool.reserved() >= 32 << 30);
        assert!(!pool.set_limit(pool.reserved() + 1));
        assert!(!pool.set_limit(1 << 16));
        assert_eq!(pool.limit(), 4 << 16);
        assert!(pool.set_limit(8 << 16));
        assert_eq!((pool.limit(), pool.quota(0)), (8 << 16, 8));
    }

    #[test]
    fn pages_are_never_handed_out_twice_across_threads() {
        use std::sync::atomic::AtomicBool;
        let pool = PagePool::new(64 << 16, 1 << 16, 4).unwrap();
        let owned: Vec<AtomicBool> = (0..pool.reserved() >> 16)
            .map(|_| AtomicBool::new(false))
            .collect();
        std::thread::scope(|scope| {
            for shard in 0..4 {
                let (pool, owned) = (&pool, &owned);
                scope.spawn(move || {
                    let mut held = Vec::new();
                    for round in 0..2000 {
                        if round % 3 != 2 {
                            if let Some(page) = pool.take(shard, held.len() as u32) {
                                assert!(!owned[page as usize].swap(true, Ordering::SeqCst));
                                held.push(page);
                            }
                        } else if let Some(page) = held.pop() {
                            owned[page as usize].store(false, Ordering::SeqCst);
                            pool.give(page);
                        }
                        assert!(held.len() <= 16);
                    }
                    held.into_iter().for_each(|page| {
                        owned[page as usize].store(false, Ordering::SeqCst);
                        pool.give(page);
                    });
                });
            }
        });
        assert_eq!(pool.malloced(), 0);
    }

    #[test]
    fn shift_grows_past_32_gib() {
        assert_eq!(shift_for(32 << 30), 3);
        assert_eq!(shift_for(48 << 30), 4);
    }
}
