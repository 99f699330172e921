//! One client connection: its read buffer, and its output in request order.
//!
//! Replies must leave in the order requests arrived, but a request for a key in another
//! worker's shard is answered later than the local requests after it. [`Output`] keeps
//! a queue of the replies still owed: while a remote reply is outstanding, later local
//! replies wait in a side buffer, and each arriving remote reply releases whatever
//! follows it. With no remote reply outstanding, a local reply goes straight into the
//! write buffer, so the common case copies nothing twice.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::listener::{Endpoint, Stream};
use crate::protocol::text::GetKind;

/// The smallest read: enough for a pipeline of small requests in one system call.
const READ_CHUNK: usize = 16 * 1024;
/// An output buffer larger than this is shrunk to this once it has been written out, so
/// an idle connection holds little.
const OUTPUT_KEEP: usize = 16 * 1024;
/// Stop running requests while this much output waits for the client to read it. The
/// buffer then holds at most this plus one reply, in a capacity of at most twice this
/// (or one reply more).
pub const OUTPUT_PAUSE: usize = 512 * 1024;
/// Stop running requests while this many bytes of requests are on their way to other
/// workers: a pipeline of large stores for other workers' keys would otherwise copy
/// values into forwarded batches faster than the owners store them.
pub const FORWARD_PAUSE: usize = 2 * 1024 * 1024;
/// Stop running requests while this many replies are owed by other workers.
pub const PENDING_PAUSE: usize = 256;
/// The bytes of replies that may carry a value that a connection may have on their way
/// from other workers: each counts as `-I`, so a client cannot make other workers copy
/// much more than this for it before it reads.
pub const REMOTE_VALUE_BUDGET: usize = 16 * 1024 * 1024;

/// Bytes read from the socket and not yet parsed.
#[derive(Debug, Default)]
pub struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes still to drop as they arrive: the data block of a refused command.
    discard: usize,
    /// When known, the size of the request at the front of the buffer.
    need: usize,
}

/// What one read from the socket found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes arrived and filled the free space: there may be more.
    Full(usize),
    /// This many bytes arrived, fewer than there was room for: the socket is drained,
    /// and the poll will report new bytes, so no second read (which would only answer
    /// "would block") is needed.
    Data(usize),
    /// Nothing more for now.
    WouldBlock,
    /// The client closed its side.
    Closed,
}

