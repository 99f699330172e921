//! One worker: a `mio` event loop that owns a shard and the connections handed to it.
//!
//! Each turn: poll; read and serve the connections that are ready (at most `-R`
//! requests each, then the others get their turn); run the requests other workers sent
//! and deliver the replies they returned; send this turn's forwarded requests, one batch
//! per worker; write each connection's replies with one write. Worker 0 also accepts
//! connections and hands them out round-robin.
//!
//! Nothing here blocks but the poll itself, and the poll blocks only when no connection
//! has buffered work and the mailbox is empty.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Poll, Token};

use super::connection::{Closing, Conn, ConnInfo, Ending, ReadOutcome, Wire};
use super::listener::{Endpoint, Listener, Stream};
use super::router::{Batch, Forwarder, Message};
use super::serve::{self, Core, Served};
use super::{Shared, WAKER};
use crate::protocol::text;
use crate::protocol::ErrorReply;
use crate::stats::{Counters, Stat};
use crate::storage::Shard;

/// Tokens at and above this name listeners.
const LISTENER_BASE: usize = usize::MAX / 2;
/// Stop reading a connection once this much unparsed input is buffered.
const READ_AHEAD: usize = 64 * 1024;
/// Items the crawler looks at per shard per second.
const CRAWL_BUDGET: usize = 2000;
/// The most reply bytes a connection may hold before it is closed for not reading them
/// (at least four values of `-I`). Requests pause far earlier, at
/// [`super::connection::OUTPUT_PAUSE`]; only a client that stops reading while replies
/// it already asked for keep arriving from other workers comes near this.
const OUTPUT_LIMIT: usize = 64 * 1024 * 1024;
/// How long a worker sleeps when idle, so it can crawl and check idle connections.
const TICK: Duration = Duration::from_millis(1000);
/// How long a stopping server goes on writing the replies to requests it has read; a
/// client that does not read them within this time loses them.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How often a stopping worker looks whether every worker has finished.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Registers worker 0's listeners with its poll.
pub fn register_listeners(listeners: &mut [Listener], poll: &Poll) -> io::Result<()> {
    for (i, listener) in listeners.iter_mut().enumerate() {
        listener.register(poll.registry(), Token(LISTENER_BASE + i))?;
    }
    Ok(())
}

/// Starts one thread per worker; worker 0 gets the listeners.
pub fn spawn_all(
    polls: Vec<Poll>,
    shards: Vec<Shard>,
    listeners: Vec<Listener>,
    shared: &Arc<Shared>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let mut listeners = Some(listeners);
    let mut threads = Vec::new();
    for (id, (poll, shard)) in polls.into_iter().zip(shards).enumerate() {
        let worker = Worker::new(
            id,
            poll,
            shard,
            listeners.take().unwrap_or_default(),
            shared,
        );
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker.run())?;
        threads.push(thread);
    }
    Ok(threads)
}

/// A worker's connections, by slot; a slot's generation changes when it is reused.
#[derive(Default)]
struct Slots {
    conns: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> usize {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.generations.push(0);
            self.conns.len() - 1
        });
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        self.conns[slot] = Some(make(self.generations[slot]));
        slot
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot)?.as_mut()
    }

    fn remove(&mut self, slot: usize) -> Option<Conn> {
        let conn = self.conns.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(conn)
    }
}

struct Worker {
    poll: Poll,
    core: Core,
    slots: Slots,
    listeners: Vec<Listener>,
    next_target: usize,
    ready: Vec<usize>,
    dirty: Vec<usize>,
    last_tick: u32,
    /// A connection whose pending replies exceed this is closed: it does not read them.
    output_limit: usize,
    /// Whether it reads from its connections: false once the server is stopping.
    reading: bool,
}

