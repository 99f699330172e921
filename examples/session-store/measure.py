"""Session store, end to end: how many sessions does losing one node cost, and
does `corecache-ring plan` predict it?

Starts three corecache nodes and the Django site in app.py (sessions in the
cache, pylibmc with ketama), creates SESSIONS sessions over HTTP, checks that
each session's cache key sits on the node `corecache-ring locate` names, kills
one node, visits every session again and counts those that came back empty.
Prints the share lost next to the share `corecache-ring plan` predicted for
that node, and exits 1 if they differ by more than 2 percentage points, if a
session on a surviving node was lost (or its request failed), or if a session
on the killed node survived.

Usage: python measure.py [--sessions N] [--kill INDEX]
Needs Django and pylibmc (requirements.txt) in the running interpreter, and
the release binaries (cargo build --release), or CORECACHE_BIN and
CORECACHE_RING naming them.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVER = os.environ.get("CORECACHE_BIN", str(ROOT / "target/release/corecache"))
RING = os.environ.get("CORECACHE_RING", str(ROOT / "target/release/corecache-ring"))
# Django's cache session backend stores a session under this prefix; pylibmc
# hashes the whole key.
KEY_PREFIX = ":1:django.contrib.sessions.cache"
TOLERANCE = 0.02


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, timeout=30.0):
    """Returns once `port` accepts; exits if `proc` ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited ({proc.returncode}) before accepting on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    sys.exit(f"{what} not accepting on {port} after {timeout} s")


def start(cmd, port, what, logs, env=None):
    log = open(Path(logs) / f"{what}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    wait_for_port(port, proc, what)
    return proc


class Site:
    """An HTTP/1.1 connection to the site that reconnects when the server
    closes it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def visit(self, session=None):
        """GET /; returns (n, session key from the cookie, or the old one)."""
        headers = {"Cookie": f"sessionid={session}"} if session else {}
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request("GET", "/", headers=headers)
                response = self.conn.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn = None
                if attempt:
                    raise
        if response.status != 200:
            return None, session
        if response.getheader("Connection", "").lower() == "close":
            self.conn = None
        return json.loads(body)["n"], cookie(response) or session


def cookie(response):
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        if name.strip() == "sessionid":
            return rest.split(";", 1)[0]
    return None


def held(port, keys, batch=100):
    """The keys the node on `port` holds, asked directly."""
    present = set()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        for start_at in range(0, len(keys), batch):
            part = keys[start_at:start_at + batch]
            sock.sendall(b"get " + " ".join(part).encode() + b"\r\n")
            for line in iter(reader.readline, b"END\r\n"):
                if line.startswith(b"VALUE "):
                    present.add(line.split()[1].decode())
                    reader.readline()
    return present


def ring(*args, stdin=b""):
    return subprocess.run([RING, *args], input=stdin, capture_output=True, check=True).stdout


def create(site, count):
    sessions = []
    for _ in range(count):
        n, session = site.visit()
        if n != 1 or not session:
            sys.exit(f"creating a session failed: n={n}, session={session}")
        sessions.append(session)
    return sessions


def check_placement(nodes, sessions):
    """Each session's cache key is on the node `locate` names; returns that map."""
    keys = [KEY_PREFIX + s for s in sessions]
    out = ring("locate", "--mode", "libmemcached", "--nodes", ",".join(nodes),
               stdin="".join(k + "\n" for k in keys).encode()).decode()
    placed = dict(line.rsplit("\t", 1) for line in out.splitlines())
    for node in nodes:
        port = int(node.rsplit(":", 1)[1])
        want = {k for k in keys if placed[k] == node}
        if held(port, keys) != want:
            sys.exit(f"sessions on {node} are not the ones corecache-ring locate puts there")
    return {s: placed[KEY_PREFIX + s] for s in sessions}


def predicted_loss(nodes, victim):
    plan = json.loads(ring("plan", "--mode", "libmemcached", "--nodes", ",".join(nodes), "--json"))
    return next(n["lost_if_down"] for n in plan["nodes"] if n["node"] == victim)


def revisit(site, sessions):
    """Visits every session again: returns (sessions lost, sessions whose request
    failed). Right after the kill, libmemcached can fail one request with SERVER
    IS MARKED DEAD before it rebuilds its continuum without the node; that
    visitor's session is lost too, so it counts in both."""
    lost, failed = set(), set()
    for session in sessions:
        n, _ = site.visit(session)
        if n is None:
            failed.add(session)
        if n != 2:
            lost.add(session)
    return lost, failed


def measure(args, logs, procs):
    ports = [free_port() for _ in range(3)]
    nodes = [f"127.0.0.1:{p}" for p in ports]
    for port in ports:
        cmd = [SERVER, "-p", str(port), "-l", "127.0.0.1", "-t", "2", "-m", "256"]
        procs.append(start(cmd, port, f"node-{port}", logs))
    web = free_port()
    env = dict(os.environ, MC_SERVERS=",".join(nodes))
    app = [sys.executable, str(HERE / "app.py"), "runserver", f"127.0.0.1:{web}",
           "--noreload", "--nothreading"]
    procs.append(start(app, web, "django", logs, env))
    site = Site(web)

    began = time.monotonic()
    sessions = create(site, args.sessions)
    placed = check_placement(nodes, sessions)
    victim = nodes[args.kill]
    predicted = predicted_loss(nodes, victim)
    procs[args.kill].send_signal(signal.SIGKILL)
    procs[args.kill].wait()
    lost, failed = revisit(site, sessions)
    elsewhere = [s for s in lost if placed[s] != victim]
    kept_on_victim = [s for s in sessions if placed[s] == victim and s not in lost]
    return report(args, victim, predicted, lost, failed, elsewhere, kept_on_victim, began)


def report(args, victim, predicted, lost, failed, elsewhere, kept_on_victim, began):
    """Prints the outcome; true when the loss is the prediction within 2 points
    and exactly the killed node's sessions were lost."""
    share = len(lost) / args.sessions
    diff = (share - predicted) * 100
    print(f"sessions created: {args.sessions}, each on the node corecache-ring locate names")
    print(f"killed {victim}; sessions lost: {len(lost)} = {share * 100:.2f}%")
    print(f"corecache-ring plan predicted: {predicted * 100:.2f}% (difference {diff:+.2f} points)")
    print(f"lost sessions that were not on the killed node: {len(elsewhere)}; sessions on it "
          f"that survived: {len(kept_on_victim)}; failed requests: {len(failed)}")
    print(f"took {time.monotonic() - began:.1f} s")
    ok = abs(diff) <= TOLERANCE * 100 and not elsewhere and not kept_on_victim
    verdict = "ok" if ok else "FAILED"
    print(f"session store: {verdict}: lost {share * 100:.2f}% of {args.sessions} sessions, "
          f"plan predicted {predicted * 100:.2f}% ({diff:+.2f} points)")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--kill", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args()
    procs = []
    try:
        with tempfile.TemporaryDirectory(prefix="session-store-") as logs:
            ok = measure(args, logs, procs)
            if not ok:
                print((Path(logs) / "django.log").read_text()[-4000:])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
