//! The meta commands (`mg`, `ms`, `md`, `ma`, `me`): run against the shard, answered with
//! the meta reply codes and the flags the request asked for, in its order.
//!
//! `mg` and `ma` hold the item while they work through `T`, `N`, `R` and `t` in request
//! order ([`Steps`]), as memcached does, so `t T30` reports the old TTL and `T30 t` the
//! new one; the recache markers (`W`, `X`, `Z`) are decided after them. Quiet mode (`q`)
//! hides only the code [`MetaRequest::hides`] names; errors are always sent. `mn` needs
//! no key and is answered where it arrives ([`super::text::global`]).
//!
//! Counters are memcached's: `mg` counts as a get (a hit with `T` as a touch; memcached
//! counts a miss as a get miss either way), `ms` as a store, `md` as a delete, `ma` as
//! an increment or decrement, and only `me` counts `cmd_meta`.

use crate::protocol::meta::{
    write_debug, write_reply, write_value, ArithMode, Code, DebugInfo, ItemInfo, KeyRoom, Markers,
    MetaArgs, MetaKey, MetaRequest, Options, ReturnFlag, SetMode, Step, Steps,
};
use crate::protocol::ErrorReply;
use crate::server::Shared;
use crate::stats::Counters;
use crate::stats::Stat;
use crate::storage::{
    Arith, ArithOutcome, DeleteMode, Emptied, Found, Initial, MetaCounted, MetaDelete,
    MetaDeleteOutcome, MetaGet, MetaItem, MetaLookup, OlderCas, Read, ReadKind, Reader, RelTime,
    Store, StoreMode, StoreOptions, StoreOutcome, Vivify,
};

use super::{count_arith, count_get, count_store, Exec};

/// Runs a meta command on the worker that owns its key.
pub fn run(ex: &mut Exec<'_>, request: &MetaRequest<'_>, out: &mut Vec<u8>) {
    match *request {
        MetaRequest::Get(ref args) => get(ex, request, args, out),
        MetaRequest::Set {
            ref args,
            mode,
            data,
        } => set(ex, request, args, (mode, data), out),
        MetaRequest::TooLarge(ref args) => too_large(ex, args, out),
        MetaRequest::Delete(ref args) => delete(ex, request, args, out),
        MetaRequest::Arith { ref args, mode } => arith(ex, request, args, mode, out),
        MetaRequest::Debug(key) => debug(ex, key, out),
    }
}

/// Writes a reply line, unless quiet mode hides its code.
fn answer(
    out: &mut Vec<u8>,
    request: &MetaRequest<'_>,
    code: Code,
    args: &MetaArgs<'_>,
    item: Option<&ItemInfo>,
) {
    if !request.hides(code) {
        write_reply(out, code, args, item);
    }
}

/// The exptimes of `T`, `N` and `R` on the cache's clock.
#[derive(Clone, Copy, Debug)]
struct Times {
    ttl: Option<RelTime>,
    vivify: Option<RelTime>,
    recache: Option<RelTime>,
}

impl Times {
    fn of(ex: &Exec<'_>, options: &Options) -> Times {
        let real = |exptime: Option<i32>| exptime.map(|t| ex.realtime(i64::from(t)));
        Times {
            ttl: real(options.ttl),
            vivify: real(options.vivify),
            recache: real(options.recache),
        }
    }
}

/// What working through the steps left: the TTL `t` saw, and whether this reader wins
/// the recache token.
#[derive(Clone, Copy, Debug, Default)]
struct Walked {
    ttl: i64,
    won: bool,
}

/// Applies `T`, `N` and `R` to `item` in request order, noting the TTL where `t` stands.
fn walk(item: &mut MetaItem<'_>, steps: &Steps, times: &Times) -> Walked {
    let mut walked = Walked {
        ttl: ttl_of(item),
        won: false,
    };
    for step in steps.as_slice() {
        match step {
            Step::Touch => set_exptime(item, times.ttl),
            Step::Vivify if item.created() => {
                set_exptime(item, times.vivify);
                walked.won = true;
            }
            Step::Vivify => {}
            Step::Recache => walked.won |= recache_wins(item, times.recache),
            Step::ReturnTtl => walked.ttl = ttl_of(item),
        }
    }
    walked
}