impl Worker {
    fn new(
        id: usize,
        poll: Poll,
        shard: Shard,
        listeners: Vec<Listener>,
        shared: &Arc<Shared>,
    ) -> Worker {
        let workers = shared.config.threads;
        Worker {
            poll,
            core: Core::new(id, shard, Forwarder::new(id, workers), shared.clone()),
            slots: Slots::default(),
            listeners,
            next_target: 0,
            ready: Vec::new(),
            dirty: Vec::new(),
            last_tick: 0,
            output_limit: OUTPUT_LIMIT.max(4 * shared.config.slab.item_size_max),
            reading: true,
        }
    }

    fn shared(&self) -> &Shared {
        &self.core.shared
    }

    fn run(mut self) {
        let _stop_on_panic = StopOnPanic(self.core.shared.clone(), self.core.id);
        let mut events = Events::with_capacity(1024);
        while !self.shared().is_stopping() {
            self.poll_once(&mut events, TICK);
            self.turn(&events);
        }
        self.drain(&mut events);
        self.finish();
    }

    fn poll_once(&mut self, events: &mut Events, idle: Duration) {
        let timeout = self.timeout(idle);
        if let Err(err) = self.poll.poll(events, timeout) {
            if err.kind() != io::ErrorKind::Interrupted {
                tracing::error!(worker = self.core.id, cause = %err, "poll failed");
                self.shared().request_shutdown();
            }
        }
        self.shared().mailboxes[self.core.id].unpark();
    }

    fn timeout(&self, idle: Duration) -> Option<Duration> {
        if !self.ready.is_empty() || !self.shared().mailboxes[self.core.id].park() {
            return Some(Duration::ZERO);
        }
        Some(idle)
    }

    /// Once stopping: accepts and reads nothing more, but runs on until the requests
    /// already read are answered and their replies written, for every worker (a worker
    /// that is done still answers the others' forwarded requests), or [`DRAIN_GRACE`]
    /// has passed.
    fn drain(&mut self, events: &mut Events) {
        self.stop_reading();
        let deadline = Instant::now() + DRAIN_GRACE;
        let mut settled = false;
        while Instant::now() < deadline {
            if !settled && self.is_settled() {
                settled = true;
                self.shared().unsettled.fetch_sub(1, Ordering::SeqCst);
            }
            if self.shared().unsettled.load(Ordering::SeqCst) == 0 {
                return;
            }
            self.poll_once(events, DRAIN_POLL);
            self.turn(events);
        }
        tracing::warn!(
            worker = self.core.id,
            "stopping with replies still unwritten"
        );
    }

    fn stop_reading(&mut self) {
        self.reading = false;
        self.listeners.clear();
        for conn in self.slots.conns.iter_mut().flatten() {
            conn.readable = false;
        }
    }

    /// Whether every request read has its reply written.
    fn is_settled(&self) -> bool {
        self.ready.is_empty()
            && self
                .slots
                .conns
                .iter()
                .flatten()
                .all(|c| c.output.is_drained())
    }

    fn turn(&mut self, events: &Events) {
        for event in events.iter() {
            self.on_event(event);
        }
        self.drain_mailbox();
        self.serve_ready();
        let (batches, requests) = self.core.forwarder.flush(&self.core.shared.mailboxes);
        self.core.counters().add(Stat::forwarded_batches, batches);
        self.core.counters().add(Stat::forwarded_requests, requests);
        self.write_dirty();
        self.tick();
    }

