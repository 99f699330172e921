//! Runs parsed requests against a shard and encodes the outcomes: the one place that
//! knows both protocol types and storage types.
//!
//! Keyed commands run on the worker that owns the key (locally, or after forwarding);
//! everything else runs where it arrived. Each protocol has its module ([`text`],
//! [`meta`], [`binary`]); what they share (counting outcomes into `stats`, flushing, changing the
//! memory limit) is here, so both protocols count and behave alike. Each storage outcome
//! maps to its wire reply in one `match` that names every variant, so a new outcome
//! cannot go unanswered.

pub mod binary;
pub mod meta;
pub mod text;

use std::sync::atomic::Ordering;

use crate::stats::{Counters, Stat};
use crate::storage::{ArithOutcome, Key, Miss, Shard, StoreMode, StoreOutcome};

use super::Shared;

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading requests.
    Continue,
    /// Close once every earlier reply has been written (`quit`, a binary protocol error).
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
    /// A client's exptime as a time on the cache's clock.
    fn realtime(&self, exptime: i64) -> u32 {
        self.shared.clock.realtime(exptime)
    }

    fn key<'k>(&self, bytes: &'k [u8]) -> Key<'k> {
        self.shared.hasher.key(bytes)
    }
}

/// Why a command that changes the whole server was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The flag that allows it was not given (`-F` for flush).
    Disabled,
    /// The argument is out of range.
    TooSmall,
    /// The argument looks like the wrong unit.
    Units,
    /// The change could not be applied.
    Failed,
}

/// Counts a get or a touch-and-get, hit or miss.
fn count_get(counters: &Counters, touch: bool, miss: Option<Miss>) {
    let (cmd, hit, missed) = if touch {
        (Stat::cmd_touch, Stat::touch_hits, Stat::touch_misses)
    } else {
        (Stat::cmd_get, Stat::get_hits, Stat::get_misses)
    };
    counters.incr(cmd);
    let Some(miss) = miss else {
        return counters.incr(hit);
    };
    counters.incr(missed);
    match miss {
        Miss::Expired if !touch => counters.incr(Stat::get_expired),
        Miss::Flushed if !touch => counters.incr(Stat::get_flushed),
        Miss::NotFound | Miss::Expired | Miss::Flushed => {}
    }
}

/// Counts a storage command by its outcome.
fn count_store(counters: &Counters, mode: StoreMode, outcome: StoreOutcome) {
    counters.incr(Stat::cmd_set);
    let is_cas = matches!(mode, StoreMode::Cas(_));
    let stat = match outcome {
        StoreOutcome::Stored { .. } if is_cas => Stat::cas_hits,
        StoreOutcome::Exists if is_cas => Stat::cas_badval,
        StoreOutcome::NotFound => Stat::cas_misses,
        StoreOutcome::TooLarge => Stat::store_too_large,
        StoreOutcome::NoMemory => Stat::store_no_memory,
        StoreOutcome::Stored { .. } | StoreOutcome::NotStored | StoreOutcome::Exists => return,
    };
    counters.incr(stat);
}

/// Counts an increment or decrement by its outcome.
fn count_arith(counters: &Counters, incr: bool, outcome: ArithOutcome) {
    let (hit, miss) = if incr {
        (Stat::incr_hits, Stat::incr_misses)
    } else {
        (Stat::decr_hits, Stat::decr_misses)
    };
    match outcome {
        ArithOutcome::Value { .. } => counters.incr(hit),
        ArithOutcome::NotFound => counters.incr(miss),
        ArithOutcome::NonNumeric | ArithOutcome::Exists | ArithOutcome::NoMemory => {}
    }
}

/// `flush_all`, with memcached's arithmetic: a flush at `t` invalidates items last
/// written at or before `t - 1`; an immediate flush (`at` of `None`) also invalidates
/// everything stored earlier in the current second, by CAS, and replaces any pending
/// delayed flush. Counted even when refused, as memcached counts it.
fn flush(ex: &mut Exec<'_>, at: Option<i64>) -> Result<(), Refusal> {
    ex.counters.incr(Stat::cmd_flush);
    if !ex.shared.config.flush_enabled {
        return Err(Refusal::Disabled);
    }
    let flush = &ex.shared.flush;
    match at {
        Some(exptime) if exptime > 0 => flush.flush_at(ex.realtime(exptime).saturating_sub(1)),
        _ => {
            flush.flush_at(ex.shared.clock.now().saturating_sub(1));
            flush.flush_now();
        }
    }
    Ok(())
}

/// `cache_memlimit`: memcached's bounds, then the page pool's own.
fn cache_memlimit(shared: &Shared, megabytes: u32) -> Result<(), Refusal> {
    if megabytes < 8 {
        return Err(Refusal::TooSmall);
    }
    if megabytes > 1_000_000_000 {
        return Err(Refusal::Units);
    }
    let bytes = usize::try_from(megabytes).map_err(|_| Refusal::Failed)? << 20;
    if !shared.pool.set_limit(bytes) {
        return Err(Refusal::Failed);
    }
    shared.memory_limit.store(bytes, Ordering::Relaxed);
    tracing::info!(megabytes, "memory limit changed");
    Ok(())
}
