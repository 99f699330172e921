//! Serving one connection: parse the requests in its buffer, run each here or forward it
//! to the worker that owns its key, and keep the replies in request order.
//!
//! A connection speaks the text protocol (classic and meta commands) or the binary one,
//! decided by its first byte as memcached decides it (`-B auto`): 0x80 is binary. Both
//! protocols share the forwarding: a keyed request for another worker travels as its own
//! bytes and is parsed again by the owner, which answers in the same protocol.

use std::sync::Arc;

use super::connection::{Closing, Conn, Ending, Held, Output, Wire};
use super::execute::{self, Exec, Flow};
use super::router::{owner, Batch, ConnId, Forwarder, Message, RecordKind};
use super::sasl::Session;
use super::worker::CloseReason;
use super::Shared;
use crate::config::Protocols;
use crate::protocol::binary::{self, Header, Opcode, Packet, Status};
use crate::protocol::meta::{KeyRoom, MetaRequest};
use crate::protocol::reply::Status as TextStatus;
use crate::protocol::text::{self, Command, GetKind, Keys, Limits, Parse, Request, StatsGroup};
use crate::protocol::ErrorReply;
use crate::stats::Counters;
use crate::storage::{accounted_size, Read, Shard};

/// The state requests run with, apart from the connections.
pub(super) struct Core {
    pub(super) id: usize,
    pub(super) shard: Shard,
    pub(super) forwarder: Forwarder,
    pub(super) shared: Arc<Shared>,
    limits: Limits,
}

impl Core {
    /// The state of worker `id`.
    pub(super) fn new(id: usize, shard: Shard, forwarder: Forwarder, shared: Arc<Shared>) -> Core {
        let limits = limits(&shared);
        Core {
            id,
            shard,
            forwarder,
            shared,
            limits,
        }
    }

    /// This worker's counters.
    pub(super) fn counters(&self) -> &Counters {
        self.shared.counters.worker(self.id)
    }

    fn exec(&mut self) -> (Exec<'_>, &mut Forwarder) {
        let exec = Exec {
            shard: &mut self.shard,
            counters: self.shared.counters.worker(self.id),
            shared: &self.shared,
        };
        (exec, &mut self.forwarder)
    }

    /// Runs requests another worker forwarded, and sends the batch back with replies.
    pub(super) fn run_forwarded(&mut self, mut batch: Batch) {
        let limits = self.limits;
        let (mut exec, _) = self.exec();
        let Batch {
            origin,
            records,
            data,
            replies,
            reply_ends,
            ..
        } = &mut batch;
        for record in records.iter() {
            let bytes = &data[record.range.clone()];
            let start = replies.len();
            run_record(&mut exec, &limits, record.kind, bytes, replies);
            tracing::debug!(
                from = *origin,
                request = %first_line(bytes),
                reply = %first_line(&replies[start..]),
                "forwarded request"
            );
            reply_ends.push(replies.len());
        }
        let origin = batch.origin;
        self.shared.mailboxes[origin].send(Message::Replies(batch));
    }
}

/// Runs one forwarded request. Its bytes are exactly one whole request, already parsed
/// once by the worker that received it.
fn run_record(
    exec: &mut Exec<'_>,
    limits: &Limits,
    kind: RecordKind,
    bytes: &[u8],
    out: &mut Vec<u8>,
) {
    match kind {
        RecordKind::Text => match text::parse(bytes, limits) {
            Parse::Request(request) => execute::text::keyed(exec, &request.command, out),
            Parse::Incomplete { .. } | Parse::Close(_) => unparsable(out),
        },
        RecordKind::TextGet(kind) => execute::text::get_one(exec, bytes, kind, out),
        RecordKind::CacheDump { class, limit } => {
            execute::text::cachedump(exec, class, limit, out);
        }
        RecordKind::Binary => match binary::parse(bytes) {
            binary::Parse::Request(packet) => execute::binary::keyed(exec, &packet, out),
            _ => unparsable(out),
        },
        RecordKind::BinaryTooLarge => too_large_prefix(exec, bytes, out),
    }
}

fn unparsable(out: &mut Vec<u8>) {
    debug_assert!(false, "a forwarded request did not parse");
    ErrorReply::Error.write(out);
}

