//! Capacity planning from the ring alone: each node's share of the key space, what is
//! lost when one fails, and what moves when one is added or removed.
//!
//! The numbers are exact shares of the key hash's range, not samples: the range is cut
//! at every point of the continuums compared, and each piece is owned by one node
//! before and one after. They are what a key hash that spreads keys evenly over its
//! range gives, which the hashes here do for realistic keys (session ids, `prefix:N`);
//! a handful of keys, or keys built to collide, can stray from them.

use serde::Serialize;

use super::continuum::{Continuum, Ketama, RingError};
use super::node::Node;

/// What moves between two continuums over the same node list, as shares of all keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transfer {
    /// The share of keys whose node changes.
    pub moved: f64,
    /// Per node, the share of all keys that leave it.
    pub out: Vec<f64>,
    /// Per node, the share of all keys that arrive on it.
    pub into: Vec<f64>,
}

/// Calls `piece(len, owner_a, owner_b)` for every piece of the hash range on which
/// both continuums keep one owner. The pieces cover `0..=max` of the key hash.
fn sweep(a: &Continuum, b: &Continuum, mut piece: impl FnMut(u64, usize, usize)) {
    let max = a.ketama().hash.max_value();
    let values = a.points().iter().chain(b.points()).map(|p| p.value);
    let mut bounds: Vec<u32> = values.filter(|&v| v <= max).collect();
    bounds.push(max);
    bounds.sort_unstable();
    bounds.dedup();
    let mut start = 0u64;
    for bound in bounds {
        let end = u64::from(bound) + 1;
        piece(end - start, a.locate_hash(bound), b.locate_hash(bound));
        start = end;
    }
}

/// The size of the key hash's range, as a float for dividing by.
fn range(continuum: &Continuum) -> f64 {
    f64::from(continuum.ketama().hash.max_value()) + 1.0
}

/// Each node's share of the key space (ejected nodes get 0).
///
/// # Examples
///
/// ```
/// use corecache::cluster::{plan, Ketama, Mode, Node};
/// let nodes = vec![Node::new("a", 1), Node::new("b", 1).with_weight(3)];
/// let ring = Ketama::new(Mode::Twemproxy).continuum(&nodes).unwrap();
/// let shares = plan::shares(&ring);
/// assert!((shares[1] - 0.75).abs() < 0.05);
/// ```
pub fn shares(continuum: &Continuum) -> Vec<f64> {
    let mut owned = vec![0u64; continuum.node_count()];
    sweep(continuum, continuum, |len, owner, _| owned[owner] += len);
    let total = range(continuum);
    owned.into_iter().map(|len| len as f64 / total).collect()
}

/// What moves from `before` to `after`; both must index the same node list.
///
/// # Panics
///
/// If the two continuums were built over node lists of different lengths.
pub fn transfer(before: &Continuum, after: &Continuum) -> Transfer {
    let n = before.node_count();
    assert_eq!(
        n,
        after.node_count(),
        "continuums over different node lists"
    );
    let (mut out, mut into) = (vec![0u64; n], vec![0u64; n]);
    sweep(before, after, |len, from, to| {
        if from != to {
            out[from] += len;
            into[to] += len;
        }
    });
    let total = range(before);
    let share = |lens: Vec<u64>| lens.into_iter().map(|l| l as f64 / total).collect();
    let out: Vec<f64> = share(out);
    Transfer {
        moved: out.iter().sum(),
        out,
        into: share(into),
    }
}

/// One node's line of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodePlan {
    /// `host:port`.
    pub node: String,
    /// The configured weight.
    pub weight: u32,
    /// Its points on the ring.
    pub points: usize,
    /// Its share of the key space.
    pub share: f64,
    /// The share of all keys that miss once it fails and clients eject it: its own keys
    /// plus any that the rebuilt ring moves between the survivors.
    pub lost_if_down: f64,
    /// Of `lost_if_down`, the part that moves between survivors: zero for unweighted
    /// continuums and equal weights, a little with unequal weights or float effects.
    pub survivors_moved_if_down: f64,
}

