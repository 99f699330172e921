#!/usr/bin/env bash
# Side by side with memcached: both servers get the same -t and -m, the same keys and
# values, and the same load from the same generator (examples/loadgen), in one run;
# every figure is reported for both and as a ratio corecache / memcached (see
# "Performance stance" in the design notes).
#
# Workloads, each run --runs times per server, servers alternated, medians reported:
#   (a) get:set 10:1, one request at a time, over 50 connections; also measured with
#       memtier_benchmark when it is on PATH, memcslap otherwise, as a cross-check
#   (b) pipelined meta gets (mg <key> v) at depth 32 and 128
#   (c) multi-get of 20 keys
#   (d) 30% sets
#   (e) latency p50/p99/p99.9 of (a) at a fixed offered rate, 60% of memcached's (a)
#   (f) server CPU time per request, from /proc/PID/stat, for (a) to (d)
# Both servers are filled with every key first. Output: a table on stdout, and the
# table, the raw runs, a summary and an SVG plot under target/bench/compare-<time>/.
#
# --scaling runs (a) and (d) at 1, 2, 4, 8 and 16 workers instead (for a larger
# machine; pin with SERVER_CPUS and CLIENT_CPUS, see benches/lib.sh).
#
# Usage: benches/compare.sh [-t THREADS] [-m MB] [--runs N] [--duration SECONDS]
#            [--warmup SECONDS] [--connections N] [--pipe-connections N] [--keys N]
#            [--value-size BYTES] [--client-threads N] [--load-fraction F]
#            [--scaling] [--scaling-workers "1 2 4 8 16"]
# Environment: see benches/lib.sh. Point CORECACHE_BIN at memcached to check the
# script itself (ratios about 1.0).
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh

THREADS=2
MEMORY=64
RUNS=3
DURATION=10
WARMUP=1
CONNECTIONS=50
PIPE_CONNECTIONS=8
KEYS=100000
VALUE_SIZE=100
CLIENT_THREADS=
LOAD_FRACTION=0.6
SCALING=no
SCALING_WORKERS="1 2 4 8 16"
while [[ $# -gt 0 ]]; do
    case "$1" in
        -t) THREADS=$2; shift 2 ;;
        -m) MEMORY=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --pipe-connections) PIPE_CONNECTIONS=$2; shift 2 ;;
        --keys) KEYS=$2; shift 2 ;;
        --value-size) VALUE_SIZE=$2; shift 2 ;;
        --client-threads) CLIENT_THREADS=$2; shift 2 ;;
        --load-fraction) LOAD_FRACTION=$2; shift 2 ;;
        --scaling) SCALING=yes; shift ;;
        --scaling-workers) SCALING_WORKERS=$2; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# Arguments every load generator run shares: the same keys and values for both servers.
common() {
    echo --keys "$KEYS" --value-size "$VALUE_SIZE" --threads "$CLIENT_THREADS" \
        --duration "$DURATION" --warmup "$WARMUP"
}

fill_both() {
    local server
    for server in memcached corecache; do
        loadgen "$server" --mode fill --keys "$KEYS" --value-size "$VALUE_SIZE" \
            --threads "$CLIENT_THREADS" --connections "$CLIENT_THREADS" >/dev/null
    done
}

# measure WORKLOAD TITLE LOADGEN_ARGS...: RUNS runs per server, alternating.
measure() {
    local workload=$1 title=$2 run server json
    shift 2
    for run in $(seq 1 "$RUNS"); do
        for server in $(order "$run"); do
            # shellcheck disable=SC2046 # common() is a list of words
            json=$(loadgen "$server" $(common) --label "$workload $server #$run" "$@")
            record "$workload" "$title" "$server" "$run" "$json"
        done
    done
}

# measure_tool WORKLOAD TITLE FUNCTION: as measure, with an outside tool; FUNCTION PORT
# prints requests per second.
measure_tool() {
    local workload=$1 title=$2 tool=$3 run server port_var ops
    for run in $(seq 1 "$RUNS"); do
        for server in $(order "$run"); do
            port_var=PORT_$server
            ops=$("$tool" "${!port_var}")
            echo "$workload $server #$run: $ops req/s" >&2
            record "$workload" "$title" "$server" "$run" \
                "{\"ops_per_s\":$ops,\"loadavg\":[$(loadavg | tr ' ' ,)]}"
        done
    done
}

