"""python-binary-memcached (bmemcached) with SASL PLAIN against a server
started with `-S`.

Usage: bmemcached_sasl.py HOST PORT USER PASSWORD

With the right credentials set, get and delete must work. A second client
with a wrong password must be refused. bmemcached authenticates when it
opens its connection; its table maps InvalidCredentials to status 0x08, not
memcached's 0x20, so a refusal from memcached or corecache surfaces as a
plain MemcachedException with code 0x20 and the server's text. Prints one
summary line and exits non-zero on the first mismatch.
"""

import sys

import bmemcached
from bmemcached.exceptions import MemcachedException

AUTH_ERROR = 0x20


class Checks:
    """Counts checks and stops at the first mismatch, naming it."""

    def __init__(self):
        self.passed = 0

    def equal(self, what, got, want):
        if got != want:
            print(f"bmemcached sasl: FAILED {what}: got {got!r}, want {want!r}")
            sys.exit(1)
        self.passed += 1


def authenticated(server, user, password, check):
    mc = bmemcached.Client((server,), user, password)
    check.equal("set", mc.set("bmemcached:k", "value"), True)
    check.equal("get", mc.get("bmemcached:k"), "value")
    check.equal("set bytes", mc.set("bmemcached:b", b"\x00\x01bytes"), True)
    check.equal("get bytes", mc.get("bmemcached:b"), b"\x00\x01bytes")
    check.equal("get miss", mc.get("bmemcached:absent"), None)
    check.equal("delete", mc.delete("bmemcached:k"), True)
    check.equal("get deleted", mc.get("bmemcached:k"), None)
    mc.disconnect_all()


def refused(server, user, check):
    mc = bmemcached.Client((server,), user, "not-the-password")
    try:
        got = mc.get("bmemcached:b")
    except MemcachedException as refusal:
        check.equal("wrong password status", refusal.code, AUTH_ERROR)
        check.equal("wrong password text", b"Auth failure." in str(refusal).encode(), True)
        return
    check.equal("wrong password refused", got, "a MemcachedException")


def main():
    host, port, user, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    server = f"{host}:{port}"
    check = Checks()
    authenticated(server, user, password, check)
    refused(server, user, check)
    print(f"bmemcached sasl: {check.passed} checks passed")


if __name__ == "__main__":
    main()
