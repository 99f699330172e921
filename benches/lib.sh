# Shared by compare.sh, memory.sh and hitratio.sh (sourced, not run): starting and
# stopping the two servers, building the load generator, and recording each run as one
# JSON line for benches/report.py.
#
# Environment:
#   CORECACHE_BIN  default target/release/corecache (built by cargo when left default)
#   MEMCACHED_BIN  default /usr/bin/memcached
#   LOADGEN_BIN    default target/release/examples/loadgen (built likewise)
#   SERVER_CPUS    optional CPU list (taskset -c) for the servers, such as 0-7
#   CLIENT_CPUS    optional CPU list for the load generator, such as 8-15

MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
CORECACHE_BIN=${CORECACHE_BIN:-target/release/corecache}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/examples/loadgen}
PIDS=()

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# build: builds what is left at its default path and checks that all three exist.
build() {
    [[ -x $MEMCACHED_BIN ]] || die "no memcached at $MEMCACHED_BIN (apt-get install memcached)"
    local targets=()
    [[ $CORECACHE_BIN == target/release/corecache ]] && targets+=(--bin corecache)
    [[ $LOADGEN_BIN == target/release/examples/loadgen ]] && targets+=(--example loadgen)
    if [[ ${#targets[@]} -gt 0 ]]; then
        cargo build --release --quiet "${targets[@]}" || die "cargo build failed"
    fi
    [[ -x $CORECACHE_BIN ]] || die "no corecache at $CORECACHE_BIN"
    [[ -x $LOADGEN_BIN ]] || die "no load generator at $LOADGEN_BIN"
}

# new_out_dir NAME: a fresh target/bench/NAME-<time> in OUT_DIR, with RESULTS and LOG_DIR.
new_out_dir() {
    OUT_DIR=target/bench/$1-$(date +%Y%m%d-%H%M%S)
    LOG_DIR=$OUT_DIR/logs
    RESULTS=$OUT_DIR/results.jsonl
    mkdir -p "$LOG_DIR"
    : >"$RESULTS"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pinned() {
    local cpus=$1
    shift
    if [[ -n $cpus ]]; then
        taskset -c "$cpus" "$@"
    else
        "$@"
    fi
}

# start NAME THREADS MEMORY: starts memcached or corecache on a free port; sets
# PORT_<NAME> and PID_<NAME> (not printed: a command substitution would lose the pid).
start() {
    local name=$1 threads=$2 memory=$3 bin extra=() port
    case $name in
        memcached) bin=$MEMCACHED_BIN; extra=(-U 0 -u root) ;;
        corecache) bin=$CORECACHE_BIN ;;
        *) die "unknown server $name" ;;
    esac
    port=$(free_port)
    local cmd=("$bin" -p "$port" -l 127.0.0.1 -t "$threads" -m "$memory" "${extra[@]}")
    if [[ -n ${SERVER_CPUS:-} ]]; then
        cmd=(taskset -c "$SERVER_CPUS" "${cmd[@]}")
    fi
    # Not through a function: $! must be the server's own pid (taskset execs it).
    "${cmd[@]}" >"$LOG_DIR/$name.log" 2>&1 &
    PIDS+=($!)
    printf -v "PORT_$name" '%s' "$port"
    printf -v "PID_$name" '%s' "$!"
    wait_for_port "$name" "$port" "$!"
}

# stop NAME: stops a server that start() started.
stop() {
    local pid_var=PID_$1
    kill "${!pid_var}" 2>/dev/null || true
    wait "${!pid_var}" 2>/dev/null || true
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

# loadgen SERVER ARGS...: runs the load generator against a started server, with its
# pid for CPU and RSS figures; prints its JSON line (its human line goes to stderr).
loadgen() {
    local server=$1 port_var=PORT_$1 pid_var=PID_$1
    shift
    pinned "${CLIENT_CPUS:-}" "$LOADGEN_BIN" --server "127.0.0.1:${!port_var}" \
        --server-pid "${!pid_var}" "$@" || die "load generator failed against $server"
}

# record WORKLOAD TITLE SERVER RUN JSON: appends one run to RESULTS.
record() {
    printf '{"workload":"%s","title":"%s","server":"%s","run":%s,"result":%s}\n' \
        "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"
}

# order RUN: the two servers, memcached first on odd runs and corecache first on even.
order() {
    if (($1 % 2)); then
        echo memcached corecache
    else
        echo corecache memcached
    fi
}

loadavg() {
    cut -d' ' -f1-3 /proc/loadavg
}

# write_meta KEY=VALUE...: OUT_DIR/meta.json with the common fields and these (values
# that are numbers are written as numbers).
write_meta() {
    local kv
    {
        printf '{"dir":"%s","date":"%s","cores":%s,"load_before":"%s"' \
            "$OUT_DIR" "$(date -Is)" "$(nproc)" "$LOAD_BEFORE"
        printf ',"memcached_version":"%s"' "$("$MEMCACHED_BIN" -V | cut -d' ' -f2)"
        for kv in "$@"; do
            if [[ ${kv#*=} =~ ^[0-9.]+$ ]]; then
                printf ',"%s":%s' "${kv%%=*}" "${kv#*=}"
            else
                printf ',"%s":"%s"' "${kv%%=*}" "${kv#*=}"
            fi
        done
        printf '}\n'
    } >"$OUT_DIR/meta.json"
}
