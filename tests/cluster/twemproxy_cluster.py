"""corecache nodes behind Debian's twemproxy (nutcracker), checked against
`corecache-ring`.

Usage: twemproxy_cluster.py [KEYS]   (default 5000 keys)

For `hash: fnv1a_64` and for `hash: md5` (distribution: ketama), on a fresh
cluster each time:
  1. keys set through a 3-node pool sit on the node `corecache-ring locate`
     names (every node asked directly);
  2. read through a 4-node pool (the fourth node empty), exactly the keys that
     `locate` puts on the new node miss: none moves between the old nodes, and
     the share that moves is within 3 points of what `corecache-ring plan --add`
     predicts;
  3. after one node of the 3-node pool (auto_eject_hosts on) is killed,
     exactly its keys are lost and every other key still reads back.
Then one nutcracker with a pool for each of its twelve hashes, one with
aliases, one with weights 1,2,3 and one with a hash tag: keys set through each
land where `locate` says.
"""

import shutil
import sys
from pathlib import Path

# No __pycache__ beside the scripts in the work tree.
sys.dont_write_bytecode = True

from harness import (  # noqa: E402
    Cluster, Text, check, compare_placement, free_port, holders, locate, percent,
    plan, run_main, session_keys, value_of, wait_for_port,
)

HASHES = [
    "one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
    "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
]
# A retry timeout longer than any run, so an ejected node stays out.
EJECT = "auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000"


def nutcracker_binary():
    found = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
    check(Path(found).exists(), "nutcracker not installed (apt-get install nutcracker)")
    return found


def pool_yaml(name, port, servers, hash_name, extra="auto_eject_hosts: false"):
    lines = "\n".join(f"   - {s}" for s in servers)
    return (
        f"{name}:\n  listen: 127.0.0.1:{port}\n  hash: {hash_name}\n"
        f"  distribution: ketama\n  timeout: 2000\n  {extra}\n  servers:\n{lines}\n"
    )


def start_nutcracker(cluster, pools):
    """Starts nutcracker with `pools` ({name: (port, yaml)}) and waits for every
    pool to accept."""
    conf = Path(cluster.logs) / "nutcracker.yml"
    conf.write_text("".join(yaml for _, yaml in pools.values()))
    stats = free_port()
    cmd = [nutcracker_binary(), "-c", str(conf), "-s", str(stats), "-a", "127.0.0.1"]
    ports = [port for port, _ in pools.values()]
    proc = cluster.spawn(cmd, ports[0], "nutcracker")
    for port in ports[1:]:
        wait_for_port(port, proc, "nutcracker")


def grow_and_fail(hash_name, keys):
    """Steps 1-3 for one hash; returns (moved, predicted moved, lost, its share)."""
    with Cluster(4) as cluster:
        old = [n.address for n in cluster.nodes[:3]]
        new = cluster.nodes[3].address
        p3, p4 = free_port(), free_port()
        start_nutcracker(cluster, {
            "three": (p3, pool_yaml("three", p3, [f"{a}:1" for a in old], hash_name, EJECT)),
            "four": (p4, pool_yaml("four", p4, [f"{a}:1" for a in old + [new]], hash_name)),
        })
        three = Text(p3)
        check(not three.set_many(keys), f"{hash_name}: some sets through nutcracker failed")
        placed = locate("twemproxy", old, keys, hash_name)
        compare_placement(f"{hash_name} 3 nodes", holders(cluster.nodes, keys), placed)
        moved, predicted = grow(hash_name, keys, placed, old, new, Text(p4))
        lost, share = fail(hash_name, keys, placed, old, cluster.nodes[1], three)
        return moved, predicted, lost, share