/// A node added to or removed from the list, and what that moves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// `"add"` or `"remove"`.
    pub kind: &'static str,
    /// The node added or removed (`host:port`).
    pub node: String,
    /// The share of all keys whose node changes.
    pub moved: f64,
    /// Of those, the share that goes to (on add) or comes from (on remove) that node.
    pub moved_with_node: f64,
    /// Of those, the share that moves between the other nodes: zero for unweighted
    /// continuums and equal weights.
    pub moved_between_others: f64,
    /// Per node of the larger list: share after, and what leaves and arrives.
    pub nodes: Vec<NodeChange>,
}

/// One node's part in a [`Change`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeChange {
    /// `host:port`.
    pub node: String,
    /// Its share before the change (0 for a node being added).
    pub share_before: f64,
    /// Its share after the change (0 for a node being removed).
    pub share_after: f64,
    /// The share of all keys that leave it.
    pub out: f64,
    /// The share of all keys that arrive on it.
    pub into: f64,
}

/// Per node: share, points and what its failure loses.
///
/// # Errors
///
/// [`RingError`] when `nodes` is empty.
pub fn node_plans(ketama: &Ketama, nodes: &[Node]) -> Result<Vec<NodePlan>, RingError> {
    let full = ketama.continuum(nodes)?;
    let shares = shares(&full);
    let mut plans = Vec::with_capacity(nodes.len());
    for (index, node) in nodes.iter().enumerate() {
        let lost = if nodes.len() == 1 {
            1.0
        } else {
            transfer(&full, &ketama.continuum_ejecting(nodes, &[index])?).moved
        };
        plans.push(NodePlan {
            node: node.address(),
            weight: node.weight,
            points: full.points_of(index),
            share: shares[index],
            lost_if_down: lost,
            survivors_moved_if_down: (lost - shares[index]).max(0.0),
        });
    }
    Ok(plans)
}

/// What adding `added` to `nodes` moves. The new node goes last in the list, as a
/// client appends it.
///
/// # Errors
///
/// [`RingError`] when `nodes` is empty.
pub fn add(ketama: &Ketama, nodes: &[Node], added: &Node) -> Result<Change, RingError> {
    let mut grown = nodes.to_vec();
    grown.push(added.clone());
    let before = ketama.continuum_ejecting(&grown, &[nodes.len()])?;
    let after = ketama.continuum(&grown)?;
    Ok(change("add", &grown, nodes.len(), &before, &after))
}

/// What removing the node at `index` moves. The ring is rebuilt without it while the
/// others keep their indices, which places keys as a list without it does, except
/// that points with equal values (rare) could break ties differently.
///
/// # Errors
///
/// [`RingError`] when `nodes` has no other node.
pub fn remove(ketama: &Ketama, nodes: &[Node], index: usize) -> Result<Change, RingError> {
    let before = ketama.continuum(nodes)?;
    let after = ketama.continuum_ejecting(nodes, &[index])?;
    Ok(change("remove", nodes, index, &before, &after))
}