# memtier_ops PORT: req/s of memtier_benchmark, 1 set to 10 gets, on the same keys.
memtier_ops() {
    local out per_thread=$((CONNECTIONS / CLIENT_THREADS))
    out=$(pinned "${CLIENT_CPUS:-}" memtier_benchmark --server=127.0.0.1 --port="$1" \
        --protocol=memcache_text -t "$CLIENT_THREADS" -c "$per_thread" --ratio=1:10 \
        --key-prefix=key: --key-minimum=1 --key-maximum=$((KEYS - 1)) \
        --data-size="$VALUE_SIZE" --test-time="$DURATION" --hide-histogram 2>/dev/null) ||
        die "memtier_benchmark failed"
    awk '$1 == "Totals" { printf "%.0f\n", $2; found = 1 } END { exit !found }' <<<"$out" ||
        die "cannot read memtier output"
}

# memcslap_ops PORT: keys/s of memcslap --test=get (its own keys and values).
memcslap_ops() {
    local out
    out=$(pinned "${CLIENT_CPUS:-}" memcslap --servers="127.0.0.1:$1" --test=get \
        --concurrency="$CLIENT_THREADS" --execute-number=20000 2>&1) ||
        die "memcslap failed: $out"
    awk '
        $1 == "Time" && $2 == "to" && $3 == "get" {
            keys = $4
            for (i = 5; i <= NF; i++) if ($i == "seconds.") secs = $(i - 1)
        }
        END { if (secs > 0) printf "%.0f\n", keys / secs; else exit 1 }
    ' <<<"$out" || die "cannot read memcslap output: $out"
}

side_by_side() {
    local rate
    measure a "(a) get:set 10:1, $CONNECTIONS conns" \
        --mode get-set --set-ratio 0.0909 --connections "$CONNECTIONS"
    if command -v memtier_benchmark >/dev/null; then
        measure_tool a-memtier "(a) memtier_benchmark 1:10, $CONNECTIONS conns" memtier_ops
    elif command -v memcslap >/dev/null; then
        measure_tool a-memcslap "(a) memcslap get, $CLIENT_THREADS conns" memcslap_ops
    fi
    # The cross-check stores its own keys, some with large values, and each server
    # evicts some of the benchmark's keys to make room for them (each its own share,
    # by its own policy): store them again, so that (b) to (e) read a full key set.
    fill_both
    measure b32 "(b) mg depth 32, $PIPE_CONNECTIONS conns" \
        --mode mg --depth 32 --connections "$PIPE_CONNECTIONS"
    measure b128 "(b) mg depth 128, $PIPE_CONNECTIONS conns" \
        --mode mg --depth 128 --connections "$PIPE_CONNECTIONS"
    measure c "(c) multi-get 20 keys, $CONNECTIONS conns" \
        --mode multi-get --multi-get-keys 20 --connections "$CONNECTIONS"
    measure d "(d) 30% sets, $CONNECTIONS conns" \
        --mode get-set --set-ratio 0.3 --connections "$CONNECTIONS"
    rate=$(python3 benches/report.py median "$RESULTS" a memcached ops_per_s)
    rate=$(awk -v r="$rate" -v f="$LOAD_FRACTION" 'BEGIN { printf "%.0f", r * f }')
    measure e "(e) (a) at $rate req/s" \
        --mode get-set --set-ratio 0.0909 --connections "$CONNECTIONS" --rate "$rate"
}

scaling() {
    local workers
    for workers in $SCALING_WORKERS; do
        start memcached "$workers" "$MEMORY"
        start corecache "$workers" "$MEMORY"
        fill_both
        measure "a@$workers" "(a) get:set 10:1, $workers workers" \
            --mode get-set --set-ratio 0.0909 --connections "$CONNECTIONS"
        measure "d@$workers" "(d) 30% sets, $workers workers" \
            --mode get-set --set-ratio 0.3 --connections "$CONNECTIONS"
        stop memcached
        stop corecache
    done
}

main() {
    build
    if [[ -z $CLIENT_THREADS ]]; then
        CLIENT_THREADS=2
        [[ $SCALING == yes ]] && CLIENT_THREADS=$(($(nproc) / 2 > 2 ? $(nproc) / 2 : 2))
    fi
    LOAD_BEFORE=$(loadavg)
    local meta=(threads="$THREADS" memory="$MEMORY" runs="$RUNS" duration="$DURATION"
        keys="$KEYS" value_size="$VALUE_SIZE" client_threads="$CLIENT_THREADS"
        corecache="$CORECACHE_BIN")
    if [[ $SCALING == yes ]]; then
        new_out_dir scaling
        scaling
        write_meta "${meta[@]}" load_after="$(loadavg)"
        python3 benches/report.py scaling "$OUT_DIR"
        return
    fi
    new_out_dir compare
    start memcached "$THREADS" "$MEMORY"
    start corecache "$THREADS" "$MEMORY"
    fill_both
    side_by_side
    write_meta "${meta[@]}" load_after="$(loadavg)"
    python3 benches/report.py compare "$OUT_DIR"
}

main
