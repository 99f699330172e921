//! The ketama continuum: points on a 32-bit ring, each owned by a node, and a key
//! placed on the node owning the first point at or after the key's hash.
//!
//! "Ketama" names several incompatible continuums (`shared/reference/ketama.md`); a
//! [`Mode`] picks one, a [`Ketama`] adds the key hash, and [`Ketama::continuum`] builds
//! the ring for a node list. The rules every mode shares, each taken from the C
//! libraries because a difference moves keys:
//!
//! - points sort by value, and equal values by node index, so a tie goes to the node
//!   configured first (libmemcached 1.1; twemproxy leaves the order to `qsort`);
//! - lookup takes the first point whose value is at least the hash, and wraps to the
//!   first point past the last one;
//! - a list of one node places every key on it without hashing, even if it is ejected;
//! - ejected nodes keep their index: the ring is rebuilt from the live nodes, but the
//!   answer still indexes the configured list, and weighted shares are computed over
//!   the live nodes only.

use std::fmt;

use super::hash::{md5_digest, Hash};
use super::node::Node;

/// Points per node in libmemcached's unweighted `KETAMA` continuum.
pub const UNWEIGHTED_POINTS: u32 = 100;

/// Points per node, at an equal share, in the weighted MD5 continuums (libmemcached
/// `KETAMA_WEIGHTED`, twemproxy); each MD5 digest gives four.
pub const WEIGHTED_POINTS: u32 = 160;

/// Points taken from one MD5 digest.
const POINTS_PER_DIGEST: u32 = 4;

/// Which client's continuum to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// libmemcached `MEMCACHED_BEHAVIOR_KETAMA` (pylibmc `ketama`, php-memcached
    /// `DISTRIBUTION_CONSISTENT` and its session handler's default): 100 points per node,
    /// each the key hash (one_at_a_time unless changed) of `host[:port]-i`. Weights are
    /// ignored, as libmemcached ignores them when the behaviour is set after the servers
    /// are added (pylibmc sets it before, which turns a weight above 1 into the
    /// weighted continuum: use the libmemcached-weighted mode with one_at_a_time for that).
    Libmemcached,
    /// libmemcached `KETAMA_WEIGHTED` (pylibmc `ketama_weighted`, php-memcached
    /// `OPT_LIBKETAMA_COMPATIBLE`): weighted MD5 points of `host[:port]-i`, key hash MD5.
    LibmemcachedWeighted,
    /// twemproxy (nutcracker) `distribution: ketama`: the weighted MD5 continuum, with a
    /// server's alias in place of its address when it has one; key hash fnv1a_64 unless
    /// the pool's `hash:` says otherwise. An empty key hashes to 0.
    Twemproxy,
    /// libmemcached `KETAMA_WEIGHTED` with `DISTRIBUTION_CONSISTENT_KETAMA_SPY`: points
    /// of `/host:port-i`, which only spymemcached before 2.5 matches.
    LibmemcachedSpy,
    /// The original last.fm libketama: points of `host:port-i` with the port always
    /// present, the digest count computed as `floorf(share * 40.0 * n)`.
    Libketama,
}

impl Mode {
    /// The key hash a client in this mode uses unless told otherwise.
    pub fn default_hash(self) -> Hash {
        match self {
            Mode::Libmemcached => Hash::OneAtATime,
            Mode::LibmemcachedWeighted | Mode::LibmemcachedSpy | Mode::Libketama => Hash::Md5,
            Mode::Twemproxy => Hash::Fnv1a64,
        }
    }

    /// Whether the mode ignores node weights.
    pub fn is_weighted(self) -> bool {
        self != Mode::Libmemcached
    }

