//! The binary protocol's commands: run against the shard, answered with memcached's
//! status codes.
//!
//! Quiet opcodes send nothing on success (and, for gets, nothing on a miss); errors are
//! always sent, as memcached sends them. Responses carry the request's opcode and opaque.

use crate::protocol::binary::{self, Opcode, Packet, Shortage, Status};
use crate::protocol::text::StatsGroup;
use crate::stats::Stat;
use crate::storage::{
    Access, Arith, ArithOutcome, DeleteOutcome, Initial, Lookup, Read, Reader, Store, StoreMode,
    StoreOutcome,
};

use super::{count_arith, count_get, count_store, flush, Exec, Flow};
use crate::server::report::{self, BinarySink};
use crate::server::sasl::{self, Session};

/// The exptime in an INCREMENT/DECREMENT that means "do not create the item".
const NO_CREATE: u32 = 0xffff_ffff;

/// A request with a key, run on the worker that owns the key.
pub fn keyed(ex: &mut Exec<'_>, packet: &Packet<'_>, out: &mut Vec<u8>) {
    match packet.opcode().loud() {
        Opcode::Get | Opcode::GetK => get(ex, packet, None, out),
        Opcode::Gat | Opcode::GatK | Opcode::Touch => {
            get(ex, packet, packet.touch_exptime(), out);
        }
        Opcode::Set | Opcode::Add | Opcode::Replace | Opcode::Append | Opcode::Prepend => {
            store(ex, packet, out);
        }
        Opcode::Delete => delete(ex, packet, out),
        Opcode::Increment | Opcode::Decrement => arith(ex, packet, out),
        other => debug_assert!(false, "not a keyed opcode: {other:?}"),
    }
}

/// Whether a request runs on the worker that owns its key.
pub fn is_keyed(opcode: Opcode) -> bool {
    matches!(
        opcode.loud(),
        Opcode::Get
            | Opcode::GetK
            | Opcode::Gat
            | Opcode::GatK
            | Opcode::Touch
            | Opcode::Set
            | Opcode::Add
            | Opcode::Replace
            | Opcode::Append
            | Opcode::Prepend
            | Opcode::Delete
            | Opcode::Increment
            | Opcode::Decrement
    )
}

/// A GET (GETQ, GETK, GETKQ) for a key in another worker's shard, read without that
/// worker (see [`crate::storage::Reader`]); anything else, and any read the owner must
/// settle, is [`Read::Unsure`] with nothing written.
pub fn get_remote(ex: &Exec<'_>, reader: &Reader, packet: &Packet<'_>, out: &mut Vec<u8>) -> Read {
    let (opcode, opaque) = (packet.opcode(), packet.opaque());
    if !matches!(opcode.loud(), Opcode::Get | Opcode::GetK) {
        return Read::Unsure;
    }
    let key = ex.key(packet.key);
    let read = reader.get(key, ex.shared.clock.now(), out, |out, found| {
        binary::get_hit_header(
            out,
            opcode,
            opaque,
            found.cas,
            found.flags,
            key.bytes,
            found.len,
        );
    });
    match read {
        Read::Hit => count_get(ex.counters, false, None),
        Read::Miss(miss) => {
            if !opcode.is_quiet() {
                binary::get_miss(out, opcode, opaque, key.bytes);
            }
            count_get(ex.counters, false, Some(miss));
        }
        Read::Unsure => {}
    }
    read
}

/// Whether a request's reply may carry an item's value (the get and gat family).
pub fn returns_value(opcode: Opcode) -> bool {
    matches!(
        opcode.loud(),
        Opcode::Get | Opcode::GetK | Opcode::Gat | Opcode::GatK
    )
}

/// Writes an error status; errors are sent even for quiet opcodes.
fn fail(out: &mut Vec<u8>, packet: &Packet<'_>, status: Status) {
    binary::error(out, packet.opcode(), status, packet.opaque());
}

