//! Runs parsed requests against a shard and encodes the outcomes: the one place that
//! knows both protocol types and storage types.
//!
//! Keyed commands run on the worker that owns the key (locally, or after forwarding);
//! everything else runs where it arrived. Each storage outcome maps to its wire reply
//! in one `match` that names every variant, so a new outcome cannot go unanswered.

use std::sync::atomic::Ordering;

use crate::protocol::reply::{self, Status};
use crate::protocol::text::{Command, FlushDelay, GetKind, ShutdownMode, StoreKind, StoreRequest};
use crate::protocol::ErrorReply;
use crate::stats::{Counters, Stat};
use crate::storage::{
    Access, Arith, ArithOutcome, DeleteOutcome, Key, Lookup, Miss, Shard, Store, StoreMode,
    StoreOutcome, TouchOutcome,
};

use super::report;
use super::Shared;

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading requests.
    Continue,
    /// Close once every earlier reply has been written (`quit`).
    Quit,
    /// Close now without a reply (`shutdown`).
    Close,
}

/// The worker state a request runs with.
pub struct Exec<'a> {
    /// The worker's own shard.
    pub shard: &'a mut Shard,
    /// The worker's counters.
    pub counters: &'a Counters,
    /// Process-wide state.
    pub shared: &'a Shared,
}

impl Exec<'_> {
    fn realtime(&self, exptime: i32) -> u32 {
        self.shared.clock.realtime(i64::from(exptime))
    }

    fn key<'k>(&self, bytes: &'k [u8]) -> Key<'k> {
        self.shared.hasher.key(bytes)
    }
}

/// Writes `write`'s reply unless the request asked for none.
fn unless_quiet(noreply: bool, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    if !noreply {
        write(out);
    }
}

/// One key of a get: a `VALUE` block on a hit, nothing on a miss.
pub fn get_one(ex: &mut Exec<'_>, key: &[u8], kind: GetKind, out: &mut Vec<u8>) {
    let touch = kind.touch().map(|t| ex.realtime(t));
    let access = Access {
        touch,
        no_bump: false,
    };
    let key = ex.key(key);
    let hit = match ex.shard.get(key, access) {
        Lookup::Hit(item) => {
            let cas = kind.with_cas().then(|| item.cas());
            reply::value_header(out, key.bytes, item.flags(), item.value_len(), cas);
            item.write_value(out);
            out.extend_from_slice(b"\r\n");
            None
        }
        Lookup::Miss(miss) => Some(miss),
    };
    count_get(ex.counters, touch.is_some(), hit);
}

fn count_get(counters: &Counters, touch: bool, miss: Option<Miss>) {
    let (cmd, hit, missed) = if touch {
        (Stat::cmd_touch, Stat::touch_hits, Stat::touch_misses)
    } else {
        (Stat::cmd_get, Stat::get_hits, Stat::get_misses)
    };
    counters.incr(cmd);
    match miss {
        None => counters.incr(hit),
        Some(miss) => {
            counters.incr(missed);
            match miss {
                Miss::Expired if !touch => counters.incr(Stat::get_expired),
                Miss::Flushed if !touch => counters.incr(Stat::get_flushed),
                Miss::NotFound | Miss::Expired | Miss::Flushed => {}
            }
        }
    }
}

/// This shard's part of `stats cachedump`: `ITEM <key> [<bytes> b; <expiry> s]` lines,
/// the expiry as a Unix time or 0. Each worker lists up to `limit` keys, so a listing
/// over several workers can hold up to `limit` keys from each.
pub fn cachedump(ex: &mut Exec<'_>, class: u8, limit: u32, out: &mut Vec<u8>) {
    let epoch = ex.shared.clock.epoch();
    ex.shard.dump(class, limit as usize, |item| {
        let expiry = match item.exptime() {
            0 => 0,
            t => epoch + i64::from(t),
        };
        out.extend_from_slice(b"ITEM ");
        out.extend_from_slice(item.key());
        let tail = format!(" [{} b; {expiry} s]\r\n", item.value_len());
        out.extend_from_slice(tail.as_bytes());
    });
}

/// A command with one key, run on the worker that owns the key.
pub fn keyed(ex: &mut Exec<'_>, command: &Command<'_>, out: &mut Vec<u8>) {
    match *command {
        Command::Store(request) => store(ex, &request, out),
        Command::TooLarge { kind, key, noreply } => too_large(ex, kind, key, noreply, out),
        Command::Delete { key, noreply } => delete(ex, key, noreply, out),
        Command::Arith {
            key,
            incr,
            delta,
            noreply,
        } => arith(ex, key, incr, delta, noreply, out),
        Command::Touch {
            key,
            exptime,
            noreply,
        } => touch(ex, key, exptime, noreply, out),
        _ => debug_assert!(false, "not a keyed command: {command:?}"),
    }
}

