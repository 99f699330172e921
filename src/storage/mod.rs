//! The cache engine: single-threaded, protocol-agnostic, testable without a socket.
//!
//! A [`Shard`] owns a hash index, a slab allocator carved from pages of the shared
//! [`PagePool`], and one LRU per slab class. Only the owning worker thread touches a
//! shard, so none of its operations lock. Nothing here knows which protocol asked:
//! the server layer turns requests into the calls below and outcomes into replies.
//!
//! Time comes from an injected [`Clock`], so tests move it without sleeping.

mod arena;
mod chunks;
pub mod clock;
pub mod index;
pub mod item;
pub mod lru;
pub mod read;
pub mod shard;
pub mod slab;
pub mod stats;

pub use clock::{Clock, ManualClock, RelTime, SystemClock};
pub use index::{Key, KeyHasher};
pub use item::{accounted_size, item_size, ItemView, ValueParts, HEADER_SIZE};
pub use read::{Found, Read, Reader};
pub use shard::{
    Access, Arith, ArithOutcome, DeleteMode, DeleteOutcome, Emptied, FlushState, Initial, Lookup,
    MetaCounted, MetaDelete, MetaDeleteOutcome, MetaGet, MetaItem, MetaLookup, Miss, OlderCas,
    ReadKind, Shard, Store, StoreMode, StoreOptions, StoreOutcome, TouchOutcome, Vivify,
};
pub use slab::{PagePool, SlabClasses, SlabConfig};
pub use stats::{ClassSnapshot, ClassStats, ShardSnapshot, ShardStats};