fn set_exptime(item: &mut MetaItem<'_>, exptime: Option<RelTime>) {
    if let Some(exptime) = exptime {
        item.set_exptime(exptime);
    }
}

/// `t`: seconds left, -1 for never.
fn ttl_of(item: &MetaItem<'_>) -> i64 {
    item.ttl().map_or(-1, i64::from)
}

/// `R`: the first reader to find less time left than the window wins the token.
fn recache_wins(item: &MetaItem<'_>, window: Option<RelTime>) -> bool {
    let exptime = item.exptime();
    let within = window.is_some_and(|window| exptime != 0 && exptime < window);
    within && !item.token_sent() && !item.created()
}

/// The markers after the steps: `Z` if a token went out before, `X` if stale, and `W`
/// if this reader won one (a stale item with no token out hands one out).
fn markers(item: &mut MetaItem<'_>, won: bool) -> Markers {
    let token_sent = item.token_sent();
    let stale = item.stale();
    let won = won || (stale && !token_sent);
    if won {
        item.mark_token_sent();
    }
    Markers {
        won,
        stale,
        token_sent,
    }
}

fn get(ex: &mut Exec<'_>, request: &MetaRequest<'_>, args: &MetaArgs<'_>, out: &mut Vec<u8>) {
    let options = &args.options;
    let touch = options.ttl.is_some();
    let times = Times::of(ex, options);
    let mut room = KeyRoom::new();
    let key = ex.key(args.key.bytes(&mut room));
    let get = MetaGet {
        read: if touch {
            ReadKind::Touch
        } else {
            ReadKind::Get
        },
        no_bump: options.no_bump,
        vivify: options.vivify.map(|_| Vivify {
            exptime: 0,
            cas: options.new_cas,
            binary_key: args.key.is_binary(),
        }),
    };
    match ex.shard.meta_get(key, get) {
        MetaLookup::Hit(mut item) => {
            found(&mut item, args, &times, out);
            count_get(ex.counters, touch, None);
        }
        MetaLookup::Miss(miss) => {
            count_get(ex.counters, false, Some(miss));
            answer(out, request, Code::En, args, None);
        }
    }
}

/// `mg` on a hit: `VA` with the value, or `HD` without `v` or when `C` matches.
fn found(item: &mut MetaItem<'_>, args: &MetaArgs<'_>, times: &Times, out: &mut Vec<u8>) {
    let walked = walk(item, &args.steps, times);
    let markers = markers(item, walked.won);
    let view = item.view();
    let info = ItemInfo {
        binary_key: item.binary_key(),
        client_flags: view.flags(),
        ttl: walked.ttl,
        cas: view.cas(),
        size: view.value_len(),
        hit_before: item.fetched_before(),
        last_access: u64::from(item.idle_before()),
        markers,
    };
    let options = &args.options;
    if !options.value || options.compare_cas == Some(view.cas()) {
        return write_reply(out, Code::Hd, args, Some(&info));
    }
    write_reply(out, Code::Va(view.value_len()), args, Some(&info));
    view.write_value(out);
    out.extend_from_slice(b"\r\n");
}

/// `ms`: `C` turns set and replace into a compare-and-set, as in memcached; append and
/// prepend get the simpler CAS check and, with `N`, create the item on a miss.
fn set(
    ex: &mut Exec<'_>,
    request: &MetaRequest<'_>,
    args: &MetaArgs<'_>,
    (mode, data): (SetMode, &[u8]),
    out: &mut Vec<u8>,
) {
    let options = &args.options;
    let store_options = store_options(ex, args, mode);
    let exptime = ex.realtime(i64::from(options.ttl.unwrap_or(0)));
    let mut room = KeyRoom::new();
    let store = Store {
        key: ex.key(args.key.bytes(&mut room)),
        mode: store_mode(mode, options.compare_cas),
        flags: options.client_flags.unwrap_or(0),
        exptime,
        value: data,
    };
    let (outcome, size) = ex.shard.store_meta(store, &store_options);
    count_store(ex.counters, store.mode, outcome);
    set_reply(out, request, args, (outcome, size));
}

