//! Counters kept per worker and summed when a client asks for `stats`.
//!
//! Each worker owns a [`Counters`] and is its only writer, so an increment is a relaxed
//! load and store on a cache line no other core writes: no atomic read-modify-write and
//! no lock on the request path. Readers sum every worker's counters. `stats reset` does
//! not write into other workers' counters (that would race with their increments): it
//! records the current sums as a baseline that later reports subtract.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// A counter kept per worker; the name is memcached's stat name.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Stat {
            $($(#[$doc])* $name,)*
        }

        impl Stat {
            /// Every counter, in the order they are stored.
            pub const ALL: &'static [Stat] = &[$(Stat::$name,)*];

            /// memcached's name for the counter.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Stat::$name => stringify!($name),)*
                }
            }
        }
    };
}

counters! {
    /// Get commands, one per key (`cmd_get`).
    cmd_get,
    /// Storage commands (`cmd_set`).
    cmd_set,
    /// Touch commands, including gat (`cmd_touch`).
    cmd_touch,
    /// `flush_all` commands, including refused ones (`cmd_flush`).
    cmd_flush,
    /// Meta commands (`cmd_meta`).
    cmd_meta,
    /// Keys found by a get.
    get_hits,
    /// Keys not found by a get.
    get_misses,
    /// Keys found expired by a get.
    get_expired,
    /// Keys found flushed by a get.
    get_flushed,
    /// Deletes that removed an item.
    delete_hits,
    /// Deletes of missing keys.
    delete_misses,
    /// Successful increments.
    incr_hits,
    /// Increments of missing keys.
    incr_misses,
    /// Successful decrements.
    decr_hits,
    /// Decrements of missing keys.
    decr_misses,
    /// `cas` commands that stored.
    cas_hits,
    /// `cas` commands on missing keys.
    cas_misses,
    /// `cas` commands that found another CAS.
    cas_badval,
    /// Touches that found the item.
    touch_hits,
    /// Touches of missing keys.
    touch_misses,
    /// Values refused as larger than `-I`.
    store_too_large,
    /// Values refused for lack of memory.
    store_no_memory,
    /// Authentication attempts.
    auth_cmds,
    /// Failed authentication attempts.
    auth_errors,
    /// Bytes read from clients.
    bytes_read,
    /// Bytes written to clients.
    bytes_written,
    /// Times a connection gave way after `-R` requests in one turn.
    conn_yields,
    /// Connections closed for being idle longer than `idle_timeout`.
    idle_kicks,
    /// Connections closed for not reading replies that grew past the output limit.
    output_kicks,
    /// Connections closed because their read buffer would pass `read_buf_mem_limit`.
    read_buf_oom,
    /// Requests sent to another worker's shard.
    forwarded_requests,
    /// Batches of requests sent to another worker.
    forwarded_batches,
}

/// Number of counters.
pub const COUNT: usize = Stat::ALL.len();

/// One worker's counters, aligned so that two workers never write the same cache line.
#[derive(Debug)]
#[repr(align(128))]
pub struct Counters {
    values: [AtomicU64; COUNT],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counters {
    /// Adds `n` to a counter. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, stat: Stat, n: u64) {
        let cell = &self.values[stat as usize];
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one to a counter. Only the owning worker may call this.
    #[inline]
    pub fn incr(&self, stat: Stat) {
        self.add(stat, 1);
    }

    /// The counter's current value, from any thread.
    pub fn get(&self, stat: Stat) -> u64 {
        self.values[stat as usize].load(Ordering::Relaxed)
    }

    /// Every counter's value.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(std::array::from_fn(|i| {
            self.values[i].load(Ordering::Relaxed)
        }))
    }
}

/// Counter values at one moment, summed over workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot([u64; COUNT]);

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot([0; COUNT])
    }
}

impl Snapshot {
    /// One counter's value.
    pub fn get(&self, stat: Stat) -> u64 {
        self.0[stat as usize]
    }

    /// Adds another snapshot into this one.
    pub fn add(&mut self, other: &Snapshot) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// This snapshot less a baseline taken earlier.
    pub fn since(&self, baseline: &Snapshot) -> Snapshot {
        Snapshot(std::array::from_fn(|i| {
            self.0[i].saturating_sub(baseline.0[i])
        }))
    }
}

/// Every worker's counters, and the baseline of the last `stats reset`.
#[derive(Debug)]
pub struct Registry {
    workers: Vec<Counters>,
    baseline: Mutex<Snapshot>,
}

impl Registry {
    /// Counters for `workers` workers.
    pub fn new(workers: usize) -> Registry {
        Registry {
            workers: (0..workers).map(|_| Counters::default()).collect(),
            baseline: Mutex::new(Snapshot::default()),
        }
    }

    /// The counters worker `id` writes.
    pub fn worker(&self, id: usize) -> &Counters {
        &self.workers[id]
    }

    /// The sum over workers, less the last reset's baseline.
    pub fn total(&self) -> Snapshot {
        self.raw_total().since(&self.baseline.lock())
    }

    /// Starts counting from zero again, as `stats reset` does.
    pub fn reset(&self) {
        *self.baseline.lock() = self.raw_total();
    }

    fn raw_total(&self) -> Snapshot {
        let mut sum = Snapshot::default();
        for worker in &self.workers {
            sum.add(&worker.snapshot());
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_workers() {
        let registry = Registry::new(3);
        registry.worker(0).incr(Stat::cmd_get);
        registry.worker(2).add(Stat::cmd_get, 4);
        registry.worker(1).incr(Stat::get_hits);
        let total = registry.total();
        assert_eq!(total.get(Stat::cmd_get), 5);
        assert_eq!(total.get(Stat::get_hits), 1);
        assert_eq!(total.get(Stat::get_misses), 0);
    }

    #[test]
    fn reset_subtracts_a_baseline() {
        let registry = Registry::new(2);
        registry.worker(0).add(Stat::bytes_read, 100);
        registry.reset();
        assert_eq!(registry.total().get(Stat::bytes_read), 0);
        registry.worker(1).add(Stat::bytes_read, 7);
        assert_eq!(registry.total().get(Stat::bytes_read), 7);
        assert_eq!(registry.worker(0).get(Stat::bytes_read), 100);
    }

    #[test]
    fn names_are_memcacheds() {
        assert_eq!(Stat::cmd_get.name(), "cmd_get");
        assert_eq!(Stat::ALL.len(), COUNT);
        assert_eq!(Stat::ALL[Stat::cas_badval as usize], Stat::cas_badval);
    }
}