/// The parser's view of `-I`, counted as the shard counts item sizes.
fn limits(shared: &Shared) -> Limits {
    let slab = &shared.config.slab;
    let base = accounted_size(0, 0, 0, slab.cas_enabled);
    Limits {
        item_size_max: slab.item_size_max,
        item_overhead: base,
        flags_overhead: accounted_size(0, 0, 1, slab.cas_enabled) - base,
    }
}

/// How serving a connection ended this turn.
pub(super) enum Served {
    /// Out of complete requests; waiting for more bytes.
    Waiting,
    /// `-R` requests served; more are buffered.
    Yielded,
    /// Output or owed replies are backed up; waiting for the client to read.
    Paused,
    /// The next request must wait until every reply owed by other workers has arrived.
    Barrier,
    /// Close the connection.
    Close(CloseReason),
}

/// Parses and runs up to `-R` requests from the connection's buffer.
pub(super) fn run_requests(core: &mut Core, conn: &mut Conn, slot: usize) -> Served {
    let now = core.shared.clock.now();
    let id = ConnId {
        slot,
        generation: conn.generation,
    };
    for _ in 0..core.shared.config.reqs_per_event {
        if conn.closing != Closing::Open || conn.input.discarding() {
            return Served::Waiting;
        }
        if conn.output.is_backed_up() {
            return Served::Paused;
        }
        let flow = if conn.held.is_empty() {
            match next_request(core, conn, id) {
                Step::Ran(flow) => flow,
                Step::Held => continue,
                Step::Stop(served) => return served,
            }
        } else {
            run_held(core, conn, id)
        };
        conn.info.touch(now);
        match flow {
            Flow::Continue => {}
            Flow::Quit => conn.closing = Closing::AfterReplies(Ending::Quit),
            Flow::Close => return Served::Close(CloseReason::Shutdown),
        }
    }
    if conn.input.is_empty() && conn.held.is_empty() {
        Served::Waiting
    } else {
        Served::Yielded
    }
}

/// What parsing the next request did.
enum Step {
    /// It ran (or was forwarded).
    Ran(Flow),
    /// It is a refused command whose data block is still arriving: held back.
    Held,
    /// Nothing to run now.
    Stop(Served),
}

fn next_request(core: &mut Core, conn: &mut Conn, id: ConnId) -> Step {
    let Some(&first) = conn.input.pending().first() else {
        return Step::Stop(Served::Waiting);
    };
    let wire = *conn
        .wire
        .get_or_insert_with(|| wire_for(core.shared.config.protocols, first));
    match wire {
        Wire::Text => text_step(core, conn, id),
        Wire::Binary => binary_step(core, conn, id),
    }
}

/// The protocol a connection speaks, from its first byte and `-B`.
fn wire_for(protocols: Protocols, first: u8) -> Wire {
    match protocols {
        Protocols::Auto if first == binary::REQUEST_MAGIC => Wire::Binary,
        Protocols::Auto | Protocols::Ascii => Wire::Text,
        Protocols::Binary => Wire::Binary,
    }
}

/// Runs a held request: a refused command once its data block has been dropped, or the
/// rest of a multi-get once the client has read.
fn run_held(core: &mut Core, conn: &mut Conn, id: ConnId) -> Flow {
    let bytes = std::mem::take(&mut conn.held.bytes);
    let flow = match (conn.held.get.take(), conn.wire) {
        (Some((kind, from)), _) => {
            if let Some(rest) = route_get(core, &mut conn.output, id, kind, &bytes[from..]) {
                conn.held.get = Some((kind, from + rest));
                conn.held.bytes = bytes;
                return Flow::Continue;
            }
            Flow::Continue
        }
        (None, Some(Wire::Binary)) => route_too_large(core, &mut conn.output, id, &bytes),
        (None, _) => match text::parse(&bytes, &core.limits) {
            Parse::Request(request) => {
                route_text(core, &mut conn.output, &mut conn.held, id, &request, &bytes)
            }
            Parse::Incomplete { .. } | Parse::Close(_) => {
                debug_assert!(false, "a held request did not parse again");
                Flow::Continue
            }
        },
    };
    flow
}