def grow(hash_name, keys, placed, old, new, four):
    """Step 2: reads through the 4-node pool; returns (moved, predicted)."""
    now = locate("twemproxy", old + [new], keys, hash_name)
    between = [k for k in keys if now[k] != placed[k] and now[k] != new]
    check(not between, f"{hash_name}: {len(between)} keys move between old nodes")
    got = four.get_each(keys)
    errors = [v for v in got.values() if isinstance(v, str)]
    check(not errors, f"{hash_name}: errors through the 4-node pool: {errors[:3]}")
    missed = {k for k, v in got.items() if v is None}
    want = {k for k in keys if now[k] == new}
    check(missed == want, f"{hash_name}: {len(missed)} keys missed after growth, "
          f"{len(want)} placed on the new node, {len(missed ^ want)} differ")
    check(all(got[k] == value_of(k) for k in keys if k not in missed), "wrong values")
    moved = len(missed) / len(keys)
    predicted = plan("twemproxy", old, hash_name, add=new)["change"]["moved"]
    check(abs(moved - predicted) < 0.03 and 0.15 < moved < 0.35,
          f"{hash_name}: moved {percent(moved)}, predicted {percent(predicted)}")
    return moved, predicted


def fail(hash_name, keys, placed, old, victim, three):
    """Step 3: kills `victim`, reads through the 3-node pool; returns (lost, its share)."""
    victim.kill()
    got = three.get_each(keys)
    lost = {k for k, v in got.items() if v != value_of(k)}
    want = {k for k in keys if placed[k] == victim.address}
    check(lost == want, f"{hash_name}: lost {len(lost)} keys, {len(want)} were on the "
          f"killed node, {len(lost ^ want)} differ")
    nodes = plan("twemproxy", old, hash_name)["nodes"]
    share = next(n["lost_if_down"] for n in nodes if n["node"] == victim.address)
    return len(lost) / len(keys), share


def every_hash(count):
    """Pools for all hashes, aliases, weights and a hash tag; returns the pool count."""
    with Cluster(3) as cluster:
        addrs = [n.address for n in cluster.nodes]
        pools = {}  # name: (port, yaml, --nodes list, hash, tag)
        for h in HASHES:
            servers = [f"{a}:1" for a in addrs]
            pools[f"h_{h}"] = (servers, h, None)
        pools["alias"] = ([f"{a}:1 cache-{i}" for i, a in enumerate(addrs)], "fnv1a_64", None)
        pools["weights"] = ([f"{a}:{i + 1}" for i, a in enumerate(addrs)], "fnv1a_64", None)
        pools["tagged"] = ([f"{a}:1" for a in addrs], "md5", "{}")
        ports = {name: free_port() for name in pools}
        start_nutcracker(cluster, {
            name: (ports[name], pool_yaml(name, ports[name], servers, h)
                   + (f'  hash_tag: "{tag}"\n' if tag else ""))
            for name, (servers, h, tag) in pools.items()
        })
        for name, (servers, h, tag) in pools.items():
            keys = pool_keys(name, count, tag)
            check(not Text(ports[name]).set_many(keys), f"{name}: sets failed")
            placed = locate("twemproxy", servers, keys, h, tag)
            compare_placement(name, holders(cluster.nodes, keys), placed)
        return len(pools)


def pool_keys(name, count, tag):
    """Keys of every length modulo 4 and 12 (the hashes' block sizes), a third of
    them with UTF-8 bytes, which the C hashes read as signed chars."""
    if tag:
        return [f"{name}:{{user{i // 4}}}:field{i % 4}" for i in range(count)]
    tails = ["", "x", "é", "日本", "xyz", "ключ"]
    keys = session_keys(count, name)
    return [f"{name}:{i}:{k[8:8 + i % 13]}{tails[i % 6]}" for i, k in enumerate(keys)]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    results = []
    for seed, hash_name in enumerate(["fnv1a_64", "md5"]):
        moved, predicted, lost, share = grow_and_fail(hash_name, session_keys(count, seed))
        line = (f"{hash_name}: {count}/{count} keys placed as located; adding a 4th moved "
                f"{percent(moved)} (plan: {percent(predicted)}), all to it; killing one lost "
                f"{percent(lost)} (its share: {percent(share)}), exactly its keys")
        print(line)
        results.append(hash_name)
    pools = every_hash(300)
    print(f"{pools} pools (12 hashes, aliases, weights 1:2:3, hash_tag): "
          "300/300 keys each placed as located")
    return f"twemproxy cluster: {' and '.join(results)} placement, growth and failure as predicted; {pools} pools placed as located"


if __name__ == "__main__":
    run_main("twemproxy cluster", main)
