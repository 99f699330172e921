"""meta-memcache (RevenueCat's client for memcached's meta protocol) against a
running server.

Usage: meta_memcache_check.py HOST PORT

meta-memcache speaks only the meta commands (mg, ms, md, ma, mn) and builds
its herd control on their flags, so it checks the parts of the meta protocol
that applications lean on and that byte-level tests check only one request at
a time:

  * get and set: str, bytes, int, pickled and zlib-compressed values (the
    client flag carries the type), binary-encoded keys (a unicode key and an
    over-long one go out base64 with `b`), no-reply sets, add, replace,
    append, refill and CAS writes;
  * stale-while-revalidate: with a recache policy (`R`), a get whose key has
    less TTL left than the window wins the recache (`W`, which the client
    shows as a miss) and every later one, from any connection, loses (`Z`)
    and keeps the value; outside the window there is no token; sixteen
    clients on their own connections racing for one key give one winner;
  * invalidation: a delete with a stale policy (`md I T`) keeps the value as
    stale (`X`) for that TTL; exactly one reader wins the refresh, the others
    are served the stale value; the winner's CAS write makes the key fresh;
    a late write with the pre-invalidation CAS is refused (`EX`), or with the
    stale policy (`ms C I`) stored as stale, to be refreshed again;
  * leases (`N` on a miss): one caller wins and the others wait for its value;
  * delete, touch, counters (`ma` with an initial value, decrements that stop
    at zero, 64-bit wrap-around) and multi-get.

Expects an empty server, as the CI starts one for it. Prints one summary
line and exits non-zero on the first mismatch.
"""

import logging
import sys
import threading

import meta_memcache
from meta_memcache import (
    CacheClient,
    Key,
    LeasePolicy,
    MemcacheServerError,
    RecachePolicy,
    RequestFlags,
    ServerAddress,
    SetMode,
    StalePolicy,
    Value,
    connection_pool_factory_builder,
)

# Concurrent callers racing for one recache or lease token, each on its own
# connection.
RACERS = 16
# Outside this window the remaining TTL of a key set with SHORT_TTL gives no
# recache token; inside WINDOW it does.
SHORT_TTL = 100
NARROW = RecachePolicy(ttl=30)
WINDOW = RecachePolicy(ttl=200)
STALE = StalePolicy(mark_stale_on_deletion_ttl=30)
STALE_AND_CAS = StalePolicy(mark_stale_on_deletion_ttl=30, mark_stale_on_cas_mismatch=True)
# What mg asks for when its flags are checked: the value, its TTL and CAS.
PEEK = RequestFlags(return_value=True, return_ttl=True, return_cas_token=True)


class Checks:
    """Counts checks and stops at the first mismatch, naming it."""

    def __init__(self):
        self.passed = 0

    def equal(self, what, got, want):
        if got != want:
            print(f"meta-memcache: FAILED {what}: got {got!r}, want {want!r}")
            sys.exit(1)
        self.passed += 1

    def within(self, what, got, low, high):
        if got is None or not low <= got <= high:
            print(f"meta-memcache: FAILED {what}: got {got!r}, want {low}..{high}")
            sys.exit(1)
        self.passed += 1

    def raises(self, what, error, call):
        try:
            got = call()
        except error:
            self.passed += 1
            return
        print(f"meta-memcache: FAILED {what}: got {got!r}, want {error.__name__}")
        sys.exit(1)


def connect(host, port, pool_size=2):
    """A client as the README builds one; server errors raise."""
    return CacheClient.cache_client_from_servers(
        servers=[ServerAddress(host=host, port=port)],
        connection_pool_factory_fn=connection_pool_factory_builder(
            initial_pool_size=1, max_pool_size=pool_size, recv_timeout=5
        ),
    )


def peek(mc, key, recache=None):
    """The meta get response for `key`: a Value (with flags) or a Miss."""
    flags = PEEK if recache is None else PEEK.replace(recache_ttl=recache.ttl)
    return mc.meta_get(Key(key), flags=flags)


def tokens(response):
    """(win, stale) of a meta get: win is None when no token came back."""
    if not isinstance(response, Value):
        return ("not a value", response)
    return (response.flags.win, response.flags.stale)