fn get(ex: &mut Exec<'_>, packet: &Packet<'_>, touch: Option<u32>, out: &mut Vec<u8>) {
    let (opcode, opaque) = (packet.opcode(), packet.opaque());
    let access = Access {
        touch: touch.map(|t| ex.realtime(i64::from(t))),
        no_bump: false,
    };
    let key = ex.key(packet.key);
    let miss = match ex.shard.get(key, access) {
        Lookup::Hit(item) => {
            let (cas, flags, len) = (item.cas(), item.flags(), item.value_len());
            binary::get_hit_header(out, opcode, opaque, cas, flags, key.bytes, len);
            if opcode != Opcode::Touch {
                item.write_value(out);
            }
            None
        }
        Lookup::Miss(miss) => {
            if !opcode.is_quiet() {
                binary::get_miss(out, opcode, opaque, key.bytes);
            }
            Some(miss)
        }
    };
    count_get(ex.counters, touch.is_some(), miss);
}

/// The storage mode: as in memcached, SET, ADD and REPLACE with a CAS in the header
/// become a compare-and-swap. APPEND and PREPEND ignore the header's CAS (a known
/// difference: memcached checks it).
fn store_mode(packet: &Packet<'_>) -> StoreMode {
    let cas = packet.cas();
    match packet.opcode().loud() {
        Opcode::Append => StoreMode::Append,
        Opcode::Prepend => StoreMode::Prepend,
        _ if cas != 0 => StoreMode::Cas(cas),
        Opcode::Add => StoreMode::Add,
        Opcode::Replace => StoreMode::Replace,
        _ => StoreMode::Set,
    }
}

fn store(ex: &mut Exec<'_>, packet: &Packet<'_>, out: &mut Vec<u8>) {
    let extras = packet.store_extras().unwrap_or_default();
    let mode = store_mode(packet);
    let request = Store {
        key: ex.key(packet.key),
        mode,
        flags: extras.flags,
        exptime: ex.realtime(i64::from(extras.exptime)),
        value: packet.value,
    };
    let outcome = ex.shard.store(request);
    count_store(ex.counters, mode, outcome);
    let status = match outcome {
        StoreOutcome::Stored { cas } => {
            if !packet.opcode().is_quiet() {
                binary::success(out, packet.opcode(), packet.opaque(), cas);
            }
            return;
        }
        StoreOutcome::NotStored => not_stored(mode),
        StoreOutcome::Exists => Status::KeyExists,
        StoreOutcome::NotFound => Status::KeyNotFound,
        StoreOutcome::TooLarge => Status::TooLarge,
        StoreOutcome::NoMemory => {
            return binary::out_of_memory(
                out,
                packet.opcode(),
                packet.opaque(),
                Shortage::AllocatingItem,
            );
        }
    };
    fail(out, packet, status);
}

/// memcached's status for a failed precondition: ADD finds the key, REPLACE does not,
/// APPEND and PREPEND store nothing.
fn not_stored(mode: StoreMode) -> Status {
    match mode {
        StoreMode::Add => Status::KeyExists,
        StoreMode::Replace => Status::KeyNotFound,
        StoreMode::Set | StoreMode::Append | StoreMode::Prepend | StoreMode::Cas(_) => {
            Status::NotStored
        }
    }
}

/// A value over `-I`, discarded unread: E2BIG, and a SET also removes the old value.
pub fn too_large(ex: &mut Exec<'_>, opcode: Opcode, opaque: u32, key: &[u8], out: &mut Vec<u8>) {
    if opcode.loud() == Opcode::Set {
        let key = ex.key(key);
        ex.shard.discard(key);
    }
    ex.counters.incr(Stat::store_too_large);
    binary::error(out, opcode, Status::TooLarge, opaque);
}

fn delete(ex: &mut Exec<'_>, packet: &Packet<'_>, out: &mut Vec<u8>) {
    let key = ex.key(packet.key);
    let (stat, status) = match ex.shard.delete(key, packet.cas()) {
        DeleteOutcome::Deleted => (Stat::delete_hits, Status::NoError),
        DeleteOutcome::NotFound => (Stat::delete_misses, Status::KeyNotFound),
        DeleteOutcome::Exists => (Stat::delete_misses, Status::KeyExists),
    };
    ex.counters.incr(stat);
    match status {
        Status::NoError if packet.opcode().is_quiet() => {}
        Status::NoError => binary::success(out, packet.opcode(), packet.opaque(), 0),
        status => fail(out, packet, status),
    }
}

