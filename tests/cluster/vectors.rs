//! The ketama test vectors of `tests/data/ketama/` (copied from
//! `shared/reference/ketama/`): placements observed on real memcached nodes behind
//! pylibmc and nutcracker, libmemcached's own weighted fixture, and key hashes from
//! libhashkit. Shared by `cluster_vectors.rs` (library) and `cluster_ring.rs` (binary).
//!
//! Keys are taken from the `key_hex` column, so keys with commas, quotes or bytes that
//! are not UTF-8 need no CSV quoting rules; the other columns are read from the right.

#![allow(dead_code)]

use corecache::cluster::{Hash, Mode, Node};

/// A vector file of 200 observed placements, and the client configuration behind it.
pub struct PlacementFile {
    /// The file name under `tests/data/ketama/`.
    pub name: &'static str,
    /// Its contents.
    pub text: &'static str,
    /// The continuum the client builds.
    pub mode: Mode,
    /// The client's key hash.
    pub hash: Hash,
    /// How many of 127.0.0.1:22141, 22142, ... the client was given.
    pub nodes: u16,
}

macro_rules! placements {
    ($file:literal, $mode:expr, $hash:expr, $nodes:literal) => {
        PlacementFile {
            name: $file,
            text: include_str!(concat!("../data/ketama/", $file)),
            mode: $mode,
            hash: $hash,
            nodes: $nodes,
        }
    };
}

/// Every placement file with the configuration its header states.
pub fn placement_files() -> Vec<PlacementFile> {
    use Hash::{Fnv1a64, Md5, OneAtATime};
    use Mode::{Libmemcached, LibmemcachedWeighted, Twemproxy};
    vec![
        placements!(
            "ketama_vectors_libmemcached_ketama_3.csv",
            Libmemcached,
            OneAtATime,
            3
        ),
        placements!(
            "ketama_vectors_libmemcached_ketama_4.csv",
            Libmemcached,
            OneAtATime,
            4
        ),
        placements!(
            "ketama_vectors_libmemcached_ketama_weighted_3.csv",
            LibmemcachedWeighted,
            Md5,
            3
        ),
        placements!(
            "ketama_vectors_libmemcached_ketama_weighted_4.csv",
            LibmemcachedWeighted,
            Md5,
            4
        ),
        placements!(
            "ketama_vectors_twemproxy_fnv1a_64_3.csv",
            Twemproxy,
            Fnv1a64,
            3
        ),
        placements!(
            "ketama_vectors_twemproxy_fnv1a_64_4.csv",
            Twemproxy,
            Fnv1a64,
            4
        ),
        placements!("ketama_vectors_twemproxy_md5_3.csv", Twemproxy, Md5, 3),
        placements!("ketama_vectors_twemproxy_md5_4.csv", Twemproxy, Md5, 4),
    ]
}

impl PlacementFile {
    /// The configured nodes, in order.
    pub fn node_list(&self) -> Vec<Node> {
        (0..self.nodes)
            .map(|i| Node::new("127.0.0.1", 22141 + i))
            .collect()
    }

    /// The rows below the header.
    pub fn rows(&self) -> Vec<Placement> {
        data_lines(self.text.as_bytes(), "key,")
            .map(|line| Placement::parse(std::str::from_utf8(line).unwrap()))
            .collect()
    }
}

/// One observed placement.
#[derive(Debug)]
pub struct Placement {
    /// The key's bytes.
    pub key: Vec<u8>,
    /// The node that held it, `127.0.0.1:port`.
    pub server: String,
    /// Its index in the configured list.
    pub index: usize,
    /// The key hash under the file's configuration.
    pub key_hash: u32,
    /// Whether the hash lies past the last point, so the key wrapped to the first.
    pub wraps: bool,
}

impl Placement {
    fn parse(line: &str) -> Placement {
        let fields: Vec<&str> = line.rsplitn(7, ',').collect();
        let [_agrees, wraps, key_hash, index, server, key_hex, _key] = fields[..] else {
            panic!("bad placement line {line:?}");
        };
        Placement {
            key: unhex(key_hex),
            server: server.to_owned(),
            index: index.parse().unwrap(),
            key_hash: key_hash.parse().unwrap(),
            wraps: wraps == "1",
        }
    }
}

/// libmemcached's 8-server weighted fixture.
pub const FIXTURE: &str =
    include_str!("../data/ketama/ketama_vectors_libmemcached_fixture_weighted8.csv");

/// The fixture's servers: 10.0.1.1..8 on port 11211 with its weights.
pub fn fixture_nodes() -> Vec<Node> {
    let weights = [600, 300, 200, 350, 1000, 800, 950, 100];
    (1..=8)
        .zip(weights)
        .map(|(i, w)| Node::new(format!("10.0.1.{i}"), 11211).with_weight(w))
        .collect()
}

/// One fixture row: the key and the host each continuum picks.
pub struct FixtureRow {
    /// The key's bytes.
    pub key: Vec<u8>,
    /// libmemcached `KETAMA_WEIGHTED`.
    pub standard: String,
    /// libmemcached `KETAMA_WEIGHTED` with `CONSISTENT_KETAMA_SPY`.
    pub spy: String,
    /// The original libketama.
    pub libketama: String,
}

/// The fixture's rows.
pub fn fixture_rows() -> Vec<FixtureRow> {
    data_lines(FIXTURE.as_bytes(), "key_hex,")
        .map(|line| {
            let line = std::str::from_utf8(line).unwrap();
            let fields: Vec<&str> = line.rsplitn(4, ',').collect();
            let key_hex = fields[3].split(',').next().unwrap();
            FixtureRow {
                key: unhex(key_hex),
                standard: fields[2].to_owned(),
                spy: fields[1].to_owned(),
                libketama: fields[0].to_owned(),
            }
        })
        .collect()
}

/// libhashkit's hash values of sample strings.
pub const HASHFNS: &[u8] = include_bytes!("../data/ketama/ketama_vectors_hashfns.csv");

/// The hashes of the columns after `input_text`, in order.
pub const HASHFNS_COLUMNS: [Hash; 6] = [
    Hash::OneAtATime,
    Hash::Md5,
    Hash::Fnv1a32,
    Hash::Fnv1_32,
    Hash::Fnv1a64,
    Hash::Fnv1_64,
];

/// Each row's input bytes and the six values libhashkit gave.
pub fn hashfns_rows() -> Vec<(Vec<u8>, [u32; 6])> {
    data_lines(HASHFNS, "input_hex,")
        .map(|line| {
            let input_hex = line.split(|&b| b == b',').next().unwrap();
            let tail: Vec<&[u8]> = line.rsplitn(7, |&b| b == b',').take(6).collect();
            let mut values = [0u32; 6];
            for (value, field) in values.iter_mut().rev().zip(tail) {
                *value = std::str::from_utf8(field).unwrap().parse().unwrap();
            }
            (unhex(std::str::from_utf8(input_hex).unwrap()), values)
        })
        .collect()
}

/// The lines after the header line (which starts with `header`), without comments and
/// line ends.
fn data_lines<'a>(text: &'a [u8], header: &'a str) -> impl Iterator<Item = &'a [u8]> {
    text.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .filter(move |line| !line.starts_with(header.as_bytes()))
}

/// Bytes from hex digits.
pub fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