    /// The name `--mode` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Libmemcached => "libmemcached",
            Mode::LibmemcachedWeighted => "libmemcached-weighted",
            Mode::Twemproxy => "twemproxy",
            Mode::LibmemcachedSpy => "libmemcached-spy",
            Mode::Libketama => "libketama",
        }
    }

    /// The text before `-i` in a node's point strings.
    fn point_prefix(self, node: &Node) -> String {
        match (self, &node.alias) {
            (Mode::Twemproxy, Some(alias)) => alias.clone(),
            (Mode::LibmemcachedSpy, _) => format!("/{}", node.address()),
            (Mode::Libketama, _) => node.address(),
            _ => node.libmemcached_name(),
        }
    }

    /// How many MD5 digests (four points each) a node of `weight` gets, out of
    /// `total` live weight over `live` nodes. The arithmetic is float32 as in C: with
    /// equal weights, 25 nodes give 39 digests (156 points), not 40.
    fn digests(self, weight: u32, total: u64, live: usize) -> u32 {
        let share = weight as f32 / total as f32;
        let count = if self == Mode::Libketama {
            (f64::from(share) * 40.0 * live as f64) as f32
        } else {
            share * WEIGHTED_POINTS as f32 / POINTS_PER_DIGEST as f32 * live as f32
        };
        count.floor() as u32
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// twemproxy's `hash_tag`: two bytes around the part of a key that is hashed, so that
/// related keys (`user:{42}:a`, `user:{42}:b`) land on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashTag(pub [u8; 2]);

impl HashTag {
    /// The part of `key` between the first opening byte and the next closing byte
    /// after it, or the whole key when either is missing or nothing lies between them.
    pub fn apply<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let [open, close] = self.0;
        let Some(start) = key.iter().position(|&b| b == open) else {
            return key;
        };
        match key[start + 1..].iter().position(|&b| b == close) {
            Some(len) if len > 0 => &key[start + 1..start + 1 + len],
            _ => key,
        }
    }
}

impl std::str::FromStr for HashTag {
    type Err = String;

    fn from_str(text: &str) -> Result<HashTag, String> {
        match text.as_bytes() {
            &[open, close] => Ok(HashTag([open, close])),
            _ => Err(format!(
                "bad hash tag {text:?}: want two bytes, such as {{}}"
            )),
        }
    }
}

/// What a continuum is built from: a mode and its key hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ketama {
    /// Whose continuum.
    pub mode: Mode,
    /// The key hash (in `Mode::Libmemcached` also the point hash).
    pub hash: Hash,
    /// twemproxy's `hash_tag`, if any.
    pub hash_tag: Option<HashTag>,
}

/// Why a continuum could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The node list is empty.
    #[error("no nodes given")]
    NoNodes,
    /// Every node of a list of two or more is ejected.
    #[error("every node is ejected")]
    NoLiveNode,
}

/// A point on the ring. Ordered by value, then by node, the order lookups rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    /// Where on the 32-bit ring.
    pub value: u32,
    /// The owner, as an index into the configured node list.
    pub node: u32,
}

/// A built ring: sorted points and the key hash that finds them.
#[derive(Clone, Debug)]
pub struct Continuum {
    points: Vec<Point>,
    nodes: usize,
    ketama: Ketama,
}

impl Ketama {
    /// `mode` with its default key hash and no hash tag.
    pub fn new(mode: Mode) -> Ketama {
        Ketama {
            mode,
            hash: mode.default_hash(),
            hash_tag: None,
        }
    }

    /// The same with another key hash.
    pub fn with_hash(self, hash: Hash) -> Ketama {
        Ketama { hash, ..self }
    }

    /// The continuum over `nodes`, all live.
    ///
    /// # Errors
    ///
    /// [`RingError::NoNodes`] when `nodes` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use corecache::cluster::{Ketama, Mode, Node};
    /// let nodes: Vec<Node> = ["127.0.0.1:22141", "127.0.0.1:22142", "127.0.0.1:22143"]
    ///     .iter()
    ///     .map(|n| n.parse().unwrap())
    ///     .collect();
    /// let ring = Ketama::new(Mode::Twemproxy).continuum(&nodes).unwrap();
    /// assert_eq!(ring.points().len(), 480);
    /// assert_eq!(ring.locate(b"key:36"), 2); // 127.0.0.1:22143, as nutcracker places it
    /// ```
    pub fn continuum(&self, nodes: &[Node]) -> Result<Continuum, RingError> {
        self.continuum_ejecting(nodes, &[])
    }