fn store_mode(kind: StoreKind) -> StoreMode {
    match kind {
        StoreKind::Set => StoreMode::Set,
        StoreKind::Add => StoreMode::Add,
        StoreKind::Replace => StoreMode::Replace,
        StoreKind::Append => StoreMode::Append,
        StoreKind::Prepend => StoreMode::Prepend,
        StoreKind::Cas(unique) => StoreMode::Cas(unique),
    }
}

fn store(ex: &mut Exec<'_>, request: &StoreRequest<'_>, out: &mut Vec<u8>) {
    let store = Store {
        key: ex.key(request.key),
        mode: store_mode(request.kind),
        flags: request.flags,
        exptime: ex.realtime(request.exptime),
        value: request.data,
    };
    let outcome = ex.shard.store(store);
    count_store(ex.counters, request.kind, outcome);
    unless_quiet(request.noreply, out, |out| store_reply(outcome, out));
}

fn store_reply(outcome: StoreOutcome, out: &mut Vec<u8>) {
    match outcome {
        StoreOutcome::Stored { .. } => Status::Stored.write(out),
        StoreOutcome::NotStored => Status::NotStored.write(out),
        StoreOutcome::Exists => Status::Exists.write(out),
        StoreOutcome::NotFound => Status::NotFound.write(out),
        StoreOutcome::TooLarge => ErrorReply::TooLarge.write(out),
        StoreOutcome::NoMemory => ErrorReply::OutOfMemory.write(out),
    }
}

fn count_store(counters: &Counters, kind: StoreKind, outcome: StoreOutcome) {
    counters.incr(Stat::cmd_set);
    let is_cas = matches!(kind, StoreKind::Cas(_));
    let stat = match outcome {
        StoreOutcome::Stored { .. } if is_cas => Stat::cas_hits,
        StoreOutcome::Exists => Stat::cas_badval,
        StoreOutcome::NotFound => Stat::cas_misses,
        StoreOutcome::TooLarge => Stat::store_too_large,
        StoreOutcome::NoMemory => Stat::store_no_memory,
        StoreOutcome::Stored { .. } | StoreOutcome::NotStored => return,
    };
    counters.incr(stat);
}

/// A value over `-I`: the data was discarded unread; a `set` also removes the old value
/// so that stale data cannot outlive the failed write.
fn too_large(ex: &mut Exec<'_>, kind: StoreKind, key: &[u8], noreply: bool, out: &mut Vec<u8>) {
    if kind == StoreKind::Set {
        let key = ex.key(key);
        ex.shard.discard(key);
    }
    ex.counters.incr(Stat::store_too_large);
    unless_quiet(noreply, out, |out| ErrorReply::TooLarge.write(out));
}

fn delete(ex: &mut Exec<'_>, key: &[u8], noreply: bool, out: &mut Vec<u8>) {
    let key = ex.key(key);
    let (stat, status) = match ex.shard.delete(key, 0) {
        DeleteOutcome::Deleted => (Stat::delete_hits, Status::Deleted),
        DeleteOutcome::NotFound => (Stat::delete_misses, Status::NotFound),
        DeleteOutcome::Exists => (Stat::delete_misses, Status::Exists),
    };
    ex.counters.incr(stat);
    unless_quiet(noreply, out, |out| status.write(out));
}

fn arith(ex: &mut Exec<'_>, key: &[u8], incr: bool, delta: u64, noreply: bool, out: &mut Vec<u8>) {
    let key = ex.key(key);
    let request = Arith {
        incr,
        delta,
        initial: None,
        cas: 0,
    };
    let outcome = ex.shard.arith(key, request);
    let (hit, miss) = if incr {
        (Stat::incr_hits, Stat::incr_misses)
    } else {
        (Stat::decr_hits, Stat::decr_misses)
    };
    match outcome {
        ArithOutcome::Value { .. } => ex.counters.incr(hit),
        ArithOutcome::NotFound => ex.counters.incr(miss),
        ArithOutcome::NonNumeric | ArithOutcome::Exists | ArithOutcome::NoMemory => {}
    }
    unless_quiet(noreply, out, |out| arith_reply(outcome, out));
}

fn arith_reply(outcome: ArithOutcome, out: &mut Vec<u8>) {
    match outcome {
        ArithOutcome::Value { value, .. } => reply::number(out, value),
        ArithOutcome::NotFound => Status::NotFound.write(out),
        ArithOutcome::NonNumeric => ErrorReply::NonNumeric.write(out),
        ArithOutcome::Exists => Status::Exists.write(out),
        ArithOutcome::NoMemory => ErrorReply::ArithOutOfMemory.write(out),
    }
}