/// What `ms`'s flags add to a store: `E`, `I`, the base64 mark, and for append and
/// prepend their own `C` check and `N`.
fn store_options(ex: &Exec<'_>, args: &MetaArgs<'_>, mode: SetMode) -> StoreOptions {
    let options = &args.options;
    let concat = matches!(mode, SetMode::Append | SetMode::Prepend);
    StoreOptions {
        new_cas: options.new_cas,
        compare: options.compare_cas.filter(|_| concat).unwrap_or(0),
        older: match options.invalidate {
            true => OlderCas::MarkStale,
            false => OlderCas::Refuse,
        },
        vivify: options
            .vivify
            .filter(|_| concat)
            .map(|n| ex.realtime(i64::from(n))),
        binary_key: args.key.is_binary(),
    }
}

fn store_mode(mode: SetMode, compare: Option<u64>) -> StoreMode {
    match (mode, compare) {
        (SetMode::Set | SetMode::Replace, Some(cas)) => StoreMode::Cas(cas),
        (SetMode::Set, None) => StoreMode::Set,
        (SetMode::Replace, None) => StoreMode::Replace,
        (SetMode::Add, _) => StoreMode::Add,
        (SetMode::Append, _) => StoreMode::Append,
        (SetMode::Prepend, _) => StoreMode::Prepend,
    }
}

/// `ms`'s reply: `c` is the new CAS, or 0 when nothing was stored; `s` the value's
/// length now (after an append, the whole value's).
fn set_reply(
    out: &mut Vec<u8>,
    request: &MetaRequest<'_>,
    args: &MetaArgs<'_>,
    (outcome, size): (StoreOutcome, usize),
) {
    let (code, cas) = match outcome {
        StoreOutcome::Stored { cas } => (Code::Hd, cas),
        StoreOutcome::NotStored => (Code::Ns, 0),
        StoreOutcome::Exists => (Code::Ex, 0),
        StoreOutcome::NotFound => (Code::Nf, 0),
        StoreOutcome::TooLarge => return ErrorReply::TooLarge.write(out),
        StoreOutcome::NoMemory => return ErrorReply::OutOfMemory.write(out),
    };
    let info = ItemInfo {
        binary_key: args.key.is_binary(),
        cas,
        size,
        ..ItemInfo::default()
    };
    answer(out, request, code, args, Some(&info));
}

/// `ms` over `-I`: the value was discarded unread; the old item goes, whatever the
/// mode, as memcached removes it so that stale data does not outlive a failed store.
fn too_large(ex: &mut Exec<'_>, args: &MetaArgs<'_>, out: &mut Vec<u8>) {
    let mut room = KeyRoom::new();
    let key = ex.key(args.key.bytes(&mut room));
    ex.shard.discard(key);
    ex.counters.incr(Stat::store_too_large);
    ErrorReply::TooLarge.write(out);
}

/// `md`: remove, or with `I` mark stale; with `x` keep the item with an empty value.
fn delete(ex: &mut Exec<'_>, request: &MetaRequest<'_>, args: &MetaArgs<'_>, out: &mut Vec<u8>) {
    let delete = delete_request(ex, args);
    let mut room = KeyRoom::new();
    let key = ex.key(args.key.bytes(&mut room));
    let outcome = ex.shard.delete_meta(key, delete);
    let (stat, code) = match outcome {
        MetaDeleteOutcome::Deleted => (Some(Stat::delete_hits), Code::Hd),
        MetaDeleteOutcome::Invalidated => (None, Code::Hd),
        MetaDeleteOutcome::NotFound => (Some(Stat::delete_misses), Code::Nf),
        MetaDeleteOutcome::Exists => (Some(Stat::delete_misses), Code::Ex),
        MetaDeleteOutcome::NoMemory => return ErrorReply::ArithOutOfMemory.write(out),
    };
    if let Some(stat) = stat {
        ex.counters.incr(stat);
    }
    answer(out, request, code, args, None);
}

