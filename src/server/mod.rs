//! The I/O side: listeners, one worker thread per shard, connections, and forwarding
//! between workers.
//!
//! [`Server::start`] binds every listener first (so a port in use is reported before any
//! thread runs), drops root privileges if asked, builds one shard per worker over a
//! shared page pool, and starts the workers. [`ServerHandle`] stops them and waits.

mod connection;
mod execute;
mod listener;
mod report;
mod router;
mod sasl;
mod serve;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Poll, Token, Waker};
use parking_lot::Mutex;

use crate::config::Config;
use crate::stats::Registry;
use crate::storage::{
    Clock, FlushState, KeyHasher, PagePool, Reader, Shard, ShardStats, SystemClock,
};

pub use listener::Endpoint;

use connection::{ConnInfo, ReadBuffers};
use listener::Listener;
use router::Mailbox;

/// The token of every worker's waker.
const WAKER: Token = Token(usize::MAX);

/// State every worker reads: settings, the page pool, flush state, counters, and the
/// mailboxes through which workers reach each other.
pub struct Shared {
    /// The settings the server started with.
    pub config: Config,
    /// Item memory, shared by every shard.
    pub pool: Arc<PagePool>,
    /// `flush_all` state, read lazily by every shard.
    pub flush: Arc<FlushState>,
    /// The clock every shard reads.
    pub clock: Arc<dyn Clock>,
    /// Hashes keys for shard choice and bucket choice.
    pub hasher: KeyHasher,
    /// Each worker's inbox.
    mailboxes: Vec<Mailbox>,
    /// Per-worker request counters.
    pub counters: Registry,
    /// Each shard's counters.
    pub shard_stats: Vec<Arc<ShardStats>>,
    /// Each shard's reader: how any worker reads a shard without its owner.
    pub readers: Vec<Reader>,
    /// Each worker's connections, for `stats conns`.
    conns: Vec<Mutex<Vec<Arc<ConnInfo>>>>,
    /// The listening sockets, for `stats conns`.
    listening: Vec<(i32, Endpoint)>,
    /// Open client connections.
    pub curr_connections: AtomicUsize,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// `total_connections` at the last `stats reset`.
    connections_at_reset: AtomicU64,
    /// Connections refused by `-c`.
    pub rejected_connections: AtomicU64,
    /// The current item memory limit (changed by `cache_memlimit`).
    pub memory_limit: AtomicUsize,
    /// The level set by `verbosity`.
    pub verbosity: AtomicU32,
    /// Whether the server is stopping.
    stopping: AtomicBool,
    /// Workers that, while stopping, still owe replies to their connections.
    pub unsettled: AtomicUsize,
    /// The connections' read buffers, counted against `read_buf_mem_limit`.
    pub read_buffers: ReadBuffers,
    /// Called when `verbosity` changes the log level.
    on_verbosity: Option<Box<dyn Fn(u32) + Send + Sync>>,
}

impl Shared {
    /// Asks every worker to stop after this turn.
    pub fn request_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for mailbox in &self.mailboxes {
            mailbox.wake();
        }
    }

    /// Whether the server is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// `stats reset`: counters start again from zero. The shards' item counters
    /// (`total_items`, evictions) keep counting.
    pub fn reset_stats(&self) {
        self.counters.reset();
        let total = self.total_connections.load(Ordering::Relaxed);
        self.connections_at_reset.store(total, Ordering::Relaxed);
    }

    /// Connections accepted since the last `stats reset`.
    pub fn total_connections_since_reset(&self) -> u64 {
        let total = self.total_connections.load(Ordering::Relaxed);
        total.saturating_sub(self.connections_at_reset.load(Ordering::Relaxed))
    }

    /// Applies the `verbosity` command.
    pub fn set_verbosity(&self, level: u32) {
        let level = level.min(3);
        self.verbosity.store(level, Ordering::Relaxed);
        if let Some(apply) = &self.on_verbosity {
            apply(level);
        }
    }
}

