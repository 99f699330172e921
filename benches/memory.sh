#!/usr/bin/env bash
# Memory efficiency side by side: how many items memcached and corecache hold in the
# same -m (and -t), and what each item costs beyond its key and value.
#
# For each value size (32, 100 and 300 bytes, and a lognormal mix with a median of 150
# bytes), each server is started fresh and the load generator (examples/loadgen,
# --mode memory) stores new keys until `stats` shows the first eviction, then asks for
# every key written with `mg <key> s` to count the items held and their bytes of key
# and value. Overhead per item = (budget - key and value bytes held) / items held, where
# corecache's budget is -m plus its index (hash_bytes), counted against it, and
# memcached's is shown both ways: -m alone (its hash table is allocated outside -m) and
# -m plus its hash_bytes. RSS per item is the server's resident memory / items held.
# Output: a table on stdout and under target/bench/memory-<time>/, with an SVG plot.
#
# Usage: benches/memory.sh [-t THREADS] [-m MB] [--sigma S]
# Environment: see benches/lib.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh

THREADS=2
MEMORY=64
SIGMA=0.6
while [[ $# -gt 0 ]]; do
    case "$1" in
        -t) THREADS=$2; shift 2 ;;
        -m) MEMORY=$2; shift 2 ;;
        --sigma) SIGMA=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# fill_until_evicted NAME TITLE RUN LOADGEN_ARGS...: both servers, fresh, one at a time.
fill_until_evicted() {
    local workload=$1 title=$2 run=$3 server json
    shift 3
    for server in $(order "$run"); do
        start "$server" "$THREADS" "$MEMORY"
        json=$(loadgen "$server" --mode memory --label "$workload $server" "$@")
        record "$workload" "$title" "$server" 1 "$json"
        stop "$server"
    done
}

main() {
    build
    LOAD_BEFORE=$(loadavg)
    new_out_dir memory
    fill_until_evicted v32 "32-byte values" 1 --value-size 32
    fill_until_evicted v100 "100-byte values" 2 --value-size 100
    fill_until_evicted v300 "300-byte values" 3 --value-size 300
    fill_until_evicted lognormal "lognormal, median 150, sigma $SIGMA" 4 \
        --value-dist lognormal --value-size 150 --value-sigma "$SIGMA"
    write_meta threads="$THREADS" memory="$MEMORY" runs=1 corecache="$CORECACHE_BIN" \
        key_prefix=key: load_after="$(loadavg)"
    python3 benches/report.py memory "$OUT_DIR"
}

main