    fn on_event(&mut self, event: &Event) {
        match event.token() {
            WAKER => {}
            Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE),
            Token(slot) => {
                let Some(conn) = self.slots.get_mut(slot) else {
                    return;
                };
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                if readable && self.reading {
                    conn.readable = true;
                    conn.hung_up |= event.is_read_closed() || event.is_error();
                    queue(&mut self.ready, slot, &mut conn.queued);
                }
                if event.is_writable() {
                    queue(&mut self.dirty, slot, &mut conn.dirty);
                }
            }
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let accepted = match self.listeners.get(index) {
                Some(listener) => listener.accept(),
                None => return,
            };
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    tracing::warn!(cause = %err, "accept failed");
                    return;
                }
            }
        }
    }

    /// Counts a new connection against `-c` and hands it to the next worker.
    fn admit(&mut self, mut stream: Stream, peer: Endpoint) {
        let shared = &self.core.shared;
        let open = shared.curr_connections.fetch_add(1, Ordering::SeqCst);
        if open >= shared.config.max_connections {
            shared.curr_connections.fetch_sub(1, Ordering::SeqCst);
            shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
            reject(&mut stream, &peer);
            return;
        }
        shared.total_connections.fetch_add(1, Ordering::Relaxed);
        let target = self.next_target;
        self.next_target = (target + 1) % shared.config.threads;
        if target == self.core.id {
            self.adopt(stream, peer);
        } else {
            shared.mailboxes[target].send(Message::Connection(stream, peer));
        }
    }

    /// Takes ownership of a connection: registers it and starts serving it.
    fn adopt(&mut self, stream: Stream, peer: Endpoint) {
        let now = self.core.shared.clock.now();
        let info = Arc::new(ConnInfo {
            fd: stream.fd(),
            listen_addr: stream.local_endpoint().or_else(|| match &peer {
                Endpoint::Unix(_) => Some(peer.clone()),
                Endpoint::Tcp(_) => None,
            }),
            addr: peer,
            last_cmd: now.into(),
        });
        let slot = self
            .slots
            .insert(|generation| Conn::new(stream, generation, info.clone()));
        let item_size_max = self.core.shared.config.slab.item_size_max;
        let Some(conn) = self.slots.get_mut(slot) else {
            return;
        };
        conn.output.limit_values(item_size_max);
        conn.readable = self.reading;
        if let Err(err) = conn.stream.register(self.poll.registry(), Token(slot)) {
            tracing::warn!(cause = %err, "cannot register a connection");
            self.slots.remove(slot);
            self.core
                .shared
                .curr_connections
                .fetch_sub(1, Ordering::SeqCst);
            return;
        }
        queue(&mut self.ready, slot, &mut conn.queued);
        tracing::info!(peer = %info.addr, fd = info.fd, worker = self.core.id, "connection opened");
        self.core.shared.conns[self.core.id].lock().push(info);
    }

    fn drain_mailbox(&mut self) {
        while let Some(message) = self.core.shared.mailboxes[self.core.id].try_recv() {
            match message {
                Message::Connection(stream, peer) => self.adopt(stream, peer),
                Message::Requests(batch) => self.core.run_forwarded(batch),
                Message::Replies(batch) => self.deliver(batch),
            }
        }
    }

    /// Hands each reply in a returned batch to the connection that asked, if it is
    /// still open.
    fn deliver(&mut self, batch: Batch) {
        for (record, reply) in batch.answered() {
            let Some(conn) = self.slots.get_mut(record.conn.slot) else {
                continue;
            };
            if conn.generation != record.conn.generation {
                continue;
            }
            conn.output.fill_remote(batch.target, reply);
            queue(&mut self.dirty, record.conn.slot, &mut conn.dirty);
            if conn.barrier && !conn.output.owes_remote() {
                conn.barrier = false;
                queue(&mut self.ready, record.conn.slot, &mut conn.queued);
            }
        }
        self.core.forwarder.recycle(batch);
    }

    fn serve_ready(&mut self) {
        let ready = std::mem::take(&mut self.ready);
        for &slot in &ready {
            if let Some(conn) = self.slots.get_mut(slot) {
                conn.queued = false;
            }
        }
        for slot in ready {
            self.serve(slot);
        }
    }

    /// Reads what the socket has (up to [`READ_AHEAD`]) and runs up to `-R` requests.
    fn serve(&mut self, slot: usize) {
        let Some(conn) = self.slots.get_mut(slot) else {
            return;
        };
        if self.reading {
            if let Err(reason) = fill(conn, self.core.counters(), &self.core.shared) {
                return self.close(slot, reason);
            }
        }
        let served = serve::run_requests(&mut self.core, conn, slot);
        match served {
            Served::Close(reason) => return self.close(slot, reason),
            Served::Yielded => {
                self.core.counters().incr(Stat::conn_yields);
                queue(&mut self.ready, slot, &mut conn.queued);
            }
            Served::Waiting if conn.readable => {
                queue(&mut self.ready, slot, &mut conn.queued);
            }
            Served::Waiting if conn.eof && conn.closing == Closing::Open => {
                conn.closing = Closing::AfterReplies(Ending::Eof);
            }
            Served::Paused => conn.paused = true,
            Served::Barrier => conn.barrier = true,
            Served::Waiting => {}
        }
        queue(&mut self.dirty, slot, &mut conn.dirty);
    }

    fn write_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for slot in dirty {
            self.write(slot);
        }
    }

    fn write(&mut self, slot: usize) {
        let Some(conn) = self.slots.get_mut(slot) else {
            return;
        };
        conn.dirty = false;
        match conn.output.write_to(&mut conn.stream) {
            Ok(n) => self.core.counters().add(Stat::bytes_written, n as u64),
            Err(err) => return self.close(slot, CloseReason::Io(err)),
        }
        if let Closing::AfterReplies(ending) = conn.closing {
            if conn.output.is_drained() {
                return self.close(slot, CloseReason::Ended(ending));
            }
        }
        if conn.output.footprint() > self.output_limit {
            self.core.counters().incr(Stat::output_kicks);
            return self.close(slot, CloseReason::OutputLimit);
        }
        if conn.paused && !conn.output.is_backed_up() {
            conn.paused = false;
            queue(&mut self.ready, slot, &mut conn.queued);
        }
        if conn.output.is_drained() {
            let freed = conn.input.shrink_if_idle();
            self.core.shared.read_buffers.release(freed);
        }
    }

    fn close(&mut self, slot: usize, reason: CloseReason) {
        let Some(mut conn) = self.slots.remove(slot) else {
            return;
        };
        reason.log(&conn.info.addr);
        if let CloseReason::ReadBufferLimit = reason {
            self.core.counters().incr(Stat::read_buf_oom);
            say_out_of_memory(&mut conn);
        }
        let shared = &self.core.shared;
        shared.read_buffers.release(conn.input.capacity());
        if let Err(err) = conn.stream.deregister(self.poll.registry()) {
            tracing::debug!(cause = %err, "deregister failed");
        }
        shared.conns[self.core.id]
            .lock()
            .retain(|info| !Arc::ptr_eq(info, &conn.info));
        shared.curr_connections.fetch_sub(1, Ordering::SeqCst);
    }

    /// Once a second: reclaim expired items and close idle connections.
    fn tick(&mut self) {
        let now = self.core.shared.clock.now();
        if now == self.last_tick {
            return;
        }
        self.last_tick = now;
        self.core.shard.crawl(CRAWL_BUDGET);
        let idle = self.core.shared.config.idle_timeout;
        if idle > 0 {
            self.kick_idle(now, idle);
        }
    }

    fn kick_idle(&mut self, now: u32, idle: u32) {
        let stale: Vec<usize> = (0..self.slots.conns.len())
            .filter(|&slot| {
                self.slots.conns[slot]
                    .as_ref()
                    .is_some_and(|c| c.is_idle() && now.saturating_sub(c.info.last_cmd()) > idle)
            })
            .collect();
        for slot in stale {
            self.core.counters().incr(Stat::idle_kicks);
            self.close(slot, CloseReason::Idle);
        }
    }

    /// Stops: writes what can be written without waiting, then drops every connection.
    fn finish(&mut self) {
        for slot in 0..self.slots.conns.len() {
            if let Some(conn) = self.slots.get_mut(slot) {
                if let Err(err) = conn.output.write_to(&mut conn.stream) {
                    tracing::debug!(cause = %err, "cannot write the last replies");
                }
                self.close(slot, CloseReason::Shutdown);
            }
        }
    }
}

