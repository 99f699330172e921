//! Clusters: which node holds a key when clients shard with ketama, and what node
//! failures and additions cost.
//!
//! corecache nodes do not talk to each other; the clients (libmemcached through pylibmc
//! or php-memcached, or a twemproxy in front) pick the node for each key. A Rust service
//! that shares a cluster with them, and an operator sizing one, need the same answer
//! the clients compute, bit for bit. This module gives it:
//!
//! - [`hash`]: the key hashes of libhashkit and twemproxy, with their x86-64 quirks;
//! - [`continuum`]: the ketama rings of libmemcached (`KETAMA`, `KETAMA_WEIGHTED`,
//!   the SPY variant), twemproxy and the original libketama;
//! - [`plan`]: exact shares of the key space, losses on failure, moves on growth;
//! - [`report`], [`live`] and [`cli`]: the `corecache-ring` tool built on them.
//!
//! It is not a client: nothing here sends keys anywhere, and the server never uses it.
//! Every continuum is checked against placements observed with the real libraries
//! (`tests/data/ketama/`, `tests/cluster_vectors.rs`) and, in CI, against nutcracker
//! and pylibmc in front of running corecache nodes (`tests/cluster/`).
//!
//! # Examples
//!
//! ```
//! use corecache::cluster::{Ketama, Mode, Node};
//! let nodes: Vec<Node> = "10.0.0.1:11211,10.0.0.2:11211"
//!     .split(',')
//!     .map(|n| n.parse().unwrap())
//!     .collect();
//! // php-memcached's session handler, default settings.
//! let ring = Ketama::new(Mode::Libmemcached).continuum(&nodes).unwrap();
//! let node = &nodes[ring.locate(b"ks7np1lisoc28h1bsh747t2l1j")];
//! assert!(node.host.starts_with("10.0.0."));
//! ```

pub mod cli;
pub mod continuum;
pub mod hash;
pub mod live;
pub mod node;
pub mod plan;
pub mod report;

pub use continuum::{Continuum, HashTag, Ketama, Mode, Point, RingError};
pub use hash::Hash;
pub use node::{Node, NodeError};