    /// The continuum over `nodes` with the nodes at the indices in `ejected` left out,
    /// as a client rebuilds it after marking them dead; the others keep their indices.
    ///
    /// # Errors
    ///
    /// [`RingError::NoNodes`] when `nodes` is empty, [`RingError::NoLiveNode`] when two
    /// or more nodes are given and all are ejected.
    pub fn continuum_ejecting(
        &self,
        nodes: &[Node],
        ejected: &[usize],
    ) -> Result<Continuum, RingError> {
        if nodes.is_empty() {
            return Err(RingError::NoNodes);
        }
        let live: Vec<usize> = (0..nodes.len()).filter(|i| !ejected.contains(i)).collect();
        if live.is_empty() && nodes.len() > 1 {
            return Err(RingError::NoLiveNode);
        }
        let mut points = self.points(nodes, &live);
        points.sort_unstable();
        Ok(Continuum {
            points,
            nodes: nodes.len(),
            ketama: *self,
        })
    }

    /// Every point of the live nodes, unsorted.
    fn points(&self, nodes: &[Node], live: &[usize]) -> Vec<Point> {
        let total: u64 = live.iter().map(|&i| u64::from(nodes[i].weight)).sum();
        let mut points = Vec::new();
        for &index in live {
            let node = &nodes[index];
            let prefix = self.mode.point_prefix(node);
            let at = |value| Point {
                value,
                node: index as u32,
            };
            if self.mode.is_weighted() {
                let digests = self.mode.digests(node.weight, total, live.len());
                points.extend(md5_points(&prefix, digests).map(at));
            } else {
                points.extend(hashed_points(&prefix, self.hash).map(at));
            }
        }
        points
    }
}

/// libmemcached's unweighted points: the point hash of `prefix-i`, one per string.
fn hashed_points(prefix: &str, hash: Hash) -> impl Iterator<Item = u32> + '_ {
    (0..UNWEIGHTED_POINTS).map(move |i| hash.hash(format!("{prefix}-{i}").as_bytes()))
}

/// The weighted continuums' points: four little-endian words of MD5(`prefix-i`).
fn md5_points(prefix: &str, digests: u32) -> impl Iterator<Item = u32> + '_ {
    (0..digests).flat_map(move |i| {
        let digest = md5_digest(format!("{prefix}-{i}").as_bytes());
        (0..4).map(move |w| u32::from_le_bytes(digest[w * 4..w * 4 + 4].try_into().unwrap()))
    })
}

impl Continuum {
    /// The index (into the configured node list) of the node that holds `key`.
    pub fn locate(&self, key: &[u8]) -> usize {
        self.locate_hash(self.key_hash(key))
    }

    /// The key hash as the client computes it: after the hash tag, and 0 for an empty
    /// key in twemproxy.
    pub fn key_hash(&self, key: &[u8]) -> u32 {
        let key = match self.ketama.hash_tag {
            Some(tag) => tag.apply(key),
            None => key,
        };
        if key.is_empty() && self.ketama.mode == Mode::Twemproxy {
            return 0;
        }
        self.ketama.hash.hash(key)
    }

    /// The node owning the first point at or after `hash`, wrapping to the first point.
    pub fn locate_hash(&self, hash: u32) -> usize {
        if self.nodes == 1 || self.points.is_empty() {
            return 0;
        }
        let at = self.points.partition_point(|p| p.value < hash);
        self.points.get(at).unwrap_or(&self.points[0]).node as usize
    }

    /// The points, sorted.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// How many nodes were configured, ejected ones included.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// What the continuum was built from.
    pub fn ketama(&self) -> Ketama {
        self.ketama
    }