fn text_step(core: &mut Core, conn: &mut Conn, id: ConnId) -> Step {
    let pending = conn.input.pending();
    let (len, discard, flow) = match text::parse(pending, &core.limits) {
        Parse::Request(request) => {
            let (len, discard) = (request.len, request.discard);
            let raw = &pending[..len];
            if len + discard > pending.len() {
                conn.held.bytes.extend_from_slice(raw);
                conn.input.consume(len, discard);
                return Step::Held;
            }
            if must_wait(&request.command) && conn.output.owes_remote() {
                return Step::Stop(Served::Barrier);
            }
            let flow = route_text(core, &mut conn.output, &mut conn.held, id, &request, raw);
            (len, discard, flow)
        }
        Parse::Incomplete { need } => {
            // A line without its newline yet (a long multi-get) needs at least one byte
            // more than is buffered, however much that is.
            let need = need.unwrap_or(pending.len() + 1);
            conn.input.expect(need);
            return Step::Stop(Served::Waiting);
        }
        Parse::Close(reason) => return Step::Stop(Served::Close(CloseReason::Protocol(reason))),
    };
    conn.input.consume(len, discard);
    Step::Ran(flow)
}

/// Whether a keyed text command's reply may carry an item's value (a meta command may;
/// storage, delete, arithmetic and touch replies are one short line).
fn carries_value(command: &Command<'_>) -> bool {
    matches!(command, Command::Meta(_))
}

/// Whether a command changes what every shard holds, so that it must not run before the
/// connection's earlier requests that other workers are still running (`flush_all`).
fn must_wait(command: &Command<'_>) -> bool {
    matches!(command, Command::FlushAll { .. })
}

/// Runs one key of a multi-get after another, and stops when the connection's output
/// backs up (a client that asks for many large values and reads slowly): then it answers
/// where in `keys` the keys not yet run start, to be held until the client has read.
/// `END` follows the last key.
fn route_get(
    core: &mut Core,
    output: &mut Output,
    id: ConnId,
    kind: GetKind,
    keys: &[u8],
) -> Option<usize> {
    let me = core.id;
    let (mut exec, forwarder) = core.exec();
    let shared = exec.shared;
    let mut iter = Keys::new(keys);
    while let Some(key) = iter.next() {
        let target = owner(shared.hasher.hash(key), shared.config.threads);
        if target == me {
            output
                .local(|out| logged(out, |out| execute::text::get_one(&mut exec, key, kind, out)));
        } else if !read_remote(&exec, output, target, key, kind) {
            forwarder.push(target, id, RecordKind::TextGet(kind), key);
            output.owe_remote(target, true, key.len());
        }
        let rest = iter.as_bytes();
        if output.is_backed_up() && rest.iter().any(|&b| b != b' ') {
            return Some(keys.len() - rest.len());
        }
    }
    output.local(|out| TextStatus::End.write(out));
    None
}

/// Reads one key of a get from the shard of worker `target` without that worker, when
/// the get does not change the item and none of this connection's earlier requests is
/// still running there; answers whether that settled it (false: forward).
fn read_remote(
    exec: &Exec<'_>,
    output: &mut Output,
    target: usize,
    key: &[u8],
    kind: GetKind,
) -> bool {
    if kind.touch().is_some() || output.owes_to(target) {
        return false;
    }
    let reader = &exec.shared.readers[target];
    let read = output
        .local(|out| execute::text::get_remote(exec.counters, exec.shared, reader, key, kind, out));
    read != Read::Unsure
}

/// As [`read_remote`], for an `mg` that only reads.
fn read_meta_remote(
    exec: &Exec<'_>,
    output: &mut Output,
    target: usize,
    command: &Command<'_>,
) -> bool {
    let Command::Meta(request @ MetaRequest::Get(args)) = command else {
        return false;
    };
    if !execute::meta::reads_only(args) || output.owes_to(target) {
        return false;
    }
    let reader = &exec.shared.readers[target];
    let read = output.local(|out| {
        execute::meta::get_remote(exec.counters, exec.shared, reader, request, args, out)
    });
    read != Read::Unsure
}