fn change(
    kind: &'static str,
    nodes: &[Node],
    changed: usize,
    before: &Continuum,
    after: &Continuum,
) -> Change {
    let moved = transfer(before, after);
    let with_node = moved.into[changed] + moved.out[changed];
    let (share_before, share_after) = (shares(before), shares(after));
    let per_node = |(i, node): (usize, &Node)| NodeChange {
        node: node.address(),
        share_before: share_before[i],
        share_after: share_after[i],
        out: moved.out[i],
        into: moved.into[i],
    };
    Change {
        kind,
        node: nodes[changed].address(),
        moved: moved.moved,
        moved_with_node: with_node,
        moved_between_others: (moved.moved - with_node).max(0.0),
        nodes: nodes.iter().enumerate().map(per_node).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Hash, Mode};

    fn local(ports: std::ops::Range<u16>) -> Vec<Node> {
        ports.map(|p| Node::new("127.0.0.1", p)).collect()
    }

    /// Equal to the three decimals ketama.md gives, allowing for its rounding.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.001
    }

    #[test]
    fn shares_match_the_measured_ones() {
        // ketama.md section 5: exact ring shares of the 3-node continuums.
        let ring = Ketama::new(Mode::Libmemcached).continuum(&local(22141..22144));
        let s = shares(&ring.unwrap());
        assert!(
            close(s[0], 0.348) && close(s[1], 0.371) && close(s[2], 0.282),
            "{s:?}"
        );
        let ring = Ketama::new(Mode::Twemproxy).continuum(&local(22141..22144));
        let s = shares(&ring.unwrap());
        assert!(
            close(s[0], 0.327) && close(s[1], 0.335) && close(s[2], 0.338),
            "{s:?}"
        );
        assert!(close(s.iter().sum(), 1.0));
    }

    #[test]
    fn adding_a_fourth_moves_only_to_it() {
        let ketama = Ketama::new(Mode::Libmemcached);
        let change = add(
            &ketama,
            &local(22141..22144),
            &Node::new("127.0.0.1", 22144),
        )
        .unwrap();
        assert!(close(change.moved, 0.226), "{change:?}");
        assert!(close(change.moved_with_node, change.moved));
        assert_eq!(change.moved_between_others, 0.0);
        assert_eq!(change.nodes[3].out, 0.0);
    }

    #[test]
    fn a_failure_loses_the_nodes_share_and_nothing_else() {
        let plans = node_plans(&Ketama::new(Mode::Twemproxy), &local(22141..22144)).unwrap();
        for plan in plans {
            assert!(close(plan.lost_if_down, plan.share), "{plan:?}");
            assert_eq!(plan.survivors_moved_if_down, 0.0);
        }
    }

    /// Hashes from a fixed linear congruential generator: enough to check the sweep
    /// against sampling without a random-number crate.
    fn sampled_hashes(count: usize) -> impl Iterator<Item = u32> {
        let mut state = 12345u64;
        (0..count).map(move |_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 32) as u32
        })
    }

    #[test]
    fn unequal_weights_move_keys_between_survivors_as_sampling_shows() {
        let nodes: Vec<Node> = (1..4u32)
            .map(|w| Node::new("127.0.0.1", 22140 + w as u16).with_weight(w))
            .collect();
        let ketama = Ketama::new(Mode::LibmemcachedWeighted);
        let (before, after) = (
            ketama.continuum(&nodes).unwrap(),
            ketama.continuum_ejecting(&nodes, &[2]).unwrap(),
        );
        let samples = 200_000;
        let (mut owned, mut between) = ([0usize; 3], 0);
        for hash in sampled_hashes(samples) {
            let (from, to) = (before.locate_hash(hash), after.locate_hash(hash));
            owned[from] += 1;
            between += usize::from(from != 2 && from != to);
        }
        let change = remove(&ketama, &nodes, 2).unwrap();
        let sampled = |count: usize| count as f64 / samples as f64;
        assert!((change.moved_between_others - sampled(between)).abs() < 0.004);
        assert!(change.moved_between_others > 0.02, "{change:?}");
        for (node, &count) in change.nodes.iter().zip(&owned) {
            assert!((node.share_before - sampled(count)).abs() < 0.004);
        }
    }

    #[test]
    fn crc32_shares_cover_only_its_fifteen_bits() {
        let ketama = Ketama::new(Mode::Twemproxy).with_hash(Hash::Crc32);
        let ring = ketama.continuum(&local(22141..22144)).unwrap();
        let shares = shares(&ring);
        let first = ring.points()[0].node as usize;
        assert!(close(shares[first], 1.0), "{shares:?}");
    }

    #[test]
    fn a_single_node_loses_everything() {
        let plans = node_plans(&Ketama::new(Mode::Libmemcached), &local(1..2)).unwrap();
        assert_eq!((plans[0].share, plans[0].lost_if_down), (1.0, 1.0));
    }
}