    /// How many points `node` has.
    pub fn points_of(&self, node: usize) -> usize {
        self.points
            .iter()
            .filter(|p| p.node as usize == node)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(ports: std::ops::Range<u16>) -> Vec<Node> {
        ports.map(|p| Node::new("127.0.0.1", p)).collect()
    }

    #[test]
    fn float32_count_gives_156_points_to_25_equal_nodes() {
        let ring = Ketama::new(Mode::LibmemcachedWeighted).continuum(&local(1..26));
        assert_eq!(ring.unwrap().points_of(0), 156);
        let ring = Ketama::new(Mode::LibmemcachedWeighted).continuum(&local(1..25));
        assert_eq!(ring.unwrap().points_of(0), 160);
    }

    #[test]
    fn libketama_count_differs_only_at_61_nodes() {
        let digests = |n| Mode::Libketama.digests(1, n as u64, n);
        assert_eq!(digests(61), 39);
        assert_eq!(digests(25), 40);
        assert_eq!(Mode::LibmemcachedWeighted.digests(1, 25, 25), 39);
    }

    #[test]
    fn one_node_takes_every_key_even_ejected() {
        let nodes = local(1..2);
        let ring = Ketama::new(Mode::Twemproxy).continuum_ejecting(&nodes, &[0]);
        assert_eq!(ring.unwrap().locate(b"anything"), 0);
    }

    #[test]
    fn no_live_node_is_an_error() {
        let nodes = local(1..3);
        let ring = Ketama::new(Mode::Twemproxy).continuum_ejecting(&nodes, &[0, 1]);
        assert_eq!(ring.unwrap_err(), RingError::NoLiveNode);
        assert_eq!(
            Ketama::new(Mode::Twemproxy).continuum(&[]).unwrap_err(),
            RingError::NoNodes
        );
    }

    #[test]
    fn ejected_nodes_keep_their_index_and_survivors_their_keys() {
        let nodes = local(22141..22144);
        let ketama = Ketama::new(Mode::Libmemcached);
        let full = ketama.continuum(&nodes).unwrap();
        let ejected = ketama.continuum_ejecting(&nodes, &[1]).unwrap();
        for i in 0..2000 {
            let key = format!("key:{i}");
            let (before, after) = (full.locate(key.as_bytes()), ejected.locate(key.as_bytes()));
            assert_ne!(after, 1);
            assert!(
                before == 1 || before == after,
                "{key} moved between survivors"
            );
        }
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let twins = vec![Node::new("same", 1), Node::new("same", 1)];
        let ring = Ketama::new(Mode::LibmemcachedWeighted)
            .continuum(&twins)
            .unwrap();
        assert!(ring
            .points()
            .chunks(2)
            .all(|p| p[0].node == 0 && p[1].node == 1));
        assert!((0..500).all(|i| ring.locate(format!("k{i}").as_bytes()) == 0));
    }

    #[test]
    fn aliases_replace_the_address_in_twemproxy_only() {
        let mut node = Node::new("127.0.0.1", 22141);
        node.alias = Some("cache-a-0".into());
        assert_eq!(Mode::Twemproxy.point_prefix(&node), "cache-a-0");
        assert_eq!(
            Mode::LibmemcachedWeighted.point_prefix(&node),
            "127.0.0.1:22141"
        );
        assert_eq!(
            Mode::LibmemcachedSpy.point_prefix(&Node::new("h", 11211)),
            "/h:11211"
        );
    }

    #[test]
    fn hash_tags_pick_the_part_between_the_tags() {
        let tag: HashTag = "{}".parse().unwrap();
        assert_eq!(tag.apply(b"user:{42}:a"), b"42");
        assert_eq!(tag.apply(b"user:{}:a"), b"user:{}:a");
        assert_eq!(tag.apply(b"user:{42"), b"user:{42");
        assert!("{".parse::<HashTag>().is_err());
    }

    #[test]
    fn twemproxy_hashes_an_empty_key_to_zero() {
        let nodes = local(1..4);
        let ring = Ketama::new(Mode::Twemproxy).continuum(&nodes).unwrap();
        assert_eq!(ring.key_hash(b""), 0);
        let ring = Ketama::new(Mode::LibmemcachedWeighted)
            .continuum(&nodes)
            .unwrap();
        assert_eq!(ring.key_hash(b""), Hash::Md5.hash(b""));
    }
}
