//! What the load generator asks for: which keys, which value sizes, which commands, and
//! the bytes of each request on the wire. Sockets and timing live in `driver`; reading
//! the replies lives in `reply`.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::SmallRng;
use rand::RngExt;
use rand_distr::{Distribution, LogNormal, Zipf};

/// The read command a run sends; the matching write is `set` for text and `ms` for meta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadCommand {
    /// `get <key>`, one key per request.
    Get,
    /// `mg <key> v`, usually pipelined (`--depth`).
    MetaGet,
    /// `get <key> <key> ...` with a fixed number of keys.
    MultiGet(usize),
}

/// What a get miss leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissPolicy {
    /// Count it and go on.
    Ignore,
    /// Set the key next, as a cache in front of a database does.
    SetKey,
}

/// How keys are drawn from `0..keys`.
pub enum KeyDist {
    /// Every key equally likely.
    Uniform { keys: u64 },
    /// Key `i` drawn with probability proportional to `1 / (i + 1)^alpha`.
    Zipf { dist: Zipf<f64>, keys: u64 },
}

impl KeyDist {
    /// Uniform over `keys`, or Zipf with exponent `alpha` when given.
    ///
    /// # Errors
    /// No keys, or an exponent the Zipf sampler refuses.
    pub fn new(keys: u64, zipf_alpha: Option<f64>) -> Result<Self, String> {
        if keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        match zipf_alpha {
            None => Ok(KeyDist::Uniform { keys }),
            Some(alpha) => Zipf::new(keys as f64, alpha)
                .map(|dist| KeyDist::Zipf { dist, keys })
                .map_err(|e| format!("--zipf-alpha {alpha}: {e}")),
        }
    }

    /// Draws one key number.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        match self {
            KeyDist::Uniform { keys } => rng.random_range(0..*keys),
            // Zipf ranks start at 1; the most popular rank is key 0.
            KeyDist::Zipf { dist, .. } => dist.sample(rng) as u64 - 1,
        }
    }

    /// The number of keys drawn from.
    pub fn keys(&self) -> u64 {
        match self {
            KeyDist::Uniform { keys } | KeyDist::Zipf { keys, .. } => *keys,
        }
    }
}

/// How value lengths are drawn.
pub enum SizeDist {
    /// Always this many bytes.
    Fixed(usize),
    /// Lognormal with the median given at construction, clamped to `1..=max`.
    LogNormal { dist: LogNormal<f64>, max: usize },
}

impl SizeDist {
    /// Lognormal sizes with this median and shape (`sigma` of the underlying normal).
    ///
    /// # Errors
    /// A median of zero or a negative or non-finite `sigma`.
    pub fn lognormal(median: usize, sigma: f64, max: usize) -> Result<Self, String> {
        if median == 0 || median > max {
            return Err(format!("lognormal median {median} must be in 1..={max}"));
        }
        LogNormal::new((median as f64).ln(), sigma)
            .map(|dist| SizeDist::LogNormal { dist, max })
            .map_err(|e| format!("--value-sigma {sigma}: {e}"))
    }

    /// Draws one value length.
    pub fn sample(&self, rng: &mut SmallRng) -> usize {
        match self {
            SizeDist::Fixed(len) => *len,
            SizeDist::LogNormal { dist, max } => (dist.sample(rng).round() as usize).clamp(1, *max),
        }
    }

    /// The longest value this distribution draws.
    pub fn max(&self) -> usize {
        match self {
            SizeDist::Fixed(len) => *len,
            SizeDist::LogNormal { max, .. } => *max,
        }
    }
}

/// Which keys were read or written so far, over all phases and threads, so that a miss
/// on a key never touched before (a compulsory miss, which no cache can avoid) can be
/// told from a miss on a key the server evicted.
pub struct KeysSeen {
    bits: Vec<AtomicU64>,
}