def storage(mc, check):
    values = {
        "mm:str": "text",
        "mm:bytes": b"\x00\x01\r\nbytes",
        "mm:int": 12345,
        "mm:pickled": {"a": [1, 2, 3], "b": None},
        "mm:compressed": "z" * 4000,
    }
    for key, value in values.items():
        check.equal(f"set {key}", mc.set(key, value, ttl=0), True)
        check.equal(f"get {key}", mc.get(key), value)
    check.equal("get miss", mc.get("mm:absent"), None)

    for key in (Key("mm:\U0001f37a"), Key("mm:" + "long" * 100)):
        check.equal(f"set binary key {key.key[:8]}", mc.set(key, "b64", ttl=0), True)
        check.equal(f"get binary key {key.key[:8]}", mc.get(key), "b64")

    check.equal("set no_reply", mc.set("mm:q", "quiet", ttl=0, no_reply=True), True)
    check.equal("get after no_reply", mc.get("mm:q"), "quiet")

    check.equal("add existing", mc.set("mm:str", "x", ttl=0, set_mode=SetMode.ADD), False)
    check.equal("add new", mc.set("mm:added", "new", ttl=0, set_mode=SetMode.ADD), True)
    check.equal("replace missing", mc.set("mm:absent", "x", ttl=0, set_mode=SetMode.REPLACE), False)
    check.equal(
        "replace existing", mc.set("mm:added", "newer", ttl=0, set_mode=SetMode.REPLACE), True
    )
    check.equal("append", mc.set("mm:str", "+more", ttl=0, set_mode=SetMode.APPEND), True)
    check.equal("get appended", mc.get("mm:str"), "text+more")
    check.equal("refill existing", mc.refill("mm:str", "x", ttl=0), False)
    check.equal("refill missing", mc.refill("mm:refilled", "r", ttl=0), True)
    check.equal("get refilled", mc.get("mm:refilled"), "r")

    value, token = mc.get_cas("mm:int")
    check.equal("get_cas value", value, 12345)
    check.equal("get_cas token", isinstance(token, int) and token > 0, True)
    check.equal("set with cas", mc.set("mm:int", 6789, ttl=0, cas_token=token), True)
    check.equal("set with old cas", mc.set("mm:int", 1, ttl=0, cas_token=token), False)
    new_token = mc.set_cas("mm:int", 42, ttl=0)
    check.equal("set_cas token changes", isinstance(new_token, int) and new_token != token, True)
    check.equal("get_cas after set_cas", mc.get_cas("mm:int"), (42, new_token))


def recache_sequential(mc, other, check):
    """One connection wins the recache; later callers on either lose."""
    key = "mm:swr"
    check.equal("swr set", mc.set(key, "v1", ttl=SHORT_TTL), True)
    response = peek(mc, key, NARROW)
    check.equal("swr outside window: no token", tokens(response), (None, False))
    check.within("swr outside window: ttl", response.flags.ttl, SHORT_TTL - 5, SHORT_TTL)
    check.equal("swr outside window: get", mc.get(key, recache_policy=NARROW), "v1")

    check.equal("swr first get in window wins (miss)", mc.get(key, recache_policy=WINDOW), None)
    for i, client in enumerate((mc, other, mc, other)):
        check.equal(
            f"swr later get {i} loses (value)", client.get(key, recache_policy=WINDOW), "v1"
        )
    check.equal("swr later peek: Z", tokens(peek(other, key, WINDOW)), (False, False))
    check.equal("swr plain get still served", other.get(key), "v1")

    check.equal("swr winner refreshes", mc.set(key, "v2", ttl=1000), True)
    check.equal("swr after refresh: no token", tokens(peek(other, key, WINDOW)), (None, False))
    check.equal("swr after refresh: get", other.get(key, recache_policy=WINDOW), "v2")

    keys = [f"mm:swr-multi{i}" for i in range(3)]
    for k in keys:
        mc.set(k, k, ttl=SHORT_TTL)
    won = mc.multi_get(keys, recache_policy=WINDOW)
    check.equal("swr multi_get wins each", won, {Key(k): None for k in keys})
    lost = other.multi_get(keys, recache_policy=WINDOW)
    check.equal("swr multi_get then loses each", lost, {Key(k): k for k in keys})


def race(clients, call):
    """Runs `call(client)` on every client at once; returns the results."""
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)
    errors = []

    def run(i, client):
        try:
            barrier.wait(timeout=10)
            results[i] = call(client)
        except Exception as error:  # reported below, as a mismatch
            errors.append(repr(error))

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def recache_race(mc, racers, check):
    """Clients racing inside the window: one winner per key, every round."""
    for round_ in range(5):
        key = f"mm:swr-race{round_}"
        mc.set(key, "hot", ttl=SHORT_TTL)
        results, errors = race(racers, lambda c: c.get(key, recache_policy=WINDOW))
        check.equal(f"swr race {round_}: errors", errors, [])
        check.equal(f"swr race {round_}: winners", results.count(None), 1)
        check.equal(f"swr race {round_}: losers served", results.count("hot"), len(racers) - 1)


