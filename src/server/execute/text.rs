//! The text protocol's commands: run against the shard, answered in memcached's words.

use crate::protocol::reply::{self, Status};
use crate::protocol::text::{
    Command, FlushDelay, GetKind, ShutdownMode, StatsGroup, StoreKind, StoreRequest,
};
use crate::protocol::ErrorReply;
use crate::stats::{Counters, Stat};
use crate::storage::{
    Access, Arith, ArithOutcome, DeleteOutcome, Lookup, Read, Reader, Store, StoreOutcome,
    TouchOutcome,
};

use super::{cache_memlimit, count_arith, count_get, count_store, flush, Exec, Flow, Refusal};
use crate::server::report;
use crate::server::Shared;
use crate::storage::StoreMode;

/// Writes `write`'s reply unless the request asked for none.
fn unless_quiet(noreply: bool, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    if !noreply {
        write(out);
    }
}

/// One key of a get: a `VALUE` block on a hit, nothing on a miss.
pub fn get_one(ex: &mut Exec<'_>, key: &[u8], kind: GetKind, out: &mut Vec<u8>) {
    let touch = kind.touch().map(|t| ex.realtime(i64::from(t)));
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

/// One key of a get, read from another worker's shard without that worker (see
/// [`crate::storage::Reader`]): a `VALUE` block on a hit, nothing on a miss, and
/// [`Read::Unsure`] (nothing written, nothing counted) when the owner must answer.
pub fn get_remote(
    counters: &Counters,
    shared: &Shared,
    reader: &Reader,
    key: &[u8],
    kind: GetKind,
    out: &mut Vec<u8>,
) -> Read {
    debug_assert!(
        kind.touch().is_none(),
        "a touch changes the item: the owner runs it"
    );
    let now = shared.clock.now();
    let read = reader.get(shared.hasher.key(key), now, out, |out, found| {
        let cas = kind.with_cas().then_some(found.cas);
        reply::value_header(out, key, found.flags, found.len, cas);
    });
    match read {
        Read::Hit => {
            out.extend_from_slice(b"\r\n");
            count_get(counters, false, None);
        }
        Read::Miss(miss) => count_get(counters, false, Some(miss)),
        Read::Unsure => {}
    }
    read
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
        Command::Meta(ref request) => super::meta::run(ex, request, out),
        _ => debug_assert!(false, "not a keyed command: {command:?}"),
    }
}

fn store(ex: &mut Exec<'_>, request: &StoreRequest<'_>, out: &mut Vec<u8>) {
    let store = Store {
        key: ex.key(request.key),
        mode: store_mode(request.kind),
        flags: request.flags,
        exptime: ex.realtime(i64::from(request.exptime)),
        value: request.data,
    };
    let outcome = ex.shard.store(store);
    count_store(ex.counters, store.mode, outcome);
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
    count_arith(ex.counters, incr, outcome);
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
    let exptime = ex.realtime(i64::from(exptime));
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
                Err(refusal) => memlimit_error(refusal).write(out),
            });
        }
        Command::FlushAll { delay, noreply } => flush_all(ex, delay, noreply, out),
        Command::Stats(StatsGroup::Reset) => {
            report::stats(ex.shared, StatsGroup::Reset, &mut report::TextSink(out));
            Status::Reset.write(out);
        }
        Command::Stats(group) => report::stats(ex.shared, group, &mut report::TextSink(out)),
        Command::MetaNoop => Status::MetaNoop.write(out),
        Command::Get { .. }
        | Command::Store(_)
        | Command::TooLarge { .. }
        | Command::Delete { .. }
        | Command::Arith { .. }
        | Command::Touch { .. }
        | Command::Meta(_) => debug_assert!(false, "a keyed command: {command:?}"),
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

fn memlimit_error(refusal: Refusal) -> ErrorReply {
    match refusal {
        Refusal::TooSmall => ErrorReply::MemlimitTooSmall,
        Refusal::Units => ErrorReply::MemlimitUnits,
        Refusal::Disabled | Refusal::Failed => ErrorReply::MemlimitFailed,
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

/// `flush_all`: `-F` is checked before the delay, as memcached checks it.
fn flush_all(ex: &mut Exec<'_>, delay: FlushDelay, noreply: bool, out: &mut Vec<u8>) {
    let at = match delay {
        FlushDelay::Now => None,
        FlushDelay::After(t) => Some(i64::from(t)),
        FlushDelay::Invalid if ex.shared.config.flush_enabled => {
            return unless_quiet(noreply, out, |out| ErrorReply::InvalidExptime.write(out));
        }
        FlushDelay::Invalid => None,
    };
    let reply = match flush(ex, at) {
        Ok(()) => Ok(Status::Ok),
        Err(_) => Err(ErrorReply::FlushDisabled),
    };
    unless_quiet(noreply, out, |out| match reply {
        Ok(status) => status.write(out),
        Err(error) => error.write(out),
    });
}