/// Stops the server when its worker panics, so that it exits non-zero rather than go on
/// serving with a shard nobody owns.
struct StopOnPanic(Arc<Shared>, usize);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(worker = self.1, "worker panicked: stopping the server");
            self.0.request_shutdown();
        }
    }
}

/// Adds `slot` to a to-do list once.
fn queue(list: &mut Vec<usize>, slot: usize, queued: &mut bool) {
    if !*queued {
        *queued = true;
        list.push(slot);
    }
}

/// Why a connection was closed, for the log.
#[derive(Debug)]
pub(super) enum CloseReason {
    /// A read or write failed.
    Io(io::Error),
    /// Every reply was written after `quit`, a protocol error or the client's close.
    Ended(Ending),
    /// The client stopped reading while its replies grew past the output limit.
    OutputLimit,
    /// Framing was lost.
    Protocol(text::CloseReason),
    /// Idle longer than `idle_timeout`.
    Idle,
    /// `shutdown` or a signal.
    Shutdown,
    /// Its read buffer would have passed `read_buf_mem_limit`.
    ReadBufferLimit,
}

impl CloseReason {
    fn log(&self, peer: &Endpoint) {
        match self {
            CloseReason::Protocol(why) => {
                tracing::warn!(peer = %peer, cause = ?why, "closing connection: framing lost");
            }
            CloseReason::Io(err) => {
                tracing::info!(peer = %peer, cause = %err, "closing connection");
            }
            CloseReason::Ended(ending) => {
                tracing::info!(peer = %peer, cause = ?ending, "connection closed");
            }
            CloseReason::OutputLimit => {
                tracing::warn!(peer = %peer, "closing connection: it does not read its replies");
            }
            CloseReason::ReadBufferLimit => {
                tracing::warn!(peer = %peer, "closing connection: read buffers are at their limit");
            }
            other => tracing::info!(peer = %peer, cause = ?other, "connection closed"),
        }
    }
}

