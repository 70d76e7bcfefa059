#!/usr/bin/env bash
# One-command HTTP benchmark of `strata serve`.
#
#   bash bench/http.sh
#
# Builds `strata` and `strata-loadgen` (release), starts `strata serve` on a
# fresh temporary data folder and a free port, waits for /health, runs every
# scenario (health, append, append-shared, history, kv-put, kv-get) at 1, 16
# and 64 concurrent clients, stops the server and writes
#   bench/results/http.md    the report: tables, machine, verdict
#   bench/results/http.json  the raw numbers
#
# Knobs (environment): DURATION (measured seconds per cell, default 5),
# WARMUP (seconds, default 1), CLIENTS (default 1,16,64),
# SCENARIOS (default all), KEEP_DATA=1 keeps the data folder and server log.
#
# The report also gives, per cell, the CPU cores the server, the load
# generator and everything else on the machine used. A cell during which
# other processes (builds, tests) used more than 0.15 cores is re-run after a
# 15 s pause, up to 3 times, and flagged in the report if it stays disturbed.
# The report also records the commit, whether the tree was clean, and the
# machine's load over the whole run (bench/lib.sh).
#
# Exit status: 0 when every request succeeded, 2 when some failed (the
# report is still written; the server log's tail is printed), 1 on setup
# failure. A missed performance target does not fail the script; read the
# verdict line.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-1,16,64}
SCENARIOS=${SCENARIOS:-health,append,append-shared,history,kv-put,kv-get}
OUT_DIR="$ROOT/bench/results"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

echo "==> cargo build --release -p strata-cli -p strata-loadgen" >&2
cargo build --release -p strata-cli -p strata-loadgen
STRATA="$TARGET_DIR/release/strata"
LOADGEN="$TARGET_DIR/release/strata-loadgen"

DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
SERVER_LOG="$DATA_DIR/server.log"
PORT=$("$LOADGEN" free-port)
URL="http://127.0.0.1:$PORT"
ADMIN_KEY="bench-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_DATA:-0}" == "1" ]]; then
        echo "==> kept data folder and server log in $DATA_DIR" >&2
    else
        rm -rf "$DATA_DIR"
    fi
}
trap cleanup EXIT

echo "==> strata serve on $URL, data in $DATA_DIR" >&2
# The rate limit is raised so that a per-key limiter, where enforced, does
# not cap the benchmark; everything else is the default configuration.
STRATA_ADMIN_KEY="$ADMIN_KEY" \
    STRATA_DATA_DIR="$DATA_DIR/data" \
    STRATA_LISTEN="127.0.0.1:$PORT" \
    STRATA_RATE_LIMIT=100000000 \
    "$STRATA" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

if ! "$LOADGEN" wait --url "$URL" --timeout-s 60; then
    echo "!!! the server did not become healthy; its log:" >&2
    tail -n 50 "$SERVER_LOG" >&2 || true
    exit 1
fi

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
NPROC=$(nproc 2>/dev/null || echo "?")
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
bench_git_state
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMAND="bash bench/http.sh"
if [[ "$DURATION" != 5 || "$WARMUP" != 1 || "$CLIENTS" != "1,16,64" ]]; then
    COMMAND="DURATION=$DURATION WARMUP=$WARMUP CLIENTS=$CLIENTS $COMMAND"
fi
[[ "$SCENARIOS" == health,append,append-shared,history,kv-put,kv-get ]] ||
    COMMAND="SCENARIOS=$SCENARIOS $COMMAND"

bench_monitor_start "$DATA_DIR/load.json"
echo "==> strata-loadgen run ($SCENARIOS × clients $CLIENTS, ${WARMUP}s + ${DURATION}s each)" >&2
set +e
"$LOADGEN" run \
    --url "$URL" \
    --admin-key "$ADMIN_KEY" \
    --scenarios "$SCENARIOS" \
    --clients "$CLIENTS" \
    --duration "$DURATION" \
    --warmup "$WARMUP" \
    --json "$OUT_DIR/http.json" \
    --markdown "$OUT_DIR/http.md" \
    --command "$COMMAND" \
    --server-pid "$SERVER_PID" \
    --meta "date=$DATE" \
    --meta "git commit=$BENCH_COMMIT" \
    --meta "working tree=$BENCH_TREE" \
    --meta "CPU=${CPU_MODEL:-unknown}" \
    --meta "nproc=$NPROC" \
    --meta "memory=${MEM:-unknown}" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "server=strata serve, release build, default configuration (SQLite records, STRATA_DURABILITY=process, the default) on a fresh data folder, STRATA_RATE_LIMIT raised to 100000000" \
    --note "**The load generator and the server run on the same machine and share its $NPROC cores.** The load generator's CPU use comes out of the server's budget, so the absolute req/s understate what the server alone could do; the cheapest endpoint (/health) is understated most, so the ratios to /health flatter the storage paths compared with a dedicated server machine." \
    --note "Loopback TCP (127.0.0.1), HTTP/1.1, no TLS."
STATUS=$?
set -e
bench_monitor_stop
bench_record_meta "$OUT_DIR/http.md" "$OUT_DIR/http.json"
bench_mark_report "$OUT_DIR/http.md"

if [[ $STATUS -ne 0 ]]; then
    echo "!!! strata-loadgen exited with $STATUS; the last 50 lines of the server log:" >&2
    tail -n 50 "$SERVER_LOG" >&2 || true
    if [[ $STATUS -eq 2 ]]; then
        cp "$SERVER_LOG" "$OUT_DIR/http-server.log" || true
        echo "!!! server log copied to bench/results/http-server.log" >&2
    fi
fi
echo "==> wrote bench/results/http.md and bench/results/http.json" >&2
exit "$STATUS"
