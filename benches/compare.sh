#!/usr/bin/env bash
# Side-by-side throughput of memcached and corecache on this machine: both
# servers get the same -t and -m and the same load from the same generator,
# in one run, and the result is a ratio (see "Performance stance" in the
# design notes).
#
# Load: memcslap (libmemcached-tools; text protocol) set, get and mget, and
# memtier_benchmark (memcache_text, 1:10 set:get) if it is on PATH. Each
# workload runs once per server unrecorded, then --runs times per server,
# alternating servers, and the median is reported.
#
# Usage: benches/compare.sh [-t THREADS] [-m MB] [--runs N]
#            [--concurrency N] [--execute-number N] [--test-time SECONDS]
# Environment:
#   CORECACHE_BIN  default target/release/corecache (built if missing)
#   MEMCACHED_BIN  default /usr/bin/memcached
# Point CORECACHE_BIN at memcached to check the script itself (ratios ~1.0).
set -euo pipefail

cd "$(dirname "$0")/.."

THREADS=2
MEMORY=64
RUNS=3
CONCURRENCY=4
EXECUTE_NUMBER=20000
TEST_TIME=10
while [[ $# -gt 0 ]]; do
    case "$1" in
        -t) THREADS=$2; shift 2 ;;
        -m) MEMORY=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --execute-number) EXECUTE_NUMBER=$2; shift 2 ;;
        --test-time) TEST_TIME=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
CORECACHE_BIN=${CORECACHE_BIN:-target/release/corecache}
LOG_DIR=target/compare-logs
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME BINARY: starts a server on a free port, left in STARTED_PORT
# (not printed: a command substitution would lose the pid kept for cleanup).
start() {
    local name=$1 bin=$2 extra=()
    STARTED_PORT=$(free_port)
    if [[ $(basename "$bin") == memcached ]]; then
        extra=(-U 0 -u root)
    fi
    "$bin" -p "$STARTED_PORT" -l 127.0.0.1 -t "$THREADS" -m "$MEMORY" "${extra[@]}" \
        >"$LOG_DIR/$name.log" 2>&1 &
    PIDS+=($!)
    wait_for_port "$name" "$STARTED_PORT" "$!"
}

# wait_for_port NAME PORT PID: returns once the port accepts (10 s at most).
wait_for_port() {
    local _
    for _ in $(seq 1 1000); do
        kill -0 "$3" 2>/dev/null || die "$1 exited; see $LOG_DIR/$1.log"
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
            return
        fi
        sleep 0.01
    done
    die "$1 not accepting on port $2; see $LOG_DIR/$1.log"
}

# memcslap_ops PORT TEST: ops/s of one memcslap run (TEST is set, get or mget).
memcslap_ops() {
    local out
    out=$(memcslap --servers="127.0.0.1:$1" --test="$2" \
        --concurrency="$CONCURRENCY" --execute-number="$EXECUTE_NUMBER" 2>&1) ||
        die "memcslap --test=$2 failed: $out"
    awk -v test="$2" '
        $1 == "Time" && $2 == "to" && $3 == test {
            keys = $4
            for (i = 5; i <= NF; i++) if ($i == "seconds.") secs = $(i - 1)
        }
        END { if (secs > 0) printf "%.0f\n", keys / secs; else exit 1 }
    ' <<<"$out" || die "cannot read memcslap output: $out"
}

# memtier_ops PORT: total ops/s of one memtier_benchmark run.
memtier_ops() {
    local out
    out=$(memtier_benchmark --server=127.0.0.1 --port="$1" \
        --protocol=memcache_text -t 2 -c 25 --ratio=1:10 \
        --test-time="$TEST_TIME" --hide-histogram 2>/dev/null) ||
        die "memtier_benchmark failed"
    awk '$1 == "Totals" { printf "%.0f\n", $2; found = 1 } END { exit !found }' <<<"$out" ||
        die "cannot read memtier output"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# measure WORKLOAD CMD...: runs CMD PORT for each server, a warm-up and then
# RUNS times, alternating, and prints one table row.
measure() {
    local workload=$1 _ mc=() cc=() mc_ops cc_ops
    shift
    # One unrecorded run each first, so that neither side is measured while
    # it faults in its memory.
    "$@" "$MC_PORT" >/dev/null
    "$@" "$CC_PORT" >/dev/null
    for _ in $(seq 1 "$RUNS"); do
        mc+=("$("$@" "$MC_PORT")")
        cc+=("$("$@" "$CC_PORT")")
    done
    mc_ops=$(printf '%s\n' "${mc[@]}" | median)
    cc_ops=$(printf '%s\n' "${cc[@]}" | median)
    printf '%-28s %14s %14s %7s\n' "$workload" "$mc_ops" "$cc_ops" \
        "$(awk -v a="$cc_ops" -v b="$mc_ops" 'BEGIN { printf "%.2f", a / b }')"
}

main() {
    command -v memcslap >/dev/null || die "memcslap not found (apt-get install libmemcached-tools)"
    [[ -x $MEMCACHED_BIN ]] || die "no memcached at $MEMCACHED_BIN"
    if [[ ! -x $CORECACHE_BIN && $CORECACHE_BIN == target/release/corecache ]]; then
        cargo build --release
    fi
    [[ -x $CORECACHE_BIN ]] || die "no corecache at $CORECACHE_BIN"
    mkdir -p "$LOG_DIR"

    start memcached "$MEMCACHED_BIN"
    MC_PORT=$STARTED_PORT
    start corecache "$CORECACHE_BIN"
    CC_PORT=$STARTED_PORT
    echo "memcached: $MEMCACHED_BIN ($("$MEMCACHED_BIN" -V))"
    echo "corecache: $CORECACHE_BIN"
    echo "both: -t $THREADS -m $MEMORY; $(nproc) cores; median of $RUNS runs"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews ratios)"
    echo "memcslap: --concurrency=$CONCURRENCY --execute-number=$EXECUTE_NUMBER"
    echo
    printf '%-28s %14s %14s %7s\n' workload "memcached op/s" "corecache op/s" ratio
    local test
    for test in set get mget; do
        measure "memcslap $test" memcslap_ops_for "$test"
    done
    if command -v memtier_benchmark >/dev/null; then
        measure "memtier 1:10 ${TEST_TIME}s" memtier_ops
    else
        echo "(memtier_benchmark not on PATH: memtier workload skipped)"
    fi
}

# memcslap_ops_for TEST PORT: argument order that measure() calls with.
memcslap_ops_for() {
    memcslap_ops "$2" "$1"
}

main
