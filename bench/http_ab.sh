#!/usr/bin/env bash
# Interleaved A/B of two `strata` binaries over HTTP with the same load
# generator, in one run: the fair way to measure a change to the request
# path on a machine whose load moves between runs.
#
#   BASE=<git rev> bash bench/http_ab.sh          # A = that commit, B = the working tree
#   BASE_BIN=/path/to/strata bash bench/http_ab.sh # A = a binary built earlier
#
# Builds `strata` (release) of BASE in a temporary git worktree (sharing
# CARGO_TARGET_DIR, so only the workspace's own crates are rebuilt) unless
# BASE_BIN is given, then `strata` and `strata-loadgen` of the working tree.
# Starts both servers (each on a fresh data folder, default configuration,
# STRATA_RATE_LIMIT raised as in bench/http.sh) and runs, PASSES times,
# every scenario against A and B in ABBA order (A B, then B A, …), each run
# being `strata-loadgen run --scenarios health,<scenario>` so that every
# figure has its own /health ceiling from the same moment. Only one server
# is driven at a time; the idle one costs nothing.
#
# Writes bench/results/http_ab.md (medians per binary and the B/A ratios of
# req/s, p99 and server CPU per request) and bench/results/http_ab.json.
#
# Knobs: SCENARIOS (default append,kv-get,vector-search), CLIENTS (default
# 64), PASSES (default 3), DURATION (default 5), WARMUP (default 1),
# RETRIES (re-runs of a cell disturbed by other processes, default 0: the
# interleaving is what makes the comparison fair), PROFILE (cargo profile
# of both builds, default release; release-with-debug for profiling),
# KEEP_DATA=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
SCENARIOS=${SCENARIOS:-append,kv-get,vector-search}
CLIENTS=${CLIENTS:-64}
PASSES=${PASSES:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
RETRIES=${RETRIES:-0}
PROFILE=${PROFILE:-release}
OUT_DIR="$ROOT/bench/results"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-ab.XXXXXX")
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    if [[ -n "${BASE_TREE:-}" ]]; then
        git -C "$ROOT" worktree remove --force "$BASE_TREE" 2>/dev/null || true
    fi
    if [[ "${KEEP_DATA:-0}" == "1" ]]; then
        echo "==> kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

if [[ -n "${BASE_BIN:-}" ]]; then
    A_BIN="$WORK/strata-a"
    cp "$BASE_BIN" "$A_BIN"
    A_NAME="A = $BASE_BIN${BASE:+ ($BASE)}"
elif [[ -n "${BASE:-}" ]]; then
    BASE_REV=$(git -C "$ROOT" rev-parse --verify "$BASE^{commit}")
    BASE_TREE="$WORK/base-tree"
    git -C "$ROOT" worktree add --detach "$BASE_TREE" "$BASE_REV" >&2
    echo "==> cargo build --profile $PROFILE -p strata-cli at $BASE_REV" >&2
    (cd "$BASE_TREE" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --profile "$PROFILE" -p strata-cli)
    A_BIN="$WORK/strata-a"
    cp "$TARGET_DIR/$PROFILE/strata" "$A_BIN"
    A_NAME="A = $BASE_REV"
else
    echo "set BASE=<git rev> or BASE_BIN=<strata binary>" >&2
    exit 1
fi

echo "==> cargo build --profile $PROFILE -p strata-cli -p strata-loadgen (working tree)" >&2
cargo build --profile "$PROFILE" -p strata-cli -p strata-loadgen
B_BIN="$WORK/strata-b"
cp "$TARGET_DIR/$PROFILE/strata" "$B_BIN"
LOADGEN="$TARGET_DIR/$PROFILE/strata-loadgen"
bench_git_state
B_NAME="B = $BENCH_COMMIT ($BENCH_TREE)"

ADMIN_KEY="bench-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
start_server() { # name binary -> sets PORT_<name>, PID_<name>
    local name=$1 bin=$2 port
    port=$("$LOADGEN" free-port)
    mkdir -p "$WORK/$name"
    STRATA_ADMIN_KEY="$ADMIN_KEY" \
        STRATA_DATA_DIR="$WORK/$name/data" \
        STRATA_LISTEN="127.0.0.1:$port" \
        STRATA_RATE_LIMIT=100000000 \
        "$bin" serve >"$WORK/$name/server.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    if ! "$LOADGEN" wait --url "http://127.0.0.1:$port" --timeout-s 60; then
        echo "!!! server $name did not become healthy; its log:" >&2
        tail -n 50 "$WORK/$name/server.log" >&2 || true
        exit 1
    fi
    printf -v "PORT_$name" '%s' "$port"
    printf -v "PID_$name" '%s' "$pid"
}
start_server a "$A_BIN"
start_server b "$B_BIN"

bench_monitor_start "$WORK/load.json"
STATUS=0
RUNS=()
IFS=',' read -r -a SCEN <<<"$SCENARIOS"
for pass in $(seq 1 "$PASSES"); do
    if (( pass % 2 == 1 )); then order=(a b); else order=(b a); fi
    for s in "${SCEN[@]}"; do
        for side in "${order[@]}"; do
            port_var="PORT_$side"
            pid_var="PID_$side"
            out="$WORK/run-$pass-$s-$side.json"
            echo "==> pass $pass/$PASSES: $s on $side" >&2
            set +e
            "$LOADGEN" run --url "http://127.0.0.1:${!port_var}" --admin-key "$ADMIN_KEY" \
                --bot "ab-$side-$pass-${s//[^a-z]/}" \
                --scenarios "health,$s" --clients "$CLIENTS" \
                --duration "$DURATION" --warmup "$WARMUP" \
                --server-pid "${!pid_var}" --retries "$RETRIES" \
                --json "$out" >/dev/null
            rc=$?
            set -e
            if [[ $rc -ne 0 ]]; then
                echo "!!! loadgen exited with $rc ($s on $side)" >&2
                STATUS=2
            fi
            [[ -f "$out" ]] && RUNS+=("$side=$out")
        done
    done
done
bench_monitor_stop

COMMAND="BASE=${BASE:-} bash bench/http_ab.sh"
[[ -n "${BASE_BIN:-}" ]] && COMMAND="BASE_BIN=$BASE_BIN $COMMAND"
python3 "$ROOT/bench/http_ab_report.py" \
    --a-name "$A_NAME" --b-name "$B_NAME" \
    --command "SCENARIOS=$SCENARIOS CLIENTS=$CLIENTS PASSES=$PASSES DURATION=$DURATION $COMMAND" \
    --out-md "$OUT_DIR/http_ab.md" --out-json "$OUT_DIR/http_ab.json" \
    "${BENCH_META[@]}" \
    "${RUNS[@]}"
bench_mark_report "$OUT_DIR/http_ab.md"
echo "==> wrote bench/results/http_ab.md and bench/results/http_ab.json" >&2
exit "$STATUS"