def invalidation(mc, other, racers, check):
    key = "mm:inv"
    mc.set(key, "v1", ttl=1000)
    _, old_token = mc.get_cas(key)
    check.equal("invalidate with stale", mc.invalidate(key, stale_policy=STALE), True)

    winner_value, winner_token = mc.get_cas(key)
    check.equal("invalidated: first get wins (miss)", winner_value, None)
    check.equal(
        "invalidated: cas bumped", winner_token is not None and winner_token != old_token, True
    )
    for i, client in enumerate((other, mc, other)):
        check.equal(f"invalidated: later get {i} served stale", client.get(key), "v1")
    response = peek(other, key)
    check.equal("invalidated: peek X Z", tokens(response), (False, True))
    check.within("invalidated: stale ttl", response.flags.ttl, 1, 30)

    check.equal("winner cas write", mc.set(key, "v2", ttl=1000, cas_token=winner_token), True)
    check.equal("after winner write: fresh", tokens(peek(other, key)), (None, False))
    check.equal("after winner write: get", other.get(key), "v2")

    # A late writer holding the CAS from before the invalidation: refused
    # plainly, stored as stale with the stale policy (ms C I), and then the
    # next reader wins the refresh again.
    check.equal("old cas write", mc.set(key, "x", ttl=1000, cas_token=old_token), False)
    check.equal(
        "old cas write with stale policy",
        mc.set(key, "late", ttl=1000, cas_token=old_token, stale_policy=STALE_AND_CAS),
        True,
    )
    check.equal("stale cas write: next get wins (miss)", other.get(key), None)
    check.equal("stale cas write: then served stale", mc.get(key), "late")
    check.equal("stale cas write: peek X Z", tokens(peek(other, key)), (False, True))

    for round_ in range(5):
        key = f"mm:inv-race{round_}"
        mc.set(key, "old", ttl=1000)
        mc.invalidate(key, stale_policy=STALE)
        results, errors = race(racers, lambda c: c.get(key))
        check.equal(f"invalidated race {round_}: errors", errors, [])
        check.equal(f"invalidated race {round_}: winners", results.count(None), 1)
        check.equal(
            f"invalidated race {round_}: stale served", results.count("old"), len(racers) - 1
        )

    check.equal("delete with stale, missing", mc.delete("mm:absent", stale_policy=STALE), False)
    check.equal(
        "invalidate with stale, missing", mc.invalidate("mm:absent", stale_policy=STALE), True
    )


def leases(mc, other, racers, check):
    policy = LeasePolicy(ttl=30, miss_retries=3, miss_retry_wait=0, miss_max_retry_wait=0)
    key = "mm:lease"

    def must_not_wait(seconds):
        check.equal("lease winner waits", seconds, "no wait")

    check.equal(
        "lease miss: winner", mc.get_or_lease(key, policy, lease_wait_fn=must_not_wait), None
    )
    waits = []

    def winner_fills(seconds):
        waits.append(seconds)
        mc.set(key, "filled", ttl=100)

    got = other.get_or_lease(key, policy, lease_wait_fn=winner_fills)
    check.equal("lease loser gets the winner's value", (got, len(waits)), ("filled", 1))

    key = "mm:lease-race"
    waited = []
    results, errors = race(
        racers, lambda c: c.get_or_lease(key, policy, lease_wait_fn=waited.append)
    )
    check.equal("lease race: errors", errors, [])
    check.equal("lease race: all miss", results, [None] * len(racers))
    # Each loser waits miss_retries - 1 times, the winner never.
    check.equal("lease race: waits", len(waited), (len(racers) - 1) * (policy.miss_retries - 1))