/// Refuses a connection past `-c` with memcached's message.
fn reject(stream: &mut Stream, peer: &Endpoint) {
    use std::io::Write;
    let mut line = Vec::new();
    ErrorReply::TooManyConnections.write(&mut line);
    if let Err(err) = stream.write(&line) {
        tracing::debug!(cause = %err, "cannot send the refusal");
    }
    tracing::warn!(peer = %peer, "connection refused: too many open connections");
}

/// Sends memcached's reply to a connection closed for `read_buf_mem_limit`, after the
/// replies it can still take without waiting. A binary client gets no text line: it
/// sees the close alone.
fn say_out_of_memory(conn: &mut Conn) {
    use std::io::Write;
    let unsent = conn.output.write_to(&mut conn.stream).is_err() || !conn.output.is_drained();
    if unsent || conn.wire == Some(Wire::Binary) {
        return;
    }
    let mut line = Vec::new();
    ErrorReply::ReadOutOfMemory.write(&mut line);
    if let Err(err) = conn.stream.write(&line) {
        tracing::debug!(cause = %err, "cannot send the refusal");
    }
}

/// Reads from the socket until it has nothing more or enough is buffered; growing the
/// buffer is counted against `read_buf_mem_limit` first.
fn fill(conn: &mut Conn, counters: &Counters, shared: &Shared) -> Result<(), CloseReason> {
    while conn.readable && conn.input.pending().len() < READ_AHEAD.max(conn.input.need()) {
        let grow = conn.input.growth();
        let held = conn.input.capacity();
        let limit = shared.config.read_buf_mem_limit;
        if grow > 0 && !shared.read_buffers.claim(held, grow, limit) {
            return Err(CloseReason::ReadBufferLimit);
        }
        match conn.input.read_from(&mut conn.stream) {
            Ok(ReadOutcome::Full(n)) => counters.add(Stat::bytes_read, n as u64),
            Ok(ReadOutcome::Data(n)) => {
                counters.add(Stat::bytes_read, n as u64);
                // After the peer's FIN the poll reports nothing new: read on to the end.
                conn.readable = conn.hung_up;
            }
            Ok(ReadOutcome::WouldBlock) => conn.readable = false,
            Ok(ReadOutcome::Closed) => {
                conn.eof = true;
                conn.readable = false;
            }
            Err(err) => return Err(CloseReason::Io(err)),
        }
    }
    Ok(())
}
