//! The 32-bit key hashes that libmemcached (libhashkit) and twemproxy offer, computed
//! exactly as those C libraries compute them on x86-64.
//!
//! "Exactly" includes their accidents, because a key placed by a different number lands
//! on a different node:
//!
//! - the C code reads keys through `const char *`, and `char` is signed on x86-64, so in
//!   one_at_a_time, every FNV variant and hsieh's three-byte tail a byte of 0x80 or more
//!   is sign-extended (0xC3 counts as 0xFFFF_FFC3);
//! - `fnv1a_64` keeps only 32 bits of state, `fnv1_64` keeps 64 and returns the low 32;
//! - `crc32` is not the CRC-32 everyone else means: it returns bits 16..30 of it, so its
//!   values lie in `0..=0x7fff` (twemproxy's `crc32a` is the usual CRC-32);
//! - `crc16` never masks its state to 16 bits, so long keys give values up to 2^32.
//!
//! MD5 comes from the `md-5` crate; everything else is a few lines here, checked against
//! values taken from the real libhashkit (`tests/data/ketama/ketama_vectors_hashfns.csv`)
//! and, for the hashes only twemproxy has, against nutcracker itself in CI.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};

/// A key-hash function, named as twemproxy's `hash:` setting names it.
///
/// The set is twemproxy 0.5.0's (`HASH_CODEC` in `nc_hashkit.h`). libmemcached's
/// `MEMCACHED_HASH_*` has most of them (`default` is one_at_a_time, `crc` is `crc32`;
/// hsieh, murmur and jenkins depend on the build) but not crc16 or crc32a.
/// one_at_a_time, md5 and the FNV hashes are checked against libhashkit's own values;
/// all twelve are checked against nutcracker in CI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Hash {
    /// Bob Jenkins' one-at-a-time: libmemcached's default.
    #[value(name = "one_at_a_time")]
    OneAtATime,
    /// The first four bytes of the MD5 digest, little-endian.
    #[value(name = "md5")]
    Md5,
    /// twemproxy's CRC-16 (CCITT table, state not masked to 16 bits).
    #[value(name = "crc16")]
    Crc16,
    /// Bits 16..30 of CRC-32: libmemcached's `crc`.
    #[value(name = "crc32")]
    Crc32,
    /// The usual CRC-32 (IEEE, reflected).
    #[value(name = "crc32a")]
    Crc32a,
    /// FNV-1 with 64-bit state, low 32 bits returned.
    #[value(name = "fnv1_64")]
    Fnv1_64,
    /// FNV-1a with the 64-bit offset basis and prime truncated to 32 bits: twemproxy's
    /// default.
    #[value(name = "fnv1a_64")]
    Fnv1a64,
    /// FNV-1, 32 bits.
    #[value(name = "fnv1_32")]
    Fnv1_32,
    /// FNV-1a, 32 bits.
    #[value(name = "fnv1a_32")]
    Fnv1a32,
    /// Paul Hsieh's SuperFastHash.
    #[value(name = "hsieh")]
    Hsieh,
    /// MurmurHash2 seeded with `0xdeadbeef * length`.
    #[value(name = "murmur")]
    Murmur,
    /// Bob Jenkins' lookup3 `hashlittle` with initial value 13.
    #[value(name = "jenkins")]
    Jenkins,
}

impl Hash {
    /// Every hash, in twemproxy's order.
    pub const ALL: [Hash; 12] = [
        Hash::OneAtATime,
        Hash::Md5,
        Hash::Crc16,
        Hash::Crc32,
        Hash::Crc32a,
        Hash::Fnv1_64,
        Hash::Fnv1a64,
        Hash::Fnv1_32,
        Hash::Fnv1a32,
        Hash::Hsieh,
        Hash::Murmur,
        Hash::Jenkins,
    ];

    /// Hashes `key` as the C libraries do on x86-64.
    ///
    /// # Examples
    ///
    /// ```
    /// use corecache::cluster::Hash;
    /// assert_eq!(Hash::OneAtATime.hash(b"127.0.0.1:22141-0"), 4079772409);
    /// assert_eq!(Hash::Md5.hash(b"test"), 3446378249);
    /// ```
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            Hash::OneAtATime => one_at_a_time(key),
            Hash::Md5 => md5_u32(key),
            Hash::Crc16 => crc16(key),
            Hash::Crc32 => crc32(key),
            Hash::Crc32a => crc32a(key),
            Hash::Fnv1_64 => fnv1_64(key),
            Hash::Fnv1a64 => fnv1a_64(key),
            Hash::Fnv1_32 => fnv1_32(key),
            Hash::Fnv1a32 => fnv1a_32(key),
            Hash::Hsieh => hsieh(key),
            Hash::Murmur => murmur(key),
            Hash::Jenkins => jenkins(key),
        }
    }

    /// The largest value the hash can return. Only `crc32` falls short of `u32::MAX`,
    /// which matters when predicting shares: its keys all hash into the first 2^15
    /// values of the ring.
    pub fn max_value(self) -> u32 {
        match self {
            Hash::Crc32 => 0x7fff,
            _ => u32::MAX,
        }
    }

    /// The name twemproxy's configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Hash::OneAtATime => "one_at_a_time",
            Hash::Md5 => "md5",
            Hash::Crc16 => "crc16",
            Hash::Crc32 => "crc32",
            Hash::Crc32a => "crc32a",
            Hash::Fnv1_64 => "fnv1_64",
            Hash::Fnv1a64 => "fnv1a_64",
            Hash::Fnv1_32 => "fnv1_32",
            Hash::Fnv1a32 => "fnv1a_32",
            Hash::Hsieh => "hsieh",
            Hash::Murmur => "murmur",
            Hash::Jenkins => "jenkins",
        }
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Hash::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hash {0:?}: want one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins")]
pub struct UnknownHash(pub String);

