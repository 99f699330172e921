//! The `stats` groups, in memcached 1.6.18's field order and formats.
//!
//! memcached_exporter and similar tools read these lines by name and refuse a scrape
//! when a field they need is missing or malformed, so every field memcached prints is
//! printed, in its format (`sec.usec` rusage, `STAT N:name` for slab classes,
//! `STAT items:N:name` for LRUs). Fields for machinery corecache does not have (libevent,
//! log watchers, extstore) report what is true of corecache: none, zero.

use std::fmt::Display;
use std::sync::atomic::Ordering;

use crate::protocol::text::StatsGroup;
use crate::protocol::{binary, reply};
use crate::stats::{Snapshot, Stat};
use crate::storage::clock::START;
use crate::storage::ShardSnapshot;

use super::Shared;

/// Where stat lines go: text `STAT` lines or binary STAT packets.
pub trait Sink {
    /// Appends one stat.
    fn stat(&mut self, name: &str, value: &dyn Display);
    /// Appends what ends the group.
    fn end(&mut self);
}

/// Text protocol: `STAT <name> <value>\r\n` lines, then `END\r\n`.
pub struct TextSink<'a>(pub &'a mut Vec<u8>);

impl Sink for TextSink<'_> {
    fn stat(&mut self, name: &str, value: &dyn Display) {
        reply::stat(self.0, name, value);
    }

    fn end(&mut self) {
        reply::Status::End.write(self.0);
    }
}

/// Binary protocol: one STAT packet per stat, then an empty one.
pub struct BinarySink<'a> {
    /// The output buffer.
    pub out: &'a mut Vec<u8>,
    /// The request's opaque, echoed in every packet.
    pub opaque: u32,
}

impl Sink for BinarySink<'_> {
    fn stat(&mut self, name: &str, value: &dyn Display) {
        binary::stat(self.out, self.opaque, name, value);
    }

    fn end(&mut self) {
        binary::stat_end(self.out, self.opaque);
    }
}

fn stat(out: &mut impl Sink, name: &str, value: impl Display) {
    out.stat(name, &value);
}

/// Appends the stats of a group and what ends it. `Reset` resets the counters and
/// appends nothing: each protocol answers it in its own way.
pub fn stats(shared: &Shared, group: StatsGroup, out: &mut impl Sink) {
    match group {
        StatsGroup::General => general(shared, out),
        StatsGroup::Settings => settings(shared, out),
        StatsGroup::Items => items(shared, out),
        StatsGroup::Slabs => slabs(shared, out),
        StatsGroup::Conns => conns(shared, out),
        StatsGroup::Sizes => stat(out, "sizes_status", "disabled"),
        StatsGroup::CacheDump { .. } => {
            debug_assert!(
                false,
                "cachedump is gathered from every worker by the router"
            );
        }
        StatsGroup::Reset => return shared.reset_stats(),
    }
    out.end();
}

/// The sum of every shard's counters.
fn shards(shared: &Shared) -> ShardSnapshot {
    let mut total = ShardSnapshot::default();
    for stats in &shared.shard_stats {
        total.merge(&stats.snapshot());
    }
    total
}

/// CPU time used by the process, as memcached prints it: seconds, a dot, six digits.
fn rusage() -> (String, String) {
    // SAFETY: a zeroed rusage is a valid out-parameter and RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let fmt = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (fmt(usage.ru_utime), fmt(usage.ru_stime))
}

fn general(shared: &Shared, out: &mut impl Sink) {
    let counters = shared.counters.total();
    let store = shards(shared);
    process(shared, out);
    connections(shared, &counters, out);
    commands(&counters, shared, out);
    memory(shared, &counters, &store, out);
    items_summary(&store, out);
    forwarding(&counters, out);
}

fn process(shared: &Shared, out: &mut impl Sink) {
    let clock = &shared.clock;
    let (user, system) = rusage();
    stat(out, "pid", std::process::id());
    stat(out, "uptime", clock.now().saturating_sub(START));
    stat(out, "time", clock.unix_now());
    stat(out, "version", crate::VERSION);
    stat(out, "libevent", "none");
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", user);
    stat(out, "rusage_system", system);
}

