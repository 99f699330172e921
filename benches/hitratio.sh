#!/usr/bin/env bash
# Hit ratio side by side: a Zipf workload against memcached and corecache at the same
# -m and -t, small enough that not all keys fit (default -m 16: 300k keys of 100-byte
# values take about 50 MB in either server, so about a third fit).
#
# The load generator (examples/loadgen) plays a cache in front of a database: every
# get that misses is followed by a set of that key. Each server starts empty and gets
# an unmeasured warm-up of --requests gets, then a measured phase of as many; the miss
# ratio is misses / gets of the measured phase. Zipf exponents 0.8, 1.0 and 1.2.
# Output: a table on stdout and under target/bench/hitratio-<time>/, with an SVG plot.
#
# Usage: benches/hitratio.sh [-t THREADS] [-m MB] [--keys N] [--requests N]
#            [--alphas "0.8 1.0 1.2"] [--runs N]
# Environment: see benches/lib.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh

THREADS=2
MEMORY=16
KEYS=300000
REQUESTS=2000000
ALPHAS="0.8 1.0 1.2"
RUNS=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        -t) THREADS=$2; shift 2 ;;
        -m) MEMORY=$2; shift 2 ;;
        --keys) KEYS=$2; shift 2 ;;
        --requests) REQUESTS=$2; shift 2 ;;
        --alphas) ALPHAS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

main() {
    local alpha run server json
    build
    LOAD_BEFORE=$(loadavg)
    new_out_dir hitratio
    for alpha in $ALPHAS; do
        for run in $(seq 1 "$RUNS"); do
            for server in $(order "$run"); do
                start "$server" "$THREADS" "$MEMORY"
                json=$(loadgen "$server" --label "zipf $alpha $server #$run" \
                    --mode get-set --set-on-miss --key-dist zipf --zipf-alpha "$alpha" \
                    --keys "$KEYS" --value-size 100 --connections 8 --threads 2 \
                    --warmup-requests "$REQUESTS" --requests "$REQUESTS")
                record "zipf-$alpha" "Zipf $alpha, $KEYS keys, -m $MEMORY" "$server" "$run" "$json"
                stop "$server"
            done
        done
    done
    write_meta threads="$THREADS" memory="$MEMORY" runs="$RUNS" keys="$KEYS" value_size=100 \
        requests="$REQUESTS" corecache="$CORECACHE_BIN" load_after="$(loadavg)"
    python3 benches/report.py hitratio "$OUT_DIR"
}

main