impl FromStr for Hash {
    type Err = UnknownHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::ALL
            .into_iter()
            .find(|hash| hash.name() == s)
            .ok_or_else(|| UnknownHash(s.to_owned()))
    }
}

/// A byte as the C code sees it through a signed `char`, widened to 32 bits.
fn signed(byte: u8) -> u32 {
    byte as i8 as i32 as u32
}

/// Little-endian 32-bit word from up to four bytes, missing bytes zero.
fn le_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0, |word, &byte| (word << 8) | u32::from(byte))
}

/// The MD5 digest of `bytes`.
pub fn md5_digest(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// The first four digest bytes as a little-endian number: libmemcached's and
/// twemproxy's `md5` key hash, and the first of the four ring points a digest gives.
pub fn md5_u32(key: &[u8]) -> u32 {
    le_u32(&md5_digest(key)[..4])
}

/// Jenkins one-at-a-time, libmemcached's default key hash.
pub fn one_at_a_time(key: &[u8]) -> u32 {
    let mut h = 0u32;
    for &byte in key {
        h = h.wrapping_add(signed(byte));
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h.wrapping_add(h << 15)
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 0x811c_9dc5;
const FNV_32_PRIME: u32 = 0x0100_0193;

/// FNV-1 over 64-bit state; the byte is sign-extended to 64 bits before the xor.
pub fn fnv1_64(key: &[u8]) -> u32 {
    let step = |h: u64, &b: &u8| h.wrapping_mul(FNV_64_PRIME) ^ (b as i8 as i64 as u64);
    key.iter().fold(FNV_64_INIT, step) as u32
}

/// FNV-1a with the 64-bit constants truncated to 32 bits, which equals the low 32 bits
/// of true 64-bit FNV-1a.
pub fn fnv1a_64(key: &[u8]) -> u32 {
    let step = |h: u32, &b: &u8| (h ^ signed(b)).wrapping_mul(FNV_64_PRIME as u32);
    key.iter().fold(FNV_64_INIT as u32, step)
}

/// FNV-1, 32 bits.
pub fn fnv1_32(key: &[u8]) -> u32 {
    let step = |h: u32, &b: &u8| h.wrapping_mul(FNV_32_PRIME) ^ signed(b);
    key.iter().fold(FNV_32_INIT, step)
}

/// FNV-1a, 32 bits.
pub fn fnv1a_32(key: &[u8]) -> u32 {
    let step = |h: u32, &b: &u8| (h ^ signed(b)).wrapping_mul(FNV_32_PRIME);
    key.iter().fold(FNV_32_INIT, step)
}

/// The CRC-16 table (CCITT polynomial 0x1021, most significant bit first).
const CRC16_TABLE: [u32; 256] = crc16_table();

/// The CRC-32 table (IEEE polynomial, reflected: 0xEDB88320).
const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc16_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc & 0xffff;
        i += 1;
    }
    table
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// twemproxy's CRC-16: the state is a 32-bit integer that is shifted left and never
/// masked, so the result is not limited to 16 bits.
pub fn crc16(key: &[u8]) -> u32 {
    let step =
        |crc: u32, &b: &u8| (crc << 8) ^ CRC16_TABLE[((crc >> 8) ^ u32::from(b)) as usize & 0xff];
    key.iter().fold(0, step)
}

/// The standard CRC-32 state after `key`, before the final inversion.
fn crc32_state(key: &[u8]) -> u32 {
    let step = |crc: u32, &b: &u8| (crc >> 8) ^ CRC32_TABLE[((crc ^ u32::from(b)) & 0xff) as usize];
    key.iter().fold(u32::MAX, step)
}

/// libmemcached's `crc` and twemproxy's `crc32`: 15 bits of the CRC-32.
pub fn crc32(key: &[u8]) -> u32 {
    (!crc32_state(key) >> 16) & 0x7fff
}

/// The usual CRC-32 (twemproxy's `crc32a`).
pub fn crc32a(key: &[u8]) -> u32 {
    !crc32_state(key)
}

/// Paul Hsieh's SuperFastHash; the third byte of a three-byte tail is read through a
/// signed `char`.
pub fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut chunks = key.chunks_exact(4);
    let mut h = chunks.by_ref().fold(0u32, hsieh_block);
    let tail = chunks.remainder();
    match tail.len() {
        3 => {
            h = h.wrapping_add(le_u32(&tail[..2]));
            h ^= h << 16;
            h ^= signed(tail[2]) << 18;
            h = h.wrapping_add(h >> 11);
        }
        2 => {
            h = h.wrapping_add(le_u32(tail));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        1 => {
            h = h.wrapping_add(u32::from(tail[0]));
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    hsieh_avalanche(h)
}

fn hsieh_block(mut h: u32, block: &[u8]) -> u32 {
    h = h.wrapping_add(le_u32(&block[..2]));
    let tmp = (le_u32(&block[2..]) << 11) ^ h;
    h = (h << 16) ^ tmp;
    h.wrapping_add(h >> 11)
}

fn hsieh_avalanche(mut h: u32) -> u32 {
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h.wrapping_add(h >> 6)
}

const MURMUR_M: u32 = 0x5bd1_e995;

/// MurmurHash2, seeded as twemproxy and libmemcached seed it: `0xdeadbeef * length`.
pub fn murmur(key: &[u8]) -> u32 {
    let length = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(length) ^ length;
    let mut chunks = key.chunks_exact(4);
    for chunk in chunks.by_ref() {
        let mut k = le_u32(chunk).wrapping_mul(MURMUR_M);
        k ^= k >> 24;
        h = h.wrapping_mul(MURMUR_M) ^ k.wrapping_mul(MURMUR_M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        h = (h ^ le_u32(tail)).wrapping_mul(MURMUR_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR_M);
    h ^ (h >> 15)
}

/// The initial value twemproxy and libmemcached give lookup3.
const JENKINS_INITVAL: u32 = 13;

/// Bob Jenkins' lookup3 `hashlittle(key, length, 13)`.
pub fn jenkins(key: &[u8]) -> u32 {
    hashlittle(key, JENKINS_INITVAL)
}

/// lookup3's `hashlittle`: 12-byte blocks mixed into three words, the last block
/// (zero-padded) run through `final`; an empty key returns the initial state unmixed.
fn hashlittle(key: &[u8], initval: u32) -> u32 {
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let mut abc = [init; 3];
    if key.is_empty() {
        return abc[2];
    }
    let last = (key.len() - 1) / 12 * 12;
    for block in key[..last].chunks_exact(12) {
        add_block(&mut abc, block);
        lookup3_mix(&mut abc);
    }
    add_block(&mut abc, &key[last..]);
    lookup3_final(&mut abc);
    abc[2]
}

fn add_block(abc: &mut [u32; 3], block: &[u8]) {
    for (word, bytes) in abc.iter_mut().zip(block.chunks(4)) {
        *word = word.wrapping_add(le_u32(bytes));
    }
}

fn lookup3_mix([a, b, c]: &mut [u32; 3]) {
    *a = a.wrapping_sub(*c) ^ c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn lookup3_final([a, b, c]: &mut [u32; 3]) {
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(14));
    *a = (*a ^ *c).wrapping_sub(c.rotate_left(11));
    *b = (*b ^ *a).wrapping_sub(a.rotate_left(25));
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(16));
    *a = (*a ^ *c).wrapping_sub(c.rotate_left(4));
    *b = (*b ^ *a).wrapping_sub(a.rotate_left(14));
    *c = (*c ^ *b).wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32a_is_the_standard_crc32() {
        assert_eq!(crc32a(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn crc32_keeps_fifteen_bits_of_crc32() {
        assert_eq!(crc32(b"123456789"), (0xcbf4_3926 >> 16) & 0x7fff);
        assert!(Hash::ALL
            .iter()
            .all(|h| h.hash(b"some key") <= h.max_value()));
    }

    #[test]
    fn crc_tables_start_as_the_published_ones() {
        assert_eq!(CRC16_TABLE[..4], [0x0000, 0x1021, 0x2042, 0x3063]);
        assert_eq!(CRC16_TABLE[255], 0x1ef0);
        assert_eq!(CRC32_TABLE[1], 0x7707_3096);
        assert_eq!(CRC32_TABLE[255], 0x2d02_ef8d);
    }

    #[test]
    fn hashlittle_matches_lookup3_published_values() {
        // From the self-test in lookup3.c.
        assert_eq!(hashlittle(b"", 0), 0xdead_beef);
        assert_eq!(
            hashlittle(b"Four score and seven years ago", 0),
            0x1777_0551
        );
        assert_eq!(
            hashlittle(b"Four score and seven years ago", 1),
            0xcd62_8161
        );
    }

    #[test]
    fn names_round_trip() {
        for hash in Hash::ALL {
            assert_eq!(hash.name().parse::<Hash>(), Ok(hash));
        }
        assert!("fnv1a-64".parse::<Hash>().is_err());
    }

    #[test]
    fn high_bytes_are_sign_extended() {
        assert_eq!(signed(0xc3), 0xffff_ffc3);
        assert_eq!(one_at_a_time("café".as_bytes()), 3650908318);
    }
}