fn connections(shared: &Shared, counters: &Snapshot, out: &mut impl Sink) {
    let curr = shared.curr_connections.load(Ordering::Relaxed);
    stat(out, "max_connections", shared.config.max_connections);
    stat(out, "curr_connections", curr);
    stat(
        out,
        "total_connections",
        shared.total_connections_since_reset(),
    );
    stat(
        out,
        "rejected_connections",
        shared.rejected_connections.load(Ordering::Relaxed),
    );
    stat(out, "connection_structures", curr + shared.listening.len());
    for name in [
        "response_obj_oom",
        "response_obj_count",
        "response_obj_bytes",
    ] {
        stat(out, name, 0);
    }
    let buffers = &shared.read_buffers;
    stat(out, "read_buf_count", buffers.count.load(Ordering::Relaxed));
    stat(out, "read_buf_bytes", buffers.bytes.load(Ordering::Relaxed));
    stat(out, "read_buf_bytes_free", 0);
    stat(out, "read_buf_oom", counters.get(Stat::read_buf_oom));
    stat(
        out,
        "reserved_fds",
        shared.listening.len() + 2 * shared.config.threads,
    );
}

fn commands(counters: &Snapshot, shared: &Shared, out: &mut impl Sink) {
    use Stat::*;
    let first = [
        cmd_get, cmd_set, cmd_flush, cmd_touch, cmd_meta, get_hits, get_misses,
    ];
    let then = [
        get_expired,
        get_flushed,
        delete_misses,
        delete_hits,
        incr_misses,
        incr_hits,
        decr_misses,
        decr_hits,
        cas_misses,
        cas_hits,
        cas_badval,
        touch_hits,
        touch_misses,
        store_too_large,
        store_no_memory,
        auth_cmds,
        auth_errors,
    ];
    for s in first.into_iter().chain(then) {
        stat(out, s.name(), counters.get(s));
    }
    if shared.config.idle_timeout > 0 {
        stat(out, "idle_kicks", counters.get(idle_kicks));
    }
    stat(out, "bytes_read", counters.get(bytes_read));
    stat(out, "bytes_written", counters.get(bytes_written));
}

fn memory(shared: &Shared, counters: &Snapshot, store: &ShardSnapshot, out: &mut impl Sink) {
    stat(
        out,
        "limit_maxbytes",
        shared.memory_limit.load(Ordering::Relaxed),
    );
    stat(out, "accepting_conns", 1);
    stat(out, "listen_disabled_num", 0);
    stat(out, "time_in_listen_disabled_us", 0);
    stat(out, "threads", shared.config.threads);
    stat(out, "conn_yields", counters.get(Stat::conn_yields));
    stat(out, "hash_power_level", store.hash_power_level);
    stat(out, "hash_bytes", store.hash_bytes);
    stat(out, "hash_is_expanding", store.hash_is_expanding);
    for name in [
        "slab_reassign_rescues",
        "slab_reassign_chunk_rescues",
        "slab_reassign_evictions_nomem",
        "slab_reassign_inline_reclaim",
        "slab_reassign_busy_items",
        "slab_reassign_busy_deletes",
        "slab_reassign_running",
    ] {
        stat(out, name, 0);
    }
    stat(out, "slabs_moved", store.slabs_moved);
    stat(out, "lru_crawler_running", 0);
    stat(out, "lru_crawler_starts", 0);
    stat(out, "lru_maintainer_juggles", 0);
    for name in [
        "malloc_fails",
        "log_worker_dropped",
        "log_worker_written",
        "log_watcher_skipped",
        "log_watcher_sent",
        "log_watchers",
        "unexpected_napi_ids",
        "round_robin_fallback",
    ] {
        stat(out, name, 0);
    }
}

