//! Criterion benchmarks of one shard's hot paths over 100k keys: a get that hits, a
//! set of a new 100-byte value, a set replacing one, and a 90/10 get/set mix.
//!
//! Keys are hashed once up front, as the server does when it parses a request.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corecache::storage::{
    Access, FlushState, Key, KeyHasher, Lookup, PagePool, Shard, SlabConfig, Store, StoreMode,
    SystemClock,
};
use criterion::{criterion_group, criterion_main, Criterion};

const KEYS: usize = 100_000;
const VALUE: [u8; 100] = [b'v'; 100];

/// Keys with their hashes, kept contiguous and visited in order (as a connection's read
/// buffer would present them), and the shuffled order they are first stored in, so
/// that the items they find lie at random places in memory.
struct Workload {
    bytes: Vec<u8>,
    hashes: Vec<u64>,
    insert_order: Vec<usize>,
}

const KEY_LEN: usize = 21;

impl Workload {
    fn new() -> Workload {
        let hasher = KeyHasher::new();
        let bytes: Vec<u8> = (0..KEYS)
            .flat_map(|i| format!("user:session:{i:08}").into_bytes())
            .collect();
        let hashes = bytes.chunks(KEY_LEN).map(|k| hasher.hash(k)).collect();
        let mut insert_order: Vec<usize> = (0..KEYS).collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for i in (1..KEYS).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            insert_order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        Workload {
            bytes,
            hashes,
            insert_order,
        }
    }

    fn key(&self, i: usize) -> Key<'_> {
        let i = i % KEYS;
        let bytes = &self.bytes[i * KEY_LEN..(i + 1) * KEY_LEN];
        Key {
            bytes,
            hash: self.hashes[i],
        }
    }

    fn shuffled_key(&self, i: usize) -> Key<'_> {
        self.key(self.insert_order[i % KEYS])
    }
}

fn empty_shard() -> Shard {
    let config = SlabConfig::default();
    let pool = Arc::new(PagePool::new(256 << 20, config.page_size, 1).expect("pool"));
    let clock = Arc::new(SystemClock::new());
    Shard::new(0, &config, pool, clock, Arc::new(FlushState::new()))
}

fn set(shard: &mut Shard, key: Key<'_>) {
    let store = Store {
        key,
        mode: StoreMode::Set,
        flags: 0,
        exptime: 0,
        value: &VALUE,
    };
    black_box(shard.store(store));
}

fn get(shard: &mut Shard, key: Key<'_>) {
    match shard.get(key, Access::default()) {
        Lookup::Hit(item) => black_box(item.value_len()),
        Lookup::Miss(_) => panic!("every key was stored"),
    };
}

fn full_shard(work: &Workload) -> Shard {
    let mut shard = empty_shard();
    (0..KEYS).for_each(|i| set(&mut shard, work.shuffled_key(i)));
    shard
}

fn benches(c: &mut Criterion) {
    let work = Workload::new();
    let mut shard = full_shard(&work);
    let mut i = 0;
    c.bench_function("get_hit", |b| {
        b.iter(|| {
            i += 1;
            get(&mut shard, work.key(i));
        })
    });
    c.bench_function("set_replace_100b", |b| {
        b.iter(|| {
            i += 1;
            set(&mut shard, work.key(i));
        })
    });
    c.bench_function("mixed_90_get_10_set", |b| {
        b.iter(|| {
            i += 1;
            match i % 10 {
                0 => set(&mut shard, work.key(i)),
                _ => get(&mut shard, work.key(i)),
            }
        })
    });
    c.bench_function("set_new_100b", |b| {
        b.iter_custom(|iters| insert_fresh(&work, iters))
    });
}

/// Times `iters` inserts of new keys, into fresh shards of 100k keys each.
fn insert_fresh(work: &Workload, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let mut shard = empty_shard();
        let n = (iters - done).min(KEYS as u64) as usize;
        let start = Instant::now();
        (0..n).for_each(|i| set(&mut shard, work.shuffled_key(i)));
        total += start.elapsed();
        done += n as u64;
    }
    total
}

criterion_group!(shard_benches, benches);
criterion_main!(shard_benches);