/// Runs a text request here, or forwards its keyed parts to the workers that own them.
fn route_text(
    core: &mut Core,
    output: &mut Output,
    held: &mut Held,
    id: ConnId,
    request: &Request<'_>,
    raw: &[u8],
) -> Flow {
    let me = core.id;
    tracing::debug!(worker = me, slot = id.slot, request = %first_line(raw), "request");
    if let Command::Get { kind, keys } = request.command {
        if let Some(rest) = route_get(core, output, id, kind, keys.as_bytes()) {
            held.bytes.extend_from_slice(&keys.as_bytes()[rest..]);
            held.get = Some((kind, 0));
        }
        return Flow::Continue;
    }
    let (mut exec, forwarder) = core.exec();
    let shared = exec.shared;
    let (hasher, workers) = (&shared.hasher, shared.config.threads);
    match request.command {
        Command::Stats(StatsGroup::CacheDump { class, limit }) => {
            for target in 0..workers {
                if target == me {
                    output.local(|out| execute::text::cachedump(&mut exec, class, limit, out));
                } else {
                    forwarder.push(target, id, RecordKind::CacheDump { class, limit }, &[]);
                    output.owe_remote(target, true, 0);
                }
            }
            output.local(|out| TextStatus::End.write(out));
            Flow::Continue
        }
        ref command => match routing_key(command, &mut KeyRoom::new()) {
            Some(key) => {
                let target = owner(hasher.hash(key), workers);
                if target == me {
                    output.local(|out| {
                        logged(out, |out| execute::text::keyed(&mut exec, command, out))
                    });
                } else if !read_meta_remote(&exec, output, target, command) {
                    forwarder.push(target, id, RecordKind::Text, raw);
                    output.owe_remote(target, carries_value(command), raw.len());
                }
                Flow::Continue
            }
            None => output
                .local(|out| logged(out, |out| execute::text::global(&mut exec, command, out))),
        },
    }
}

/// The key whose hash picks the worker for a single-key command: as sent, or for a meta
/// command's base64 key (`b`), decoded into `room`, since the cache stores (and clients
/// hash) the decoded key.
fn routing_key<'r>(command: &Command<'r>, room: &'r mut KeyRoom) -> Option<&'r [u8]> {
    match command {
        Command::Meta(meta) => Some(meta.key().bytes(room)),
        _ => command.single_key(),
    }
}

/// Parses and runs the binary request at the front of the buffer. The header decides
/// first, before any body is waited for: a malformed one is refused (and the connection
/// closed), a request before SASL authentication too, and a store too large for `-I` has
/// its value dropped unread.
fn binary_step(core: &mut Core, conn: &mut Conn, id: ConnId) -> Step {
    if let Some(step) = refuse_unauthenticated(core, conn) {
        return step;
    }
    if let binary::Parse::Incomplete { .. } = binary::parse(conn.input.pending()) {
        if let Some(step) = binary_too_large(core, conn) {
            return step;
        }
    }
    let Conn {
        input,
        output,
        session,
        ..
    } = conn;
    let pending = input.pending();
    let (len, flow) = match binary::parse(pending) {
        binary::Parse::Request(packet) => {
            if packet.opcode().loud() == Opcode::Flush && output.owes_remote() {
                return Step::Stop(Served::Barrier);
            }
            let raw = &pending[..packet.len];
            (
                packet.len,
                route_binary(core, output, session, id, &packet, raw),
            )
        }
        binary::Parse::Incomplete { need } => {
            input.expect(need);
            return Step::Stop(Served::Waiting);
        }
        binary::Parse::Invalid {
            error,
            len,
            opaque,
            opcode,
        } => {
            tracing::info!(?error, "binary protocol error; closing after the reply");
            if let Some(status) = error.status() {
                output.local(|out| binary::error(out, opcode, status, opaque));
            }
            (len, Flow::Quit)
        }
    };
    input.consume(len, 0);
    Step::Ran(flow)
}

/// Under `-S`, a request other than SASL and VERSION from a connection that has not
/// authenticated is answered `Auth failure.` and the connection closed, as soon as its
/// header is in: nothing else about it is looked at.
fn refuse_unauthenticated(core: &Core, conn: &mut Conn) -> Option<Step> {
    let header = Header::decode(conn.input.pending())?;
    let sasl = core.shared.config.sasl.is_some();
    if conn.session.allows(sasl, header.opcode) || header.magic != binary::REQUEST_MAGIC {
        return None;
    }
    let (opcode, opaque) = (header.opcode, header.opaque);
    conn.output
        .local(|out| binary::error(out, opcode, Status::AuthError, opaque));
    Some(Step::Ran(Flow::Quit))
}

/// The value length a header declares, if its extras and key fit in its body.
fn value_len(header: &Header) -> Option<usize> {
    let fixed = u32::from(header.extras_len) + u32::from(header.key_len);
    header.body_len.checked_sub(fixed).map(|n| n as usize)
}