fn touch(ex: &mut Exec<'_>, key: &[u8], exptime: i32, noreply: bool, out: &mut Vec<u8>) {
    let exptime = ex.realtime(exptime);
    let key = ex.key(key);
    let (stat, status) = match ex.shard.touch(key, exptime) {
        TouchOutcome::Touched => (Stat::touch_hits, Status::Touched),
        TouchOutcome::NotFound => (Stat::touch_misses, Status::NotFound),
    };
    ex.counters.incr(Stat::cmd_touch);
    ex.counters.incr(stat);
    unless_quiet(noreply, out, |out| status.write(out));
}

/// A command without a key, run where it arrived.
pub fn global(ex: &mut Exec<'_>, command: &Command<'_>, out: &mut Vec<u8>) -> Flow {
    match *command {
        Command::Error { reply, noreply } => unless_quiet(noreply, out, |out| reply.write(out)),
        Command::Version => reply::version(out, crate::VERSION),
        Command::Quit => return Flow::Quit,
        Command::Shutdown(mode) => return shutdown(ex.shared, mode, out),
        Command::Verbosity { level, noreply } => {
            ex.shared.set_verbosity(level);
            unless_quiet(noreply, out, |out| Status::Ok.write(out));
        }
        Command::CacheMemlimit { megabytes, noreply } => {
            let result = cache_memlimit(ex.shared, megabytes);
            unless_quiet(noreply, out, |out| match result {
                Ok(()) => Status::Ok.write(out),
                Err(error) => error.write(out),
            });
        }
        Command::FlushAll { delay, noreply } => flush_all(ex, delay, noreply, out),
        Command::Stats(group) => report::stats(ex.shared, group, out),
        Command::MetaNoop => Status::MetaNoop.write(out),
        Command::Get { .. }
        | Command::Store(_)
        | Command::TooLarge { .. }
        | Command::Delete { .. }
        | Command::Arith { .. }
        | Command::Touch { .. } => debug_assert!(false, "a keyed command: {command:?}"),
    }
    Flow::Continue
}

fn shutdown(shared: &Shared, mode: ShutdownMode, out: &mut Vec<u8>) -> Flow {
    if !shared.config.shutdown_enabled {
        ErrorReply::ShutdownDisabled.write(out);
        return Flow::Continue;
    }
    match mode {
        ShutdownMode::Now | ShutdownMode::Graceful => {
            tracing::warn!(?mode, "shutdown requested by a client");
            shared.request_shutdown();
            Flow::Close
        }
        ShutdownMode::Invalid => {
            ErrorReply::InvalidShutdownMode.write(out);
            Flow::Continue
        }
    }
}

/// `cache_memlimit`: memcached's bounds, then the page pool's own.
fn cache_memlimit(shared: &Shared, megabytes: u32) -> Result<(), ErrorReply> {
    if megabytes < 8 {
        return Err(ErrorReply::MemlimitTooSmall);
    }
    if megabytes > 1_000_000_000 {
        return Err(ErrorReply::MemlimitUnits);
    }
    let bytes = usize::try_from(megabytes).map_err(|_| ErrorReply::MemlimitFailed)? << 20;
    if !shared.pool.set_limit(bytes) {
        return Err(ErrorReply::MemlimitFailed);
    }
    shared.memory_limit.store(bytes, Ordering::Relaxed);
    tracing::info!(megabytes, "memory limit changed");
    Ok(())
}

/// `flush_all`, with memcached's arithmetic: a flush at `t` invalidates items last
/// written at or before `t - 1`; an immediate flush also invalidates everything stored
/// earlier in the current second, by CAS, and replaces any pending delayed flush.
fn flush_all(ex: &mut Exec<'_>, delay: FlushDelay, noreply: bool, out: &mut Vec<u8>) {
    ex.counters.incr(Stat::cmd_flush);
    if !ex.shared.config.flush_enabled {
        return unless_quiet(noreply, out, |out| ErrorReply::FlushDisabled.write(out));
    }
    let flush = &ex.shared.flush;
    match delay {
        FlushDelay::Invalid => {
            return unless_quiet(noreply, out, |out| ErrorReply::InvalidExptime.write(out))
        }
        FlushDelay::Now => {
            flush.flush_at(ex.shared.clock.now().saturating_sub(1));
            flush.flush_now();
        }
        FlushDelay::After(t) => flush.flush_at(ex.realtime(t).saturating_sub(1)),
    }
    unless_quiet(noreply, out, |out| Status::Ok.write(out));
}
