"""corecache nodes behind pylibmc (libmemcached) with ketama, checked against
`corecache-ring`.

Usage: pylibmc_cluster.py [KEYS]   (default 5000 keys)

With behaviors {'ketama': True} and automatic ejection of failed servers:
  1. keys set through a 3-node client sit on the node `corecache-ring locate
     --mode libmemcached` names (every node asked directly);
  2. read through a 4-node client (the fourth node empty), exactly the keys
     that `locate` puts on the new node miss, none moves between old nodes,
     and the share that moves is within 3 points of `plan --add`;
  3. after one node is killed, exactly its keys are lost through the 3-node
     client and every other key still reads back.
Then placement alone for {'ketama_weighted': True} (equal weights and weights
1,2,3: --mode libmemcached-weighted) and for {'ketama': True} with weights
1,2,3, which libmemcached turns into the weighted MD5 continuum while keeping
one_at_a_time for keys (--mode libmemcached-weighted --hash one_at_a_time).
"""

import sys

import pylibmc

# No __pycache__ beside the scripts in the work tree.
sys.dont_write_bytecode = True

from harness import (  # noqa: E402
    Cluster, Text, check, compare_placement, holders, locate, percent, plan, run_main,
    session_keys, value_of,
)

EJECTING = {"ketama": True, "remove_failed": 1, "failure_limit": 1, "retry_timeout": 600}


def client(servers, behaviors):
    return pylibmc.Client(servers, binary=False, behaviors=behaviors)


def store(mc, keys):
    failed = mc.set_multi({k: value_of(k) for k in keys})
    check(not failed, f"{len(failed)} sets failed through pylibmc")


def grow_and_fail(keys):
    """Steps 1-3; returns (moved, predicted moved, lost, predicted loss)."""
    with Cluster(4) as cluster:
        old = [n.address for n in cluster.nodes[:3]]
        new = cluster.nodes[3].address
        three = client(old, EJECTING)
        store(three, keys)
        placed = locate("libmemcached", old, keys)
        compare_placement("ketama 3 nodes", holders(cluster.nodes, keys), placed)
        moved, predicted = grow(keys, placed, old, new)
        lost, share = fail(keys, placed, old, cluster.nodes[1], three)
        return moved, predicted, lost, share


def grow(keys, placed, old, new):
    now = locate("libmemcached", old + [new], keys)
    between = [k for k in keys if now[k] != placed[k] and now[k] != new]
    check(not between, f"{len(between)} keys move between old nodes")
    hits = client(old + [new], EJECTING).get_multi(keys)
    missed = set(keys) - set(hits)
    want = {k for k in keys if now[k] == new}
    check(missed == want, f"{len(missed)} keys missed after growth, {len(want)} placed "
          f"on the new node, {len(missed ^ want)} differ")
    check(all(v == value_of(k) for k, v in hits.items()), "wrong values after growth")
    moved = len(missed) / len(keys)
    predicted = plan("libmemcached", old, add=new)["change"]["moved"]
    check(abs(moved - predicted) < 0.03 and 0.15 < moved < 0.35,
          f"moved {percent(moved)}, predicted {percent(predicted)}")
    return moved, predicted


def read(mc, key):
    """The value, or None on a miss or an error (the first request to a dead
    node fails before libmemcached ejects it)."""
    try:
        return mc.get(key)
    except pylibmc.Error:
        return None


def fail(keys, placed, old, victim, three):
    victim.kill()
    lost = {k for k in keys if read(three, k) != value_of(k)}
    want = {k for k in keys if placed[k] == victim.address}
    check(lost == want, f"lost {len(lost)} keys, {len(want)} were on the killed node, "
          f"{len(lost ^ want)} differ")
    nodes = plan("libmemcached", old)["nodes"]
    share = next(n["lost_if_down"] for n in nodes if n["node"] == victim.address)
    return len(lost) / len(keys), share


def placement_only(keys):
    """The weighted variants; returns how many configurations were checked."""
    cases = [
        ("ketama_weighted", {"ketama_weighted": True}, [1, 1, 1], "libmemcached-weighted", None),
        ("ketama_weighted 1:2:3", {"ketama_weighted": True}, [1, 2, 3], "libmemcached-weighted", None),
        ("ketama 1:2:3", {"ketama": True}, [1, 2, 3], "libmemcached-weighted", "one_at_a_time"),
    ]
    with Cluster(3) as cluster:
        for label, behaviors, weights, mode, hash_name in cases:
            for node in cluster.nodes:
                Text(node.port).flush()
            servers = [f"{n.address}:{w}" for n, w in zip(cluster.nodes, weights)]
            store(client(servers, behaviors), keys)
            placed = locate(mode, servers, keys, hash_name)
            compare_placement(label, holders(cluster.nodes, keys), placed)
            print(f"pylibmc {label}: {len(keys)}/{len(keys)} keys placed as `locate --mode {mode}"
                  f"{' --hash ' + hash_name if hash_name else ''}` says")
    return len(cases)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"pylibmc {pylibmc.__version__}, libmemcached {pylibmc.libmemcached_version}")
    moved, predicted, lost, share = grow_and_fail(session_keys(count, 1))
    print(f"pylibmc ketama: {count}/{count} keys placed as located; adding a 4th moved "
          f"{percent(moved)} (plan: {percent(predicted)}), all to it; killing one lost "
          f"{percent(lost)} (its share: {percent(share)}), exactly its keys")
    cases = placement_only(session_keys(min(count, 2000), 2))
    return (f"pylibmc cluster: ketama placement, growth and failure as predicted; "
            f"{cases} weighted configurations placed as located")


if __name__ == "__main__":
    run_main("pylibmc cluster", main)