impl Input {
    /// The bytes waiting to be parsed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` parsed bytes as used, and then drops `discard` more as they arrive.
    pub fn consume(&mut self, n: usize, discard: usize) {
        self.start += n;
        self.discard = discard;
        self.need = 0;
        self.drop_discarded();
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Records how many bytes the request at the front needs at least, so that reads
    /// go on past the usual read-ahead and are sized for it.
    pub fn expect(&mut self, need: usize) {
        self.need = need;
    }

    /// How many bytes to buffer before parsing again: the size of the request at the
    /// front when it is known, else 0.
    pub fn need(&self) -> usize {
        self.need
    }

    /// Whether bytes of a refused data block are still to come.
    pub fn discarding(&self) -> bool {
        self.discard > 0
    }

    /// Whether everything read so far has been parsed or dropped.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes the buffer now holds, used or not.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes the next [`Input::read_from`] will add to the buffer, so that they
    /// can be counted against `read_buf_mem_limit` first.
    pub fn growth(&mut self) -> usize {
        self.compact();
        self.wanted().saturating_sub(self.buf.len())
    }

    /// Reads once from `stream` into the free space, growing it when the request at the
    /// front needs more than is there.
    pub fn read_from(&mut self, stream: &mut impl Read) -> io::Result<ReadOutcome> {
        self.make_room();
        let room = self.buf.len() - self.end;
        match stream.read(&mut self.buf[self.end..]) {
            Ok(0) => Ok(ReadOutcome::Closed),
            Ok(n) => {
                self.end += n;
                self.drop_discarded();
                Ok(if n == room {
                    ReadOutcome::Full(n)
                } else {
                    ReadOutcome::Data(n)
                })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::Full(0)),
            Err(e) => Err(e),
        }
    }

    fn drop_discarded(&mut self) {
        let n = self.discard.min(self.end - self.start);
        self.start += n;
        self.discard -= n;
    }

    /// Moves unparsed bytes to the front and grows the buffer when it is full. It grows
    /// by doubling as bytes arrive, never straight to a declared value length, so a client
    /// that declares a large value but sends little costs little.
    fn make_room(&mut self) {
        self.compact();
        let wanted = self.wanted();
        if wanted > self.buf.len() {
            self.buf.resize(wanted, 0);
        }
    }

    fn compact(&mut self) {
        if self.start > 0 && (self.start == self.end || self.end + READ_CHUNK > self.buf.len()) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The size the buffer needs before the next read (never less than it is).
    fn wanted(&self) -> usize {
        let doubled = (2 * self.end).max(self.end + READ_CHUNK);
        let wanted = (self.end + READ_CHUNK).max(self.need.min(doubled));
        if wanted > self.buf.len() {
            wanted.next_power_of_two()
        } else {
            self.buf.len()
        }
    }

    /// Gives back a large buffer once it is empty, so an idle connection holds little;
    /// returns the bytes given back.
    pub fn shrink_if_idle(&mut self) -> usize {
        if self.is_empty() && self.buf.len() > READ_CHUNK {
            self.start = 0;
            self.end = 0;
            return std::mem::take(&mut self.buf).len();
        }
        0
    }
}

/// The bytes all connections' read buffers hold and how many buffers there are,
/// shared by the workers so that `read_buf_mem_limit` bounds them together.
#[derive(Debug, Default)]
pub struct ReadBuffers {
    /// Bytes held.
    pub bytes: AtomicUsize,
    /// Connections holding a buffer.
    pub count: AtomicUsize,
}

impl ReadBuffers {
    /// Counts `grow` more bytes for a buffer that now holds `held`, unless that would
    /// pass `limit` (0: no limit); answers whether it did.
    pub fn claim(&self, held: usize, grow: usize, limit: usize) -> bool {
        let before = self.bytes.fetch_add(grow, Ordering::Relaxed);
        if limit > 0 && before + grow > limit {
            self.bytes.fetch_sub(grow, Ordering::Relaxed);
            return false;
        }
        if held == 0 {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Forgets a buffer of `bytes` given back whole.
    pub fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A reply owed to the client, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owed {
    /// Still being produced by worker `target`; `true` if it may carry a value; the
    /// bytes of the request sent there.
    Remote(usize, bool, usize),
    /// Produced, waiting in the side buffer behind an earlier remote reply.
    Ready(Range<usize>),
}

/// The connection's replies: bytes ready to write, and those still owed.
#[derive(Debug, Default)]
pub struct Output {
    buf: Vec<u8>,
    sent: usize,
    owed: VecDeque<Owed>,
    waiting: Vec<u8>,
    /// Remote replies owed that may carry a value.
    owed_values: usize,
    /// How many of those may be owed at once (from `-I`, see [`REMOTE_VALUE_BUDGET`]).
    value_limit: usize,
    /// Bytes of requests (values of stores among them) sent to other workers and not yet
    /// answered.
    forwarded: usize,
}

impl Output {
    /// Writes a local reply with `write`: straight into the write buffer when nothing is
    /// owed ahead of it, else into the side buffer in its place in the queue.
    pub fn local<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        if self.owed.is_empty() {
            return write(&mut self.buf);
        }
        let start = self.waiting.len();
        let result = write(&mut self.waiting);
        self.queue_ready(start..self.waiting.len());
        result
    }

    fn queue_ready(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        if let Some(Owed::Ready(last)) = self.owed.back_mut() {
            if last.end == range.start {
                last.end = range.end;
                return;
            }
        }
        self.owed.push_back(Owed::Ready(range));
    }

    /// Sets how large a value can be, which bounds how many replies that may carry one
    /// can be owed at once.
    pub fn limit_values(&mut self, item_size_max: usize) {
        self.value_limit = (REMOTE_VALUE_BUDGET / item_size_max.max(1)).clamp(2, PENDING_PAUSE);
    }

    /// Reserves the next place in the reply order for a reply from worker `target`;
    /// `value` says whether the reply may carry an item's value.
    pub fn owe_remote(&mut self, target: usize, value: bool, sent: usize) {
        self.owed_values += usize::from(value);
        self.forwarded += sent;
        self.owed.push_back(Owed::Remote(target, value, sent));
    }

    /// Whether a reply is still being produced by worker `target`: then a later read of
    /// that worker's shard must go through it too, or it could overtake this
    /// connection's own earlier write.
    pub fn owes_to(&self, target: usize) -> bool {
        self.owed
            .iter()
            .any(|o| matches!(o, Owed::Remote(t, ..) if *t == target))
    }

    /// Whether any reply is still being produced by another worker.
    pub fn owes_remote(&self) -> bool {
        self.owed.iter().any(|o| matches!(o, Owed::Remote(..)))
    }

    /// Fills the earliest place reserved for worker `target` with its reply. Replies
    /// from one worker arrive in the order they were asked for, so the earliest place
    /// is the right one.
    pub fn fill_remote(&mut self, target: usize, reply: &[u8]) {
        let Some(at) = self
            .owed
            .iter()
            .position(|o| matches!(o, Owed::Remote(t, ..) if *t == target))
        else {
            debug_assert!(false, "a reply from worker {target} that nobody is owed");
            return;
        };
        if let Owed::Remote(_, value, sent) = self.owed[at] {
            self.owed_values -= usize::from(value);
            self.forwarded -= sent;
        }
        if at > 0 {
            let start = self.waiting.len();
            self.waiting.extend_from_slice(reply);
            self.owed[at] = Owed::Ready(start..self.waiting.len());
            return;
        }
        self.owed.pop_front();
        self.buf.extend_from_slice(reply);
        self.release_ready();
    }

    fn release_ready(&mut self) {
        while let Some(Owed::Ready(range)) = self.owed.front() {
            self.buf.extend_from_slice(&self.waiting[range.clone()]);
            self.owed.pop_front();
        }
        if self.owed.is_empty() {
            self.waiting.clear();
            self.waiting.shrink_to(OUTPUT_KEEP);
        }
    }

    /// Bytes ready and not yet written.
    pub fn unsent(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Bytes held for the client: ready to write, or waiting behind a remote reply.
    pub fn footprint(&self) -> usize {
        self.unsent() + self.waiting.len()
    }

    /// Whether new requests (and further keys of a multi-get) should wait until the
    /// client reads what it was sent or other workers answer.
    pub fn is_backed_up(&self) -> bool {
        self.footprint() > OUTPUT_PAUSE
            || self.forwarded > FORWARD_PAUSE
            || self.owed.len() >= PENDING_PAUSE
            || self.owed_values >= self.value_limit.max(2)
    }

    /// Writes as much as the socket takes; returns the bytes written.
    pub fn write_to(&mut self, stream: &mut impl Write) -> io::Result<usize> {
        let mut written = 0;
        while self.sent < self.buf.len() {
            match stream.write(&self.buf[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.reset_if_sent();
        Ok(written)
    }

    /// Empties a buffer written out (and shrinks it), or drops the written front of one
    /// half written out, so that a slow reader's buffer holds only what is unsent.
    fn reset_if_sent(&mut self) {
        if self.sent < self.buf.len() {
            if self.sent >= self.buf.len() / 2 {
                self.buf.drain(..self.sent);
                self.sent = 0;
            }
            return;
        }
        self.buf.clear();
        self.sent = 0;
        self.buf.shrink_to(OUTPUT_KEEP);
    }

    /// Whether everything owed has been produced and written.
    pub fn is_drained(&self) -> bool {
        self.owed.is_empty() && self.sent == self.buf.len()
    }
}

/// What `stats conns` shows of a connection, shared with the worker that owns it.
#[derive(Debug)]
pub struct ConnInfo {
    /// The socket's file descriptor.
    pub fd: i32,
    /// The peer.
    pub addr: Endpoint,
    /// The listening address it came in on.
    pub listen_addr: Option<Endpoint>,
    /// When it last sent a command ([`crate::storage::RelTime`]).
    pub last_cmd: AtomicU32,
}

impl ConnInfo {
    /// Records that a command arrived at `now`.
    pub fn touch(&self, now: u32) {
        self.last_cmd.store(now, Ordering::Relaxed);
    }

    /// When the connection last sent a command.
    pub fn last_cmd(&self) -> u32 {
        self.last_cmd.load(Ordering::Relaxed)
    }
}

/// A request set aside: the start of a refused command whose data block is still
/// arriving (a text line, or a binary header with extras and key), answered once the
/// block has been dropped; or the keys of a multi-get not yet run because the client
/// had not read the replies so far.
#[derive(Debug, Default)]
pub struct Held {
    /// The request's bytes, or the keys not yet run.
    pub bytes: Vec<u8>,
    /// For a multi-get: its form, and where in `bytes` the keys not yet run start.
    pub get: Option<(GetKind, usize)>,
}

impl Held {
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Which protocol a connection speaks, decided by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// The text protocol: classic and meta commands.
    Text,
    /// The binary protocol.
    Binary,
}

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Still serving.
    Open,
    /// Close once every earlier reply is written, for this reason (a binary protocol
    /// error closes as `quit` does, after its error reply).
    AfterReplies(Ending),
}

/// Why a connection closes once its replies are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The client sent `quit`.
    Quit,
    /// The client closed its side; what it sent before is still answered.
    Eof,
}

/// A client connection owned by one worker.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: Stream,
    /// Bytes read and not yet parsed.
    pub input: Input,
    /// Replies in request order.
    pub output: Output,
    /// Tells this connection from an earlier one in the same slot.
    pub generation: u32,
    /// Whether the socket may have more bytes to read (reads are edge-triggered).
    pub readable: bool,
    /// Whether it is closing.
    pub closing: Closing,
    /// What `stats conns` shows.
    pub info: std::sync::Arc<ConnInfo>,
    /// Whether it is in the worker's list of connections to serve this turn.
    pub queued: bool,
    /// Whether it is in the worker's list of connections to write this turn.
    pub dirty: bool,
    /// Whether reading stopped because its output is backed up.
    pub paused: bool,
    /// A request set aside until its data block is dropped or the client reads.
    pub held: Held,
    /// The protocol, once the first byte has arrived.
    pub wire: Option<Wire>,
    /// SASL state (`-S`).
    pub session: super::sasl::Session,
    /// Whether reading stopped at a request that must wait for replies still owed by other
    /// workers (`flush_all` must not overtake them).
    pub barrier: bool,
    /// Whether the client closed its side; what it sent before is still answered.
    pub eof: bool,
    /// Whether the poll reported the peer's close (reads go on until they return 0).
    pub hung_up: bool,
}

impl Conn {
    /// A new connection on `stream`.
    pub fn new(stream: Stream, generation: u32, info: std::sync::Arc<ConnInfo>) -> Conn {
        Conn {
            stream,
            input: Input::default(),
            output: Output::default(),
            generation,
            readable: true,
            closing: Closing::Open,
            info,
            queued: false,
            dirty: false,
            paused: false,
            held: Held::default(),
            wire: None,
            session: super::sasl::Session::default(),
            barrier: false,
            eof: false,
            hung_up: false,
        }
    }
}

impl Conn {
    /// Whether the connection waits for a new command: nothing half-read, nothing owed.
    /// Only such a connection counts as idle for `idle_timeout`, as in memcached, which
    /// never closes a client in the middle of sending a value.
    pub fn is_idle(&self) -> bool {
        self.input.is_empty()
            && !self.input.discarding()
            && self.held.is_empty()
            && self.output.is_drained()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_replies_go_straight_out_when_nothing_is_owed() {
        let mut out = Output::default();
        out.local(|b| b.extend_from_slice(b"A"));
        out.local(|b| b.extend_from_slice(b"B"));
        assert_eq!(out.buf, b"AB");
        assert!(out.waiting.is_empty());
    }

    #[test]
    fn replies_leave_in_request_order() {
        let mut out = Output::default();
        out.local(|b| b.extend_from_slice(b"1"));
        out.owe_remote(2, false, 0);
        out.local(|b| b.extend_from_slice(b"3"));
        out.owe_remote(1, false, 0);
        out.owe_remote(2, false, 0);
        out.local(|b| b.extend_from_slice(b"6"));
        out.fill_remote(1, b"4");
        assert_eq!(out.buf, b"1");
        out.fill_remote(2, b"2");
        assert_eq!(out.buf, b"1234");
        out.fill_remote(2, b"5");
        assert_eq!(out.buf, b"123456");
        assert!(out.owed.is_empty() && out.waiting.is_empty());
    }

    #[test]
    fn empty_remote_replies_release_what_follows() {
        let mut out = Output::default();
        out.owe_remote(1, false, 0);
        out.local(|b| b.extend_from_slice(b"END\r\n"));
        out.fill_remote(1, b"");
        assert_eq!(out.buf, b"END\r\n");
        assert!(out.owed.is_empty());
    }

    #[test]
    fn input_drops_discarded_bytes_as_they_arrive() {
        let mut input = Input::default();
        let mut source: &[u8] = b"set x 0 0 5\r\nab";
        input.read_from(&mut source).unwrap();
        input.consume(13, 7);
        assert!(input.is_empty());
        let mut rest: &[u8] = b"cde\r\nget x\r\n";
        input.read_from(&mut rest).unwrap();
        assert_eq!(input.pending(), b"get x\r\n");
    }

    #[test]
    fn input_reports_eof() {
        let mut input = Input::default();
        let mut empty: &[u8] = b"";
        assert_eq!(input.read_from(&mut empty).unwrap(), ReadOutcome::Closed);
    }

    #[test]
    fn output_writes_and_resets() {
        let mut out = Output::default();
        out.local(|b| b.extend_from_slice(b"STORED\r\n"));
        let mut sink = Vec::new();
        assert_eq!(out.write_to(&mut sink).unwrap(), 8);
        assert!(out.is_drained());
        assert_eq!(sink, b"STORED\r\n");
    }
}