/// A store whose value would exceed `-I` is not buffered: its header, extras and key are
/// held, the value is dropped as it arrives, and then it is answered E2BIG, as memcached
/// answers it. Any other packet that large is answered E2BIG and the connection closed.
fn binary_too_large(core: &mut Core, conn: &mut Conn) -> Option<Step> {
    let pending = conn.input.pending();
    let header = Header::decode(pending)?;
    let value_len = value_len(&header)?;
    let key_len = usize::from(header.key_len);
    if !core.limits.too_large(key_len, 0, value_len) || key_len > binary::KEY_MAX {
        return None;
    }
    let opaque = header.opaque;
    let store = matches!(
        header.opcode.loud(),
        Opcode::Set | Opcode::Add | Opcode::Replace | Opcode::Append | Opcode::Prepend
    );
    if !store {
        let opcode = header.opcode;
        conn.output
            .local(|out| binary::error(out, opcode, Status::TooLarge, opaque));
        return Some(Step::Ran(Flow::Quit));
    }
    let prefix = binary::HEADER_LEN + usize::from(header.extras_len) + key_len;
    if pending.len() < prefix {
        conn.input.expect(prefix);
        return Some(Step::Stop(Served::Waiting));
    }
    let mut held = header;
    held.body_len = (prefix - binary::HEADER_LEN) as u32;
    held.write(&mut conn.held.bytes);
    conn.held
        .bytes
        .extend_from_slice(&pending[binary::HEADER_LEN..prefix]);
    conn.input.consume(prefix, value_len);
    Some(Step::Held)
}

/// Runs a binary request here, or forwards it to the worker that owns its key.
fn route_binary(
    core: &mut Core,
    output: &mut Output,
    session: &mut Session,
    id: ConnId,
    packet: &Packet<'_>,
    raw: &[u8],
) -> Flow {
    let me = core.id;
    let (mut exec, forwarder) = core.exec();
    let shared = exec.shared;
    let opcode = packet.opcode();
    tracing::debug!(worker = me, slot = id.slot, ?opcode, key = %packet.key.escape_ascii(), "request");
    if !execute::binary::is_keyed(opcode) {
        return output.local(|out| execute::binary::global(&mut exec, packet, session, out));
    }
    let target = owner(shared.hasher.hash(packet.key), shared.config.threads);
    if target == me {
        output.local(|out| execute::binary::keyed(&mut exec, packet, out));
        return Flow::Continue;
    }
    let reader = &shared.readers[target];
    let read = if output.owes_to(target) {
        Read::Unsure
    } else {
        output.local(|out| execute::binary::get_remote(&exec, reader, packet, out))
    };
    if read == Read::Unsure {
        forwarder.push(target, id, RecordKind::Binary, raw);
        output.owe_remote(target, execute::binary::returns_value(opcode), raw.len());
    }
    Flow::Continue
}

/// Answers a held too-large store on the worker that owns its key.
fn route_too_large(core: &mut Core, output: &mut Output, id: ConnId, prefix: &[u8]) -> Flow {
    let me = core.id;
    let (mut exec, forwarder) = core.exec();
    let shared = exec.shared;
    let key = prefix_key(prefix);
    let target = owner(shared.hasher.hash(key), shared.config.threads);
    if target == me {
        output.local(|out| too_large_prefix(&mut exec, prefix, out));
    } else {
        forwarder.push(target, id, RecordKind::BinaryTooLarge, prefix);
        output.owe_remote(target, false, prefix.len());
    }
    Flow::Continue
}

/// The key of a held store prefix: header, extras, key.
fn prefix_key(prefix: &[u8]) -> &[u8] {
    match Header::decode(prefix) {
        Some(h) => &prefix[binary::HEADER_LEN + h.extras_len as usize..],
        None => &[],
    }
}

fn too_large_prefix(exec: &mut Exec<'_>, prefix: &[u8], out: &mut Vec<u8>) {
    if let Some(header) = Header::decode(prefix) {
        let key = prefix_key(prefix);
        execute::binary::too_large(exec, header.opcode, header.opaque, key, out);
    }
}

/// The first line of a request or reply, escaped, for the `-vv` log.
pub(super) fn first_line(bytes: &[u8]) -> std::slice::EscapeAscii<'_> {
    let end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |n| n + 1);
    bytes[..end.min(256)].escape_ascii()
}

/// Runs `write`, then logs what it appended, at `-vv`.
fn logged<R>(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let start = out.len();
    let result = write(out);
    if out.len() > start {
        tracing::debug!(reply = %first_line(&out[start..]), bytes = out.len() - start, "reply");
    }
    result
}