/// Options for starting a server that do not come from the command line.
#[derive(Default)]
pub struct Options {
    /// Called with the new level when a client sends `verbosity`.
    pub on_verbosity: Option<Box<dyn Fn(u32) + Send + Sync>>,
}

/// Starts servers.
pub struct Server;

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

impl Server {
    /// Binds, builds the shards and starts one worker thread per shard.
    ///
    /// # Errors
    /// A listener cannot be bound, the user switch fails, or the memory cannot be
    /// reserved.
    pub fn start(config: Config, options: Options) -> io::Result<ServerHandle> {
        let mut listeners = listener::bind(&config)?;
        listener::drop_privileges(config.user.as_deref())?;
        let addrs = tcp_addrs(&listeners);
        let polls = (0..config.threads)
            .map(|_| Poll::new())
            .collect::<io::Result<Vec<_>>>()?;
        let mailboxes = polls
            .iter()
            .map(|p| Waker::new(p.registry(), WAKER).map(Mailbox::new))
            .collect::<io::Result<Vec<_>>>()?;
        let (shards, shared) = build(config, options, mailboxes, &listeners)?;
        worker::register_listeners(&mut listeners, &polls[0])?;
        let threads = worker::spawn_all(polls, shards, listeners, &shared)?;
        log_start(&shared);
        Ok(ServerHandle {
            shared,
            threads,
            addrs,
        })
    }
}

fn tcp_addrs(listeners: &[Listener]) -> Vec<SocketAddr> {
    listeners
        .iter()
        .filter_map(|l| match l.endpoint() {
            Endpoint::Tcp(addr) => Some(addr),
            Endpoint::Unix(_) => None,
        })
        .collect()
}

fn build(
    config: Config,
    options: Options,
    mailboxes: Vec<Mailbox>,
    listeners: &[Listener],
) -> io::Result<(Vec<Shard>, Arc<Shared>)> {
    let workers = config.threads;
    let pool = Arc::new(PagePool::new(
        config.memory_limit,
        config.slab.page_size,
        workers,
    )?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let flush = Arc::new(FlushState::new());
    let shards: Vec<Shard> = (0..workers)
        .map(|id| Shard::new(id, &config.slab, pool.clone(), clock.clone(), flush.clone()))
        .collect();
    let shared = Shared {
        pool,
        flush,
        clock,
        hasher: KeyHasher::new(),
        mailboxes,
        counters: Registry::new(workers),
        shard_stats: shards.iter().map(|s| s.stats().clone()).collect(),
        readers: shards.iter().map(Shard::reader).collect(),
        conns: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
        listening: listeners.iter().map(|l| (l.fd(), l.endpoint())).collect(),
        curr_connections: AtomicUsize::new(0),
        total_connections: AtomicU64::new(0),
        connections_at_reset: AtomicU64::new(0),
        rejected_connections: AtomicU64::new(0),
        memory_limit: AtomicUsize::new(config.memory_limit),
        verbosity: AtomicU32::new(u32::from(config.verbosity)),
        stopping: AtomicBool::new(false),
        unsettled: AtomicUsize::new(workers),
        read_buffers: ReadBuffers::default(),
        on_verbosity: options.on_verbosity,
        config,
    };
    Ok((shards, Arc::new(shared)))
}

fn log_start(shared: &Shared) {
    let config = &shared.config;
    for (_, endpoint) in &shared.listening {
        tracing::info!(
            listen = %endpoint,
            threads = config.threads,
            memory_mb = config.memory_limit >> 20,
            "listening"
        );
    }
}

impl ServerHandle {
    /// The TCP addresses the server listens on (with the real port when 0 was asked).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Asks the workers to stop; [`ServerHandle::wait`] then returns.
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }

    /// A handle that can stop the server from another thread (a signal handler).
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.request_shutdown()
    }

    /// Waits for every worker to stop.
    ///
    /// # Errors
    /// A worker panicked; the panic was logged when it happened.
    pub fn wait(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            if thread.join().is_err() {
                result = Err(io::Error::other("a worker thread panicked"));
            }
        }
        result
    }
}