/// `md`'s flags: `C`, `I` with `T`, `x` with `F` and `T`, `E`.
fn delete_request(ex: &Exec<'_>, args: &MetaArgs<'_>) -> MetaDelete {
    let options = &args.options;
    let exptime = options.ttl.map(|t| ex.realtime(i64::from(t)));
    MetaDelete {
        compare: options.compare_cas,
        mode: match options.invalidate {
            true => DeleteMode::Invalidate { exptime },
            false => DeleteMode::Remove,
        },
        empty: options.remove_value.then(|| Emptied {
            flags: options.client_flags.unwrap_or(0),
            exptime: exptime.unwrap_or(0),
        }),
        new_cas: options.new_cas,
        binary_key: args.key.is_binary(),
    }
}

/// `ma`: the default delta is 1; with `N` a miss creates the item from `J` (0 when
/// absent), which counts neither as a hit nor as a miss, as in memcached.
fn arith(
    ex: &mut Exec<'_>,
    request: &MetaRequest<'_>,
    args: &MetaArgs<'_>,
    mode: ArithMode,
    out: &mut Vec<u8>,
) {
    let options = &args.options;
    let incr = mode == ArithMode::Incr;
    let arith = arith_request(options, incr);
    let times = Times::of(ex, options);
    let mut room = KeyRoom::new();
    let key = ex.key(args.key.bytes(&mut room));
    let binary = args.key.is_binary();
    match ex.shard.arith_meta(key, arith, options.new_cas, binary) {
        Ok(mut counted) => {
            if !counted.item.created() {
                let cas = counted.item.view().cas();
                let value = counted.value;
                count_arith(ex.counters, incr, ArithOutcome::Value { value, cas });
            }
            counted_reply(&mut counted, request, args, &times, out);
        }
        Err(outcome) => {
            count_arith(ex.counters, incr, outcome);
            arith_failure(outcome, request, args, out);
        }
    }
}

/// `ma`'s flags: `D`, `C`, and `N` with `J`. The item `N` creates has no expiry until
/// the walk through the steps reaches `N`, as in memcached.
fn arith_request(options: &Options, incr: bool) -> Arith {
    Arith {
        incr,
        delta: options.delta.unwrap_or(1),
        initial: options.vivify.map(|_| Initial {
            value: options.initial.unwrap_or(0),
            flags: 0,
            exptime: 0,
        }),
        cas: options.compare_cas.unwrap_or(0),
    }
}

/// `ma`'s reply after the operation: `VA` with the number, or `HD`. `q` hides it only
/// when an existing counter was counted: memcached 1.6.18 answers for an item `N` has
/// just created even under `q`.
fn counted_reply(
    counted: &mut MetaCounted<'_>,
    request: &MetaRequest<'_>,
    args: &MetaArgs<'_>,
    times: &Times,
    out: &mut Vec<u8>,
) {
    let walked = walk(&mut counted.item, &args.steps, times);
    let info = ItemInfo {
        binary_key: args.key.is_binary(),
        ttl: walked.ttl,
        cas: counted.item.view().cas(),
        ..ItemInfo::default()
    };
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(counted.value).as_bytes();
    let code = match args.options.value {
        true => Code::Va(digits.len()),
        false => Code::Hd,
    };
    if request.hides(code) && !counted.item.created() {
        return;
    }
    match code {
        Code::Va(_) => write_value(out, args, &info, digits),
        _ => write_reply(out, code, args, Some(&info)),
    }
}

/// `ma`'s reply when nothing was counted.
fn arith_failure(
    outcome: ArithOutcome,
    request: &MetaRequest<'_>,
    args: &MetaArgs<'_>,
    out: &mut Vec<u8>,
) {
    let code = match outcome {
        ArithOutcome::NotFound => Code::Nf,
        ArithOutcome::Exists => Code::Ex,
        ArithOutcome::NonNumeric => return ErrorReply::NonNumeric.write(out),
        ArithOutcome::NoMemory => return ErrorReply::ArithOutOfMemory.write(out),
        ArithOutcome::Value { .. } => {
            debug_assert!(false, "a counted value is answered from its item");
            Code::Hd
        }
    };
    answer(out, request, code, args, None);
}