impl KeysSeen {
    fn new(keys: u64) -> Self {
        KeysSeen {
            bits: (0..keys.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Marks key `id`; true when this is its first mark.
    pub fn mark(&self, id: u64) -> bool {
        let Some(word) = self.bits.get((id / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (id % 64);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
}

/// Everything that decides the requests of a run, shared by all its threads.
pub struct Workload {
    pub read: ReadCommand,
    pub keys: KeyDist,
    pub sizes: SizeDist,
    /// Fraction of requests that are writes.
    pub set_ratio: f64,
    pub on_miss: MissPolicy,
    /// Requests written together before waiting for their replies.
    pub depth: usize,
    /// Keys are this prefix followed by the key number in decimal.
    pub prefix: Vec<u8>,
    /// Keys touched so far (run state shared by the threads, not configuration).
    pub seen: KeysSeen,
    /// Value bytes, as long as the longest value.
    values: Vec<u8>,
}

impl Workload {
    /// A workload; `values` is sized from `sizes`.
    pub fn new(
        read: ReadCommand,
        keys: KeyDist,
        sizes: SizeDist,
        set_ratio: f64,
        on_miss: MissPolicy,
        depth: usize,
        prefix: &str,
    ) -> Self {
        let values = vec![b'v'; sizes.max()];
        let seen = KeysSeen::new(keys.keys());
        Workload {
            read,
            keys,
            sizes,
            set_ratio,
            on_miss,
            depth,
            prefix: prefix.as_bytes().to_vec(),
            seen,
            values,
        }
    }

    /// The number of keys in one read request.
    pub fn keys_per_read(&self) -> usize {
        match self.read {
            ReadCommand::Get | ReadCommand::MetaGet => 1,
            ReadCommand::MultiGet(keys) => keys,
        }
    }

    /// Appends a write of key `id` with a value of `len` bytes.
    pub fn encode_write(&self, out: &mut Vec<u8>, id: u64, len: usize) {
        match self.read {
            ReadCommand::MetaGet => {
                out.extend_from_slice(b"ms ");
                self.put_key(out, id);
                put_number(out, b' ', len as u64);
            }
            ReadCommand::Get | ReadCommand::MultiGet(_) => {
                out.extend_from_slice(b"set ");
                self.put_key(out, id);
                out.extend_from_slice(b" 0 0");
                put_number(out, b' ', len as u64);
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.values[..len]);
        out.extend_from_slice(b"\r\n");
    }

    /// Appends a read of the keys `ids` (one for `get` and `mg`).
    pub fn encode_read(&self, out: &mut Vec<u8>, ids: &[u64]) {
        match self.read {
            ReadCommand::MetaGet => {
                out.extend_from_slice(b"mg ");
                self.put_key(out, ids[0]);
                out.extend_from_slice(b" v\r\n");
            }
            ReadCommand::Get | ReadCommand::MultiGet(_) => {
                out.extend_from_slice(b"get");
                for &id in ids {
                    out.push(b' ');
                    self.put_key(out, id);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Appends `mg <key> s`, which asks for the stored value's length only.
    pub fn encode_size_probe(&self, out: &mut Vec<u8>, id: u64) {
        out.extend_from_slice(b"mg ");
        self.put_key(out, id);
        out.extend_from_slice(b" s\r\n");
    }

    /// The length of key `id` in bytes.
    pub fn key_len(&self, id: u64) -> usize {
        self.prefix.len() + itoa::Buffer::new().format(id).len()
    }

    fn put_key(&self, out: &mut Vec<u8>, id: u64) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    }
}

fn put_number(out: &mut Vec<u8>, sep: u8, n: u64) {
    out.push(sep);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn text() -> Workload {
        let keys = KeyDist::new(10, None).unwrap();
        Workload::new(
            ReadCommand::Get,
            keys,
            SizeDist::Fixed(3),
            0.0,
            MissPolicy::Ignore,
            1,
            "k:",
        )
    }

    #[test]
    fn encodes_text_and_meta_requests() {
        let mut w = text();
        let mut out = Vec::new();
        w.encode_write(&mut out, 7, 3);
        w.encode_read(&mut out, &[1, 22]);
        assert_eq!(out, b"set k:7 0 0 3\r\nvvv\r\nget k:1 k:22\r\n");

        w.read = ReadCommand::MetaGet;
        out.clear();
        w.encode_write(&mut out, 7, 2);
        w.encode_read(&mut out, &[5]);
        assert_eq!(out, b"ms k:7 2\r\nvv\r\nmg k:5 v\r\n");
    }

    #[test]
    fn zipf_favours_low_keys_and_stays_in_range() {
        let dist = KeyDist::new(1000, Some(1.2)).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let draws: Vec<u64> = (0..10_000).map(|_| dist.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&k| k < 1000));
        let zeros = draws.iter().filter(|&&k| k == 0).count();
        assert!(zeros > 1000, "key 0 drawn {zeros} times");
    }

    #[test]
    fn lognormal_sizes_have_the_median_asked_for() {
        let sizes = SizeDist::lognormal(150, 0.5, 4096).unwrap();
        let mut rng = SmallRng::seed_from_u64(2);
        let mut draws: Vec<usize> = (0..10_001).map(|_| sizes.sample(&mut rng)).collect();
        draws.sort_unstable();
        let median = draws[5000];
        assert!((135..=165).contains(&median), "median {median}");
    }
}
