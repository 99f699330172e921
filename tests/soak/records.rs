//! Values that carry their own checksum, and the generator that picks them.

use super::*;

/// xorshift64*: cheap, and good enough to mix operations.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Value sizes: mostly small, some of a few KiB, a few of tens of KiB, so that several
/// slab classes are used and some values span more than one read.
pub(crate) fn payload_len(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=79 => 8 + rng.below(248),
        80..=97 => 256 + rng.below(3840),
        _ => 4096 + rng.below(28 * 1024),
    }
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The flags every value of `key` is stored with, so that flags from another key's
/// item show.
pub(crate) fn flags_for(key: &str) -> u32 {
    (fnv(key.as_bytes()) >> 32) as u32
}

/// One record, `key|writer|seq|payload|checksum;`, the checksum covering all before it.
pub(crate) fn record(key: &str, writer: usize, seq: u64, len: usize) -> Vec<u8> {
    let mut out = format!("{key}|{writer}|{seq}|").into_bytes();
    let start = (seq as usize).wrapping_mul(31).wrapping_add(writer);
    out.extend((0..len).map(|i| b'a' + (start.wrapping_add(i * 7) % 26) as u8));
    let sum = fnv(&out);
    out.extend_from_slice(format!("|{sum:016x};").as_bytes());
    out
}

/// Checks that `value` is whole records of `key`, each with a valid checksum.
pub(crate) fn check_records(key: &str, value: &[u8]) -> Result<(), String> {
    let body = value
        .strip_suffix(b";")
        .ok_or_else(|| format!("value of {key} does not end a record: {}", show(value)))?;
    body.split(|&b| b == b';')
        .try_for_each(|rec| check_record(key, rec))
}

pub(crate) fn check_record(key: &str, rec: &[u8]) -> Result<(), String> {
    let fields: Vec<&[u8]> = rec.split(|&b| b == b'|').collect();
    if fields.len() != 5 || fields[4].len() != 16 {
        return Err(format!("malformed record in {key}: {}", show(rec)));
    }
    if fields[0] != key.as_bytes() {
        return Err(format!("record of another key in {key}: {}", show(rec)));
    }
    let signed = &rec[..rec.len() - 17];
    if fields[4] != format!("{:016x}", fnv(signed)).as_bytes() {
        return Err(format!("bad checksum in {key}: {}", show(rec)));
    }
    Ok(())
}

/// A counter's value: digits, perhaps padded with spaces after a `decr` shortened it.
pub(crate) fn counter_value(data: &[u8]) -> Result<u64, String> {
    let digits = std::str::from_utf8(data).map_err(|_| format!("counter {}", show(data)))?;
    digits
        .trim_end_matches(' ')
        .parse()
        .map_err(|_| format!("counter holds {}", show(data)))
}
