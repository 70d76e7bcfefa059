#!/usr/bin/env bash
# One-command benchmark of Strata's Qdrant-compatible API.
#
#   bash bench/qdrant.sh
#
# Runs ../shared/qdrant/reference/client_bench.py — the client that measured
# the real Qdrant 1.19 server in ../shared/qdrant/reference/http_bench.md —
# UNCHANGED (from where it lies, so that it finds the dataset at
# ../shared/bench/data the way it computes that path) against the Qdrant
# listener of a release `strata serve` on a fresh data folder. The script
# sends no key: the server runs with STRATA_QDRANT_KEYLESS_BOT=bench (the
# listener's keyless requests act as the bot `bench`, like a Qdrant without
# an api_key), the bot made through the admin API first. Then it times
# restarts the way http_bench.md did: SIGTERM, spawn, poll POST
# /collections/bench/points/query (ef 64, k 10) every 5 ms; the clock stops
# at the first 200 with 10 results (RESTART_TRIALS, default 3).
#
# Writes bench/results/qdrant.md and bench/results/qdrant.json: each figure
# beside the real server's (from http_bench.md: another day, maybe another
# load), the issue's targets and PASS/FAIL, with the commit and the
# machine's load (bench/lib.sh).
#
# The venv (${XDG_CACHE_HOME:-~/.cache}/strata/qdrant-bench-venv, or
# BENCH_VENV): numpy and requests from PyPI, pinned. Takes about 3–5 minutes
# on 2 cores. Exit status: 0 when the run completed (a missed target does not
# fail it; read the report), 1 on a setup or run failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

REF="$(cd .. && pwd)/shared/qdrant/reference"
[[ -f "$REF/client_bench.py" && -f "$REF/http_bench.md" ]] || {
    echo "!!! $REF/client_bench.py (and http_bench.md) not found" >&2
    exit 1
}
DATA="$(cd .. && pwd)/shared/bench/data"
[[ -f "$DATA/base.fvecs" ]] || { echo "!!! the dataset is not at $DATA" >&2; exit 1; }

TARGET_DIR=${CARGO_TARGET_DIR:-target}
# PROFILE=release-with-debug gives the same optimised code with line tables
# (for perf); the report names the profile.
PROFILE=${PROFILE:-release}
echo "==> cargo build --profile $PROFILE -p strata-cli" >&2
cargo build --profile "$PROFILE" -p strata-cli
STRATA="$TARGET_DIR/$PROFILE/strata"

VENV=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/qdrant-bench-venv}
if ! "$VENV/bin/python" -c 'import numpy, requests' >/dev/null 2>&1; then
    echo "==> making the venv $VENV (numpy, requests)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 requests==2.34.2
fi

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-qdrant-bench.XXXXXX")
trap 'rm -rf "$WORK_DIR"' EXIT
mkdir -p bench/results
bench_git_state
bench_monitor_start "$WORK_DIR/load.jsonl"
status=0
"$VENV/bin/python" bench/qdrant_bench.py --strata "$STRATA" --client "$REF/client_bench.py" \
    --reference "$REF/http_bench.md" --work "$WORK_DIR" --trials "${RESTART_TRIALS:-3}" \
    --out-md bench/results/qdrant.md --out-json bench/results/qdrant.json || status=$?
bench_monitor_stop
BENCH_META+=(--meta "cargo profile=$PROFILE")
bench_record_meta bench/results/qdrant.md bench/results/qdrant.json
bench_mark_report bench/results/qdrant.md
[[ $status -eq 0 ]] && echo "==> bench/results/qdrant.md" >&2
exit $status
