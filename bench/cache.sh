#!/usr/bin/env bash
# One-command benchmark of Strata's cache layer, each part against a peer
# measured in the same run.
#
#   bash bench/cache.sh
#
# 1. In-process: strata_cache::MemoryCache (through the CacheStore trait)
#    versus moka::future::Cache and quick_cache::sync::Cache used directly,
#    Zipf(1.0 and 0.8) keys over 100k keys, 90% get / 10% insert, 256-byte
#    values, capacity 20% of the keys, 1 and 2 tokio tasks.
# 2. Redis: strata_cache::RedisCache get/set with 1 and 50 tokio tasks —
#    all on one shared ConnectionManager (up to 50 requests in flight on one
#    socket) and with a connection per task — versus redis-benchmark in the
#    same shapes (-c 1; -c 1 -P 50; -c 50) against the same server. Ratios
#    are only taken at equal pipelining; -c 50 -P 16 is shown as a ceiling.
# 3. End to end: the release `strata serve` twice (history cache on = the
#    default, off = STRATA_HISTORY_CACHE_BYTES=0), each driven by
#    `strata-loadgen run --scenarios health,history` at 16 and 64 clients.
#
# Writes
#   bench/results/cache.md    the report
#   bench/results/cache.json  the raw numbers
#
# Knobs (environment): STRATA_BENCH_REDIS_URL (default
# redis://127.0.0.1:6379/15; the script fails if it does not answer),
# DURATION (seconds per in-process/Redis cell, default 3), E2E_DURATION
# (seconds per HTTP cell, default 5), E2E_CLIENTS (default 16,64),
# KEEP_DATA=1 keeps the temporary data folders and server logs.
#
# Every result records the commit, whether the tree was clean, and the
# machine's load during the run (bench/lib.sh; the Redis server's CPU counts
# as the benchmark's when it runs on this machine).
#
# Exit status: 0 on success, 2 when some HTTP requests failed (the report is
# still written), 1 on setup failure (Redis unreachable, server not healthy).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
REDIS_URL=${STRATA_BENCH_REDIS_URL:-redis://127.0.0.1:6379/15}
DURATION=${DURATION:-3}
E2E_DURATION=${E2E_DURATION:-5}
E2E_CLIENTS=${E2E_CLIENTS:-16,64}
OUT_DIR="$ROOT/bench/results"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

command -v redis-benchmark >/dev/null 2>&1 || {
    echo "!!! redis-benchmark is not installed (it comes with redis-server / redis-tools)" >&2
    exit 1
}
if command -v redis-cli >/dev/null 2>&1; then
    if [[ "$(redis-cli -u "$REDIS_URL" ping 2>&1 || true)" != "PONG" ]]; then
        echo "!!! Redis at ${REDIS_URL//:*@/:***@} does not answer PING." >&2
        echo "!!! Start one (e.g. redis-server --port 6379 --daemonize yes) or set STRATA_BENCH_REDIS_URL." >&2
        exit 1
    fi
fi

echo "==> cargo build --release -p strata-cli -p strata-loadgen" >&2
cargo build --release -p strata-cli -p strata-loadgen
STRATA="$TARGET_DIR/release/strata"
LOADGEN="$TARGET_DIR/release/strata-loadgen"

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-cache-bench.XXXXXX")
ADMIN_KEY="bench-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SERVER_PID=""

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() {
    stop_server
    if [[ "${KEEP_DATA:-0}" == "1" ]]; then
        echo "==> kept data folders and server logs in $WORK_DIR" >&2
    else
        rm -rf "$WORK_DIR"
    fi
}
trap cleanup EXIT

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
NPROC=$(nproc 2>/dev/null || echo "?")
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
bench_git_state
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REDIS_VERSION=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | awk -F: '/^redis_version/ {print $2}' | tr -d '\r' || true)
# The Redis server's process, when it runs here, is part of the benchmark.
REDIS_PID=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | awk -F: '/^process_id/ {print $2}' | tr -d '\r' || true)
[[ -n "$REDIS_PID" && -d "/proc/$REDIS_PID" ]] || REDIS_PID=""
bench_monitor_start "$WORK_DIR/load.json" $REDIS_PID
COMMAND="bash bench/cache.sh"
if [[ "$DURATION" != 3 || "$E2E_DURATION" != 5 || "$E2E_CLIENTS" != "16,64" ]]; then
    COMMAND="DURATION=$DURATION E2E_DURATION=$E2E_DURATION E2E_CLIENTS=$E2E_CLIENTS $COMMAND"
