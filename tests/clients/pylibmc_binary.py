"""pylibmc (libmemcached) in binary-protocol mode against a running server.

Usage: pylibmc_binary.py HOST PORT

Runs set, get, get_multi, gets and cas, incr, delete and touch through the
client, checks every result, prints one summary line and exits non-zero on
the first mismatch. It checks what an application sees, not bytes: the byte
level is covered by tests/binary.rs and tests/binary_differential.rs.
"""

import sys

import pylibmc


class Checks:
    """Counts checks and stops at the first mismatch, naming it."""

    def __init__(self):
        self.passed = 0

    def equal(self, what, got, want):
        if got != want:
            print(f"pylibmc binary: FAILED {what}: got {got!r}, want {want!r}")
            sys.exit(1)
        self.passed += 1

    def raises(self, what, error, call):
        """Checks that `call` raises `error`, as pylibmc reports some misses."""
        try:
            got = call()
        except error:
            self.passed += 1
            return
        print(f"pylibmc binary: FAILED {what}: got {got!r}, want {error.__name__}")
        sys.exit(1)


def connect(host, port):
    """A binary-protocol client with CAS support, as pylibmc users enable it."""
    return pylibmc.Client(
        [f"{host}:{port}"], binary=True, behaviors={"cas": True, "tcp_nodelay": True}
    )


def storage(mc, check):
    check.equal("set", mc.set("pylibmc:a", b"alpha"), True)
    check.equal("get hit", mc.get("pylibmc:a"), b"alpha")
    check.equal("get miss", mc.get("pylibmc:absent"), None)
    check.equal("set str", mc.set("pylibmc:s", "text"), True)
    check.equal("get str", mc.get("pylibmc:s"), "text")
    check.equal("add existing", mc.add("pylibmc:a", b"x"), False)
    check.raises("replace missing", pylibmc.NotFound, lambda: mc.replace("pylibmc:absent", b"x"))
    check.equal("append", mc.append("pylibmc:a", b"+"), True)
    check.equal("get appended", mc.get("pylibmc:a"), b"alpha+")


def multi(mc, check):
    pairs = {f"pylibmc:m{i}": f"v{i}".encode() for i in range(50)}
    check.equal("set_multi", mc.set_multi(pairs), [])
    keys = list(pairs) + ["pylibmc:absent"]
    check.equal("get_multi", mc.get_multi(keys), pairs)


def cas(mc, check):
    mc.set("pylibmc:c", b"one")
    value, token = mc.gets("pylibmc:c")
    check.equal("gets value", value, b"one")
    check.equal("gets token non-zero", token != 0, True)
    check.equal("cas match", mc.cas("pylibmc:c", b"two", token), True)
    check.equal("cas stale", mc.cas("pylibmc:c", b"three", token), False)
    check.equal("after cas", mc.get("pylibmc:c"), b"two")


def counters(mc, check):
    mc.set("pylibmc:n", 10)
    check.equal("incr", mc.incr("pylibmc:n", 5), 15)
    check.equal("decr", mc.decr("pylibmc:n", 20), 0)
    check.raises("incr miss", pylibmc.NotFound, lambda: mc.incr("pylibmc:absent", 1))


def delete_and_touch(mc, check):
    check.equal("delete hit", mc.delete("pylibmc:a"), True)
    check.equal("delete miss", mc.delete("pylibmc:a"), False)
    check.equal("get deleted", mc.get("pylibmc:a"), None)
    mc.set("pylibmc:t", b"touched")
    check.equal("touch hit", mc.touch("pylibmc:t", 100), True)
    check.equal("touch miss", mc.touch("pylibmc:absent", 100), False)
    check.equal("get touched", mc.get("pylibmc:t"), b"touched")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    mc = connect(host, port)
    check = Checks()
    for step in (storage, multi, cas, counters, delete_and_touch):
        step(mc, check)
    print(f"pylibmc binary: {check.passed} checks passed (pylibmc {pylibmc.__version__})")


if __name__ == "__main__":
    main()