fn arith(ex: &mut Exec<'_>, packet: &Packet<'_>, out: &mut Vec<u8>) {
    let extras = packet.arith_extras().unwrap_or_default();
    let incr = packet.opcode().loud() == Opcode::Increment;
    let initial = (extras.exptime != NO_CREATE).then(|| Initial {
        value: extras.initial,
        flags: 0,
        exptime: ex.realtime(i64::from(extras.exptime)),
    });
    let request = Arith {
        incr,
        delta: extras.delta,
        initial,
        cas: packet.cas(),
    };
    let key = ex.key(packet.key);
    let outcome = ex.shard.arith(key, request);
    count_arith(ex.counters, incr, outcome);
    let status = match outcome {
        ArithOutcome::Value { value, cas } => {
            if !packet.opcode().is_quiet() {
                binary::arith(out, packet.opcode(), packet.opaque(), cas, value);
            }
            return;
        }
        ArithOutcome::NotFound => Status::KeyNotFound,
        ArithOutcome::NonNumeric => Status::NonNumeric,
        ArithOutcome::Exists => Status::KeyExists,
        ArithOutcome::NoMemory => {
            let what = Shortage::IncrementingValue;
            return binary::out_of_memory(out, packet.opcode(), packet.opaque(), what);
        }
    };
    fail(out, packet, status);
}

/// A request without a key, run where it arrived.
pub fn global(
    ex: &mut Exec<'_>,
    packet: &Packet<'_>,
    session: &mut Session,
    out: &mut Vec<u8>,
) -> Flow {
    let (opcode, opaque) = (packet.opcode(), packet.opaque());
    let quiet = opcode.is_quiet();
    match opcode.loud() {
        Opcode::Noop => binary::noop(out, opaque),
        Opcode::Version => binary::version(out, opaque, crate::VERSION),
        Opcode::Quit => {
            if !quiet {
                binary::quit(out, opaque);
            }
            return Flow::Quit;
        }
        Opcode::Flush => flush_all(ex, packet, out),
        Opcode::Stat => stats(ex, packet, out),
        Opcode::Verbosity => {
            ex.shared.set_verbosity(packet.verbosity().unwrap_or(0));
            binary::success(out, opcode, opaque, 0);
        }
        Opcode::SaslListMechs | Opcode::SaslAuth | Opcode::SaslStep => {
            return sasl::handle(ex, packet, session, out);
        }
        _ => fail(out, packet, Status::UnknownCommand),
    }
    Flow::Continue
}

/// FLUSH with an optional delay; refused with "Auth failure." under `-F`, as memcached
/// refuses it.
fn flush_all(ex: &mut Exec<'_>, packet: &Packet<'_>, out: &mut Vec<u8>) {
    let delay = packet.flush_delay().unwrap_or(0);
    match flush(ex, Some(i64::from(delay))) {
        Ok(()) if packet.opcode().is_quiet() => {}
        Ok(()) => binary::flush(out, packet.opaque()),
        Err(_) => fail(out, packet, Status::AuthError),
    }
}

/// STAT: the key names the group (empty for the general one), as in the text protocol.
fn stats(ex: &mut Exec<'_>, packet: &Packet<'_>, out: &mut Vec<u8>) {
    let group = match packet.key {
        b"" => StatsGroup::General,
        b"settings" => StatsGroup::Settings,
        b"items" => StatsGroup::Items,
        b"slabs" => StatsGroup::Slabs,
        b"sizes" => StatsGroup::Sizes,
        b"conns" => StatsGroup::Conns,
        b"reset" => StatsGroup::Reset,
        _ => return fail(out, packet, Status::KeyNotFound),
    };
    let opaque = packet.opaque();
    let mut sink = BinarySink { out, opaque };
    report::stats(ex.shared, group, &mut sink);
    if group == StatsGroup::Reset {
        binary::stat_end(out, opaque);
    }
}