fi

# Section 3 first: one server per configuration, run, stop.
E2E_STATUS=0
run_e2e() { # $1 = on|off, then extra env assignments for the server
    local which=$1
    shift
    local dir="$WORK_DIR/$which"
    mkdir -p "$dir"
    local port
    port=$("$LOADGEN" free-port)
    local url="http://127.0.0.1:$port"
    echo "==> strata serve (history cache $which) on $url" >&2
    env -u STRATA_HISTORY_CACHE_BYTES "$@" \
        STRATA_ADMIN_KEY="$ADMIN_KEY" \
        STRATA_DATA_DIR="$dir/data" \
        STRATA_LISTEN="127.0.0.1:$port" \
        STRATA_RATE_LIMIT=100000000 \
        "$STRATA" serve >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    if ! "$LOADGEN" wait --url "$url" --timeout-s 60; then
        echo "!!! the server (history cache $which) did not become healthy; its log:" >&2
        tail -n 50 "$dir/server.log" >&2 || true
        exit 1
    fi
    set +e
    "$LOADGEN" run \
        --url "$url" \
        --admin-key "$ADMIN_KEY" \
        --scenarios health,history \
        --clients "$E2E_CLIENTS" \
        --duration "$E2E_DURATION" \
        --warmup 1 \
        --server-pid "$SERVER_PID" \
        --json "$WORK_DIR/e2e-$which.json"
    local status=$?
    set -e
    if [[ $status -ne 0 ]]; then
        echo "!!! strata-loadgen (history cache $which) exited with $status; server log tail:" >&2
        tail -n 50 "$dir/server.log" >&2 || true
        [[ $status -eq 2 ]] || exit 1
        E2E_STATUS=2
    fi
    stop_server
}
run_e2e on
run_e2e off STRATA_HISTORY_CACHE_BYTES=0

echo "==> strata-loadgen cache-bench (in-process + Redis)" >&2
set +e
STRATA_BENCH_REDIS_URL="$REDIS_URL" "$LOADGEN" cache-bench \
    --duration "$DURATION" \
    --e2e-on "$WORK_DIR/e2e-on.json" \
    --e2e-off "$WORK_DIR/e2e-off.json" \
    --json "$OUT_DIR/cache.json" \
    --markdown "$OUT_DIR/cache.md" \
    --command "$COMMAND" \
    --meta "date=$DATE" \
    --meta "git commit=$BENCH_COMMIT" \
    --meta "working tree=$BENCH_TREE" \
    --meta "CPU=${CPU_MODEL:-unknown}" \
    --meta "nproc=$NPROC" \
    --meta "memory=${MEM:-unknown}" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "Redis server=${REDIS_VERSION:-unknown}, $(redis-benchmark --version 2>/dev/null || echo 'redis-benchmark ?')" \
    --note "**Everything runs on one machine with $NPROC cores**: the benchmark client, the Redis server, redis-benchmark and the strata server share them. Absolute numbers are for this machine only; the ratios compare runs made minutes apart in this one invocation."
STATUS=$?
set -e
bench_monitor_stop
if [[ $STATUS -ne 0 && $STATUS -ne 2 ]]; then
    echo "!!! strata-loadgen cache-bench failed ($STATUS)" >&2
    exit 1
fi
bench_record_meta "$OUT_DIR/cache.md" "$OUT_DIR/cache.json"
bench_mark_report "$OUT_DIR/cache.md"
echo "==> wrote bench/results/cache.md and bench/results/cache.json" >&2
if [[ $STATUS -eq 2 || $E2E_STATUS -eq 2 ]]; then
    exit 2
fi
exit 0