fn items_summary(store: &ShardSnapshot, out: &mut impl Sink) {
    stat(out, "bytes", store.bytes);
    stat(out, "curr_items", store.curr_items);
    stat(out, "total_items", store.total_items);
    stat(out, "slab_global_page_pool", 0);
    stat(out, "expired_unfetched", store.expired_unfetched);
    stat(out, "evicted_unfetched", store.evicted_unfetched);
    stat(out, "evicted_active", store.evicted_active);
    stat(out, "evictions", store.evictions);
    stat(out, "reclaimed", store.reclaimed);
    stat(out, "crawler_reclaimed", store.crawler_reclaimed);
    stat(out, "crawler_items_checked", store.crawler_items_checked);
    stat(out, "lrutail_reflocked", 0);
    stat(out, "moves_to_cold", store.moves_to_cold);
    stat(out, "moves_to_warm", store.moves_to_warm);
    stat(out, "moves_within_lru", store.moves_within_lru);
    stat(out, "direct_reclaims", store.direct_reclaims);
    stat(out, "lru_bumps_dropped", 0);
}

/// corecache's own counters, after memcached's.
fn forwarding(counters: &Snapshot, out: &mut impl Sink) {
    for s in [
        Stat::forwarded_requests,
        Stat::forwarded_batches,
        Stat::output_kicks,
    ] {
        stat(out, s.name(), counters.get(s));
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn settings(shared: &Shared, out: &mut impl Sink) {
    let config = &shared.config;
    let slab = &config.slab;
    let (domain_socket, umask, inter) = match &config.listen {
        crate::config::Listen::Unix { path, mask } => (
            path.display().to_string(),
            format!("{mask:o}"),
            "NULL".to_string(),
        ),
        crate::config::Listen::Tcp(addrs) => {
            let inter = addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>();
            ("NULL".to_string(), "700".to_string(), inter.join(","))
        }
    };
    stat(out, "maxbytes", shared.memory_limit.load(Ordering::Relaxed));
    stat(out, "maxconns", config.max_connections);
    stat(out, "tcpport", config.port);
    stat(out, "udpport", 0);
    stat(out, "inter", inter);
    stat(out, "verbosity", shared.verbosity.load(Ordering::Relaxed));
    stat(out, "oldest", 0);
    stat(out, "evictions", if slab.evictions { "on" } else { "off" });
    stat(out, "domain_socket", domain_socket);
    stat(out, "umask", umask);
    stat(out, "shutdown_command", yes_no(config.shutdown_enabled));
    stat(out, "growth_factor", format!("{:.2}", slab.growth_factor));
    stat(out, "chunk_size", slab.min_size);
    stat(out, "num_threads", config.threads);
    stat(out, "num_threads_per_udp", config.threads);
    stat(out, "stat_key_prefix", ":");
    stat(out, "detail_enabled", "no");
    stat(out, "reqs_per_event", config.reqs_per_event);
    stat(out, "cas_enabled", yes_no(slab.cas_enabled));
    stat(out, "tcp_backlog", config.backlog);
    stat(out, "binding_protocol", "ascii");
    stat(out, "auth_enabled_sasl", "no");
    stat(out, "auth_enabled_ascii", "no");
    stat(out, "item_size_max", slab.item_size_max);
    stat(out, "maxconns_fast", "yes");
    stat(out, "hashpower_init", slab.hashpower);
    stat(out, "slab_reassign", "yes");
    stat(out, "slab_automove", 1);
    stat(out, "slab_automove_ratio", "0.80");
    stat(out, "slab_automove_window", 30);
    stat(out, "slab_chunk_max", slab.chunk_max);
    stat(out, "lru_crawler", "yes");
    stat(out, "lru_crawler_sleep", 100);
    stat(out, "lru_crawler_tocrawl", 0);
    stat(out, "tail_repair_time", 0);
    stat(out, "flush_enabled", yes_no(config.flush_enabled));
    stat(out, "dump_enabled", "no");
    stat(out, "hash_algorithm", "ahash");
    stat(out, "lru_maintainer_thread", "no");
    stat(out, "lru_segmented", "no");
    stat(out, "hot_lru_pct", 0);
    stat(out, "warm_lru_pct", 0);
    stat(out, "hot_max_factor", "0.00");
    stat(out, "warm_max_factor", "0.00");
    stat(out, "temp_lru", "no");
    stat(out, "temporary_ttl", 0);
    stat(out, "idle_timeout", config.idle_timeout);
    stat(out, "watcher_logbuf_size", 0);
    stat(out, "worker_logbuf_size", 0);
    stat(out, "read_buf_mem_limit", config.read_buf_mem_limit >> 20);
    stat(out, "track_sizes", "no");
    stat(out, "inline_ascii_response", "no");
    stat(out, "slab_automove_freeratio", "0.010");
    stat(out, "num_napi_ids", "(null)");
    stat(out, "memory_file", "(null)");
    stat(out, "slab_page_size", slab.page_size);
}

fn items(shared: &Shared, out: &mut impl Sink) {
    let store = shards(shared);
    for (id, class) in store.classes.iter().enumerate() {
        if class.number == 0 && class.evicted == 0 && class.outofmemory == 0 {
            continue;
        }
        let mut item = |name: &str, value: u64| stat(out, &format!("items:{id}:{name}"), value);
        item("number", class.number);
        item("number_hot", class.number_hot);
        item("number_warm", class.number_warm);
        item("number_cold", class.number_cold);
        item("age_hot", class.age_hot);
        item("age_warm", class.age_warm);
        item("age", class.age);
        item("mem_requested", class.mem_requested);
        item("evicted", class.evicted);
        item("evicted_nonzero", class.evicted_nonzero);
        item("evicted_time", class.evicted_time);
        item("outofmemory", class.outofmemory);
        item("tailrepairs", class.tailrepairs);
        item("reclaimed", class.reclaimed);
        item("expired_unfetched", class.expired_unfetched);
        item("evicted_unfetched", class.evicted_unfetched);
        item("evicted_active", class.evicted_active);
        item("crawler_reclaimed", class.crawler_reclaimed);
        item("crawler_items_checked", class.crawler_items_checked);
        item("lrutail_reflocked", class.lrutail_reflocked);
        item("moves_to_cold", class.moves_to_cold);
        item("moves_to_warm", class.moves_to_warm);
        item("moves_within_lru", class.moves_within_lru);
        item("direct_reclaims", class.direct_reclaims);
        item("hits_to_hot", class.hits_to_hot);
        item("hits_to_warm", class.hits_to_warm);
        item("hits_to_cold", class.hits_to_cold);
        item("hits_to_temp", class.hits_to_temp);
    }
}

fn slabs(shared: &Shared, out: &mut impl Sink) {
    let store = shards(shared);
    let mut active = 0;
    for (id, class) in store.classes.iter().enumerate() {
        if class.total_pages == 0 {
            continue;
        }
        active += 1;
        let mut slab = |name: &str, value: u64| stat(out, &format!("{id}:{name}"), value);
        slab("chunk_size", class.chunk_size);
        slab("chunks_per_page", class.chunks_per_page);
        slab("total_pages", class.total_pages);
        slab("total_chunks", class.total_chunks);
        slab("used_chunks", class.used_chunks);
        slab("free_chunks", class.free_chunks);
        slab("free_chunks_end", class.free_chunks_end);
        slab("get_hits", class.get_hits);
        slab("cmd_set", class.cmd_set);
        slab("delete_hits", class.delete_hits);
        slab("incr_hits", class.incr_hits);
        slab("decr_hits", class.decr_hits);
        slab("cas_hits", class.cas_hits);
        slab("cas_badval", class.cas_badval);
        slab("touch_hits", class.touch_hits);
    }
    stat(out, "active_slabs", active);
    stat(out, "total_malloced", shared.pool.malloced());
}

fn conns(shared: &Shared, out: &mut impl Sink) {
    let now = shared.clock.now();
    for (fd, endpoint) in &shared.listening {
        stat(out, &format!("{fd}:addr"), endpoint);
        stat(out, &format!("{fd}:state"), "conn_listening");
        stat(
            out,
            &format!("{fd}:secs_since_last_cmd"),
            now.saturating_sub(START),
        );
    }
    let mut clients: Vec<_> = shared.conns.iter().flat_map(|c| c.lock().clone()).collect();
    clients.sort_by_key(|info| info.fd);
    for info in clients {
        let fd = info.fd;
        stat(out, &format!("{fd}:addr"), &info.addr);
        if let Some(listen) = &info.listen_addr {
            stat(out, &format!("{fd}:listen_addr"), listen);
        }
        stat(out, &format!("{fd}:state"), "conn_parse_cmd");
        stat(
            out,
            &format!("{fd}:secs_since_last_cmd"),
            now.saturating_sub(info.last_cmd()),
        );
    }
}
