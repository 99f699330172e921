//! Parser throughput: a get line, a multi-get, and a set with a 100-byte value, parsed
//! from a buffer as a connection would see them.

use corecache::protocol::text::{parse, Command, Limits, Parse};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const LIMITS: Limits = Limits {
    item_size_max: 1 << 20,
    item_overhead: 59,
    flags_overhead: 4,
};

fn parse_one(buf: &[u8]) -> usize {
    match parse(buf, &LIMITS) {
        Parse::Request(request) => match request.command {
            Command::Get { keys, .. } => keys.count() + request.len,
            _ => request.len,
        },
        _ => 0,
    }
}

fn bench(c: &mut Criterion) {
    let get = b"get user:session:0123456789abcdef\r\n".to_vec();
    let multi = {
        let keys: Vec<String> = (0..20).map(|i| format!("user:{i:08}")).collect();
        format!("get {}\r\n", keys.join(" ")).into_bytes()
    };
    let mut set = b"set user:session:0123456789abcdef 0 3600 100\r\n".to_vec();
    set.extend(std::iter::repeat(b'x').take(100));
    set.extend_from_slice(b"\r\n");

    let mut group = c.benchmark_group("parse");
    for (name, input) in [("get", &get), ("get_20_keys", &multi), ("set_100b", &set)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_one(black_box(input))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