def delete_and_touch(mc, check):
    mc.set("mm:del", "gone soon", ttl=0)
    check.equal("delete hit", mc.delete("mm:del"), True)
    check.equal("get deleted", mc.get("mm:del"), None)
    check.equal("delete miss", mc.delete("mm:del"), False)
    check.equal("invalidate miss", mc.invalidate("mm:del"), True)

    mc.set("mm:touch", "t", ttl=100)
    check.equal("touch hit", mc.touch("mm:touch", 5000), True)
    check.within("touched ttl", peek(mc, "mm:touch").flags.ttl, 4990, 5000)
    check.equal("touch miss", mc.touch("mm:absent", 100), False)
    check.equal("get with touch_ttl", mc.get("mm:touch", touch_ttl=300), "t")
    check.within("get-touched ttl", peek(mc, "mm:touch").flags.ttl, 290, 300)
    check.equal("touch to no expiry", mc.touch("mm:touch", 0), True)
    check.equal("no-expiry ttl", peek(mc, "mm:touch").flags.ttl, -1)


def counters(mc, check):
    key = "mm:ctr"
    check.equal(
        "delta_initialize_and_get creates",
        mc.delta_initialize_and_get(key, 5, initial_value=10, initial_ttl=60),
        10,
    )
    check.equal("delta_and_get incr", mc.delta_and_get(key, 5), 15)
    check.equal("delta incr", mc.delta(key, 1), True)
    check.equal("delta decr", mc.delta(key, -3), True)
    check.equal("delta_and_get decr", mc.delta_and_get(key, -1), 12)
    check.equal("get counter", mc.get(key), "12")
    check.equal("decr stops at zero", mc.delta_and_get(key, -100), 0)
    check.equal(
        "delta_initialize on existing",
        mc.delta_initialize(key, 4, initial_value=99, initial_ttl=60),
        True,
    )
    check.equal("after delta_initialize", mc.delta_and_get(key, 0), 4)

    check.equal("delta miss", mc.delta("mm:absent", 1), False)
    check.equal("delta_and_get miss", mc.delta_and_get("mm:absent", 1), None)
    check.equal(
        "delta_initialize decr",
        mc.delta_initialize("mm:ctr2", -1, initial_value=7, initial_ttl=60),
        True,
    )
    check.equal("initialized value", mc.get("mm:ctr2"), "7")

    mc.set("mm:ctr-int", 41, ttl=0)
    check.equal("incr a set int", mc.delta_and_get("mm:ctr-int", 1), 42)
    check.equal("get incremented int", mc.get("mm:ctr-int"), 42)
    mc.set("mm:ctr-max", 2**64 - 1, ttl=0)
    check.equal("incr wraps at 2**64", mc.delta_and_get("mm:ctr-max", 1), 0)

    # The server answers CLIENT_ERROR, which the client raises as a server
    # error after dropping the connection (and logging a traceback, silenced
    # here).
    mc.set("mm:ctr-text", "abc", ttl=0)
    logging.disable(logging.WARNING)
    try:
        check.raises("incr non-numeric", MemcacheServerError, lambda: mc.delta("mm:ctr-text", 1))
    finally:
        logging.disable(logging.NOTSET)
    check.equal("usable after the error", mc.get("mm:ctr-text"), "abc")


def multi(mc, check):
    pairs = {f"mm:m{i}": (f"v{i}" if i % 3 else i) for i in range(40)}
    pairs["mm:m-bytes"] = b"\x00raw"
    pairs["mm:m-big"] = "y" * 5000
    for key, value in pairs.items():
        mc.set(key, value, ttl=0)
    keys = list(pairs) + ["mm:absent", "mm:absent2"]
    want = {Key(k): v for k, v in pairs.items()}
    want.update({Key("mm:absent"): None, Key("mm:absent2"): None})
    check.equal("multi_get", mc.multi_get(keys), want)
    # A CAS token is per key: with more than one worker, corecache's shards
    # count their own, so two keys' tokens may be equal (memcached's are
    # distinct). Each must match what get_cas reads for its key.
    first = list(pairs)[:5]
    got = mc.multi_get_cas(first)
    check.equal("multi_get_cas", got, {Key(k): mc.get_cas(k) for k in first})
    check.equal("multi_get_cas tokens", all(t for _, t in got.values()), True)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    mc = connect(host, port)
    other = connect(host, port)
    racers = [connect(host, port, pool_size=1) for _ in range(RACERS)]
    check = Checks()
    storage(mc, check)
    recache_sequential(mc, other, check)
    recache_race(mc, racers, check)
    invalidation(mc, other, racers, check)
    leases(mc, other, racers, check)
    delete_and_touch(mc, check)
    counters(mc, check)
    multi(mc, check)
    print(
        f"meta-memcache: {check.passed} checks passed (meta-memcache {meta_memcache.__version__})"
    )


if __name__ == "__main__":
    main()
