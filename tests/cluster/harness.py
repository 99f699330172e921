"""Shared pieces of the cluster checks: corecache nodes on free ports, a raw
memcached text client, and corecache-ring run as a user runs it.

Nothing here sleeps a fixed time: starting waits for the port to accept, and
stopping waits for the process to exit.

Environment:
  CORECACHE_BIN   the server (default target/release/corecache)
  CORECACHE_RING  the planning tool (default target/release/corecache-ring)
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = os.environ.get("CORECACHE_BIN", str(ROOT / "target/release/corecache"))
RING = os.environ.get("CORECACHE_RING", str(ROOT / "target/release/corecache-ring"))
START_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check did not hold; the message says which and how."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, name):
    """Returns once `port` accepts; fails if `proc` exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"{name} exited ({proc.returncode}) before accepting on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise CheckFailed(f"{name} not accepting on {port} after {START_TIMEOUT} s")


class Node:
    """One corecache process on a free loopback port."""

    def __init__(self, logs):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        log = open(Path(logs) / f"node-{self.port}.log", "wb")
        cmd = [SERVER, "-p", str(self.port), "-l", "127.0.0.1", "-t", "2", "-m", "64"]
        if Path(SERVER).name == "memcached":
            cmd += ["-U", "0", "-u", "root"]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, f"node {self.address}")

    def kill(self):
        """Stops the node at once, as a crash would, and waits for it to be gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class Cluster:
    """Nodes started on entry and stopped on exit, whatever happens between."""

    def __init__(self, count):
        self.count = count
        self.nodes = []
        self.extra = []

    def __enter__(self):
        self.logs = tempfile.mkdtemp(prefix="corecache-cluster-")
        for _ in range(self.count):
            self.nodes.append(Node(self.logs))
        return self

    def spawn(self, cmd, port, name):
        """Starts another process (a proxy, a web app) that is stopped with the
        cluster, and waits for it to accept on `port`."""
        log = open(Path(self.logs) / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.extra.append(proc)
        wait_for_port(port, proc, name)
        return proc

    def __exit__(self, *exc):
        for proc in self.extra:
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
        for node in self.nodes:
            node.kill()


class Text:
    """A raw memcached text-protocol connection that pipelines requests."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CheckFailed("connection closed mid-reply")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _get_reply(self):
        """One get reply: the value, None on a miss, or the error line."""
        line = self._line()
        if line == b"END":
            return None
        if not line.startswith(b"VALUE "):
            return line.decode(errors="replace")
        value = self._line()
        end = self._line()
        check(end == b"END", f"want END after one value, got {end!r}")
        return value

    def set_many(self, keys, batch=200):
        """Stores `value-of-<key>` under each key; returns the keys not STORED."""
        failed = []
        for start in range(0, len(keys), batch):
            part = keys[start : start + batch]
            self.sock.sendall(b"".join(set_request(k) for k in part))
            failed += [k for k in part if self._line() != b"STORED"]
        return failed

    def get_each(self, keys, batch=200):
        """One `get` per key, pipelined: {key: value, None (miss) or error text}."""
        found = {}
        for start in range(0, len(keys), batch):
            part = keys[start : start + batch]
            self.sock.sendall(b"".join(b"get %s\r\n" % k.encode() for k in part))
            for key in part:
                found[key] = self._get_reply()
        return found

    def held(self, keys, batch=100):
        """The subset of `keys` this server holds, asked with multi-key gets."""
        present = set()
        for start in range(0, len(keys), batch):
            part = keys[start : start + batch]
            self.sock.sendall(b"get " + " ".join(part).encode() + b"\r\n")
            while True:
                line = self._line()
                if line == b"END":
                    break
                check(line.startswith(b"VALUE "), f"unexpected {line!r}")
                present.add(line.split()[1].decode())
                self._line()
        return present

    def flush(self):
        self.sock.sendall(b"flush_all\r\n")
        check(self._line() == b"OK", "flush_all not OK")


def session_keys(count, seed):
    """`count` keys shaped like session keys, the same for the same seed."""
    rng = random.Random(seed)
    return [f"session:{rng.getrandbits(128):032x}" for _ in range(count)]


def value_of(key):
    return b"value-of-" + key.encode()


def set_request(key):
    value = value_of(key)
    return b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(value), value)


def holders(nodes, keys):
    """{key: address of the node holding it}; fails if a key is on two nodes."""
    where = {}
    for node in nodes:
        conn = Text(node.port)
        for key in conn.held(keys):
            check(key not in where, f"{key} on both {where.get(key)} and {node.address}")
            where[key] = node.address
        conn.close()
    return where


def ring_args(mode, nodes, hash_name=None, tag=None):
    args = ["--mode", mode, "--nodes", ",".join(nodes)]
    if hash_name:
        args += ["--hash", hash_name]
    if tag:
        args += ["--hash-tag", tag]
    return args


def locate(mode, nodes, keys, hash_name=None, tag=None):
    """{key: host:port} as `corecache-ring locate` places them."""
    out = subprocess.run(
        [RING, "locate"] + ring_args(mode, nodes, hash_name, tag),
        input="".join(k + "\n" for k in keys).encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    pairs = [line.rsplit("\t", 1) for line in out.splitlines()]
    check(len(pairs) == len(keys), f"locate gave {len(pairs)} lines for {len(keys)} keys")
    return dict(pairs)


def plan(mode, nodes, hash_name=None, add=None):
    """`corecache-ring plan --json` as a dict."""
    args = [RING, "plan"] + ring_args(mode, nodes, hash_name) + ["--json"]
    if add:
        args += ["--add", add]
    out = subprocess.run(args, capture_output=True, check=True).stdout
    return json.loads(out)


def compare_placement(label, where, predicted):
    """Checks that every key sits where `predicted` says; returns the count."""
    check(len(where) == len(predicted), f"{label}: {len(where)} of {len(predicted)} keys found")
    wrong = [k for k in predicted if where.get(k) != predicted[k]]
    check(not wrong, f"{label}: {len(wrong)} keys misplaced, e.g. {wrong[:3]} "
          f"on {[where.get(k) for k in wrong[:3]]}, want {[predicted[k] for k in wrong[:3]]}")
    return len(predicted)


def percent(share):
    return f"{share * 100:.2f}%"


def run_main(name, body):
    """Runs `body()`, printing its lines; a failed check exits 1 with the reason.
    The last line printed is the one-line summary CI shows."""
    try:
        summary = body()
    except CheckFailed as err:
        print(f"{name}: FAILED: {err}")
        sys.exit(1)
    print(summary)