/// `me`: the item's internals, without bumping or counting it as a read.
fn debug(ex: &mut Exec<'_>, key: MetaKey<'_>, out: &mut Vec<u8>) {
    ex.counters.incr(Stat::cmd_meta);
    let mut room = KeyRoom::new();
    let hashed = ex.key(key.bytes(&mut room));
    let peek = MetaGet {
        read: ReadKind::Peek,
        no_bump: true,
        vivify: None,
    };
    let MetaLookup::Hit(item) = ex.shard.meta_get(hashed, peek) else {
        return write_debug(out, &key, None);
    };
    let view = item.view();
    let info = DebugInfo {
        binary_key: item.binary_key(),
        exp: ttl_of(&item),
        last_access: u64::from(item.idle_before()),
        cas: view.cas(),
        fetched: item.fetched_before(),
        class: u32::from(view.class_id()),
        size: view.total_size(),
    };
    write_debug(out, &key, Some(&info));
}

/// Whether an `mg` only reads: no `T`, `N`, `R` or `E` to change the item, no `h` or
/// `l` (which need the owner's record of earlier reads), and no base64 key. Such an `mg`
/// of another worker's key can be read without that worker ([`get_remote`]).
pub fn reads_only(args: &MetaArgs<'_>) -> bool {
    let options = &args.options;
    let changes = options.ttl.is_some()
        || options.vivify.is_some()
        || options.recache.is_some()
        || options.new_cas.is_some();
    let returns = args.returns;
    !changes
        && !args.key.is_binary()
        && !returns.contains(ReturnFlag::HitBefore)
        && !returns.contains(ReturnFlag::LastAccess)
}

/// An `mg` that [`reads_only`], read from another worker's shard without that worker
/// (see [`crate::storage::Reader`]). Answers [`Read::Unsure`], with nothing written and
/// nothing counted, when the owner must answer: the item was changing, or the meta
/// commands have marked it.
pub fn get_remote(
    counters: &Counters,
    shared: &Shared,
    reader: &Reader,
    request: &MetaRequest<'_>,
    args: &MetaArgs<'_>,
    out: &mut Vec<u8>,
) -> Read {
    let now = shared.clock.now();
    let start = out.len();
    let mut head: Option<(usize, bool)> = None;
    let mut room = KeyRoom::new();
    let key = args.key.bytes(&mut room);
    let read = reader.get(shared.hasher.key(key), now, out, |out, found| {
        if !found.meta_marked {
            head = Some(remote_head(out, args, found, now));
        }
    });
    match (read, head) {
        (Read::Hit, Some((end, with_value))) => {
            if with_value {
                out.extend_from_slice(b"\r\n");
            } else {
                out.truncate(end);
            }
            count_get(counters, false, None);
            Read::Hit
        }
        (Read::Hit, None) => {
            out.truncate(start);
            Read::Unsure
        }
        (Read::Miss(miss), _) => {
            count_get(counters, false, Some(miss));
            answer(out, request, Code::En, args, None);
            read
        }
        (Read::Unsure, _) => Read::Unsure,
    }
}

/// The reply line of a remote `mg` hit; answers where it ends and whether the value
/// (which the reader appends next) is wanted.
fn remote_head(
    out: &mut Vec<u8>,
    args: &MetaArgs<'_>,
    found: Found,
    now: RelTime,
) -> (usize, bool) {
    let info = ItemInfo {
        binary_key: false,
        client_flags: found.flags,
        ttl: match found.exptime {
            0 => -1,
            exptime => i64::from(exptime.saturating_sub(now)),
        },
        cas: found.cas,
        size: found.len,
        hit_before: false,
        last_access: 0,
        markers: Markers::default(),
    };
    let options = &args.options;
    let with_value = options.value && options.compare_cas != Some(found.cas);
    let code = if with_value {
        Code::Va(found.len)
    } else {
        Code::Hd
    };
    write_reply(out, code, args, Some(&info));
    (out.len(), with_value)
}
