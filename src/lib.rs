//! corecache: a memcached-compatible in-memory cache server.
//!
//! The crate is laid out in layers, each testable without the ones above it:
//!
//! - [`protocol`]: pure parsers and reply encoders (zero-copy: requests borrow the read
//!   buffer). Knows nothing of storage or sockets.
//! - [`storage`]: the single-threaded cache engine: slab pages from a shared budget, a
//!   hash index, an LRU per slab class, lazy and crawled expiry, and an injected clock.
//!   Knows nothing of protocols.
//! - [`server`]: the I/O: one `mio` event loop and one shard per worker thread, request
//!   forwarding between workers in batches, replies in request order. The only layer
//!   that knows both protocol and storage types.
//! - [`cluster`]: ketama placement as libmemcached and twemproxy compute it, and the
//!   capacity planning behind the `corecache-ring` binary. The server never uses it.
//! - [`config`]: the memcached-compatible command line, validated once.
//! - [`stats`]: counters kept per worker and summed on `stats`.
//!
//! The binary (`src/main.rs`) only parses flags, sets up logging and starts a
//! [`server::Server`]; tests start the same server in-process or as the real binary.

pub mod cluster;
pub mod config;
pub mod protocol;
pub mod server;
pub mod stats;
pub mod storage;

/// The version `version` and `stats` report: the memcached protocol level corecache
/// follows, then corecache's own version, so that clients which parse the number see a
/// memcached 1.6 they know.
pub const VERSION: &str = concat!("1.6.18-corecache-", env!("CARGO_PKG_VERSION"));
