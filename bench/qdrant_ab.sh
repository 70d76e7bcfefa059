#!/usr/bin/env bash
# Interleaved A/B of two `strata` binaries' Qdrant listeners under the
# reference client's own loops (client_bench.py's run_single and
# run_concurrent shapes, `requests`), plus the client's ceiling on this
# machine: the same loops against GET /healthz.
#
#   BASE=<git rev> bash bench/qdrant_ab.sh           # A = that commit, B = the working tree
#   BASE_BIN=/path/to/strata bash bench/qdrant_ab.sh # A = a binary built earlier
#
# Knobs: PASSES (default 4, ABBA order), QUERIES (per cell, default 2000),
# PROFILE (cargo profile of both builds, default release).
# Writes bench/results/qdrant_ab.md and bench/results/qdrant_ab.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh
PROFILE=${PROFILE:-release}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DATA="$(cd .. && pwd)/shared/bench/data"
[[ -f "$DATA/base.fvecs" ]] || { echo "!!! the dataset is not at $DATA" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-qdrant-ab.XXXXXX")
cleanup() {
    [[ -n "${BASE_TREE:-}" ]] && git -C "$ROOT" worktree remove --force "$BASE_TREE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -n "${BASE_BIN:-}" ]]; then
    cp "$BASE_BIN" "$WORK/strata-a"
    A_NAME="$BASE_BIN"
elif [[ -n "${BASE:-}" ]]; then
    BASE_REV=$(git rev-parse --verify "$BASE^{commit}")
    BASE_TREE="$WORK/base-tree"
    git worktree add --detach "$BASE_TREE" "$BASE_REV" >&2
    echo "==> cargo build --profile $PROFILE -p strata-cli at $BASE_REV" >&2
    (cd "$BASE_TREE" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --profile "$PROFILE" -p strata-cli)
    cp "$TARGET_DIR/$PROFILE/strata" "$WORK/strata-a"
    A_NAME="$BASE_REV"
else
    echo "set BASE=<git rev> or BASE_BIN=<strata binary>" >&2
    exit 1
fi
echo "==> cargo build --profile $PROFILE -p strata-cli (working tree)" >&2
cargo build --profile "$PROFILE" -p strata-cli
cp "$TARGET_DIR/$PROFILE/strata" "$WORK/strata-b"
bench_git_state

VENV=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/qdrant-bench-venv}
if ! "$VENV/bin/python" -c 'import numpy, requests' >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 requests==2.34.2
fi
mkdir -p bench/results
bench_monitor_start "$WORK/load.jsonl"
status=0
"$VENV/bin/python" bench/qdrant_ab.py --a "$WORK/strata-a" --b "$WORK/strata-b" \
    --a-name "$A_NAME" --b-name "$BENCH_COMMIT ($BENCH_TREE)" --data "$DATA" \
    --passes "${PASSES:-4}" --queries "${QUERIES:-2000}" \
    --out-md bench/results/qdrant_ab.md --out-json bench/results/qdrant_ab.json || status=$?
bench_monitor_stop
BENCH_META+=(--meta "cargo profile=$PROFILE")
bench_record_meta bench/results/qdrant_ab.md bench/results/qdrant_ab.json
bench_mark_report bench/results/qdrant_ab.md
exit $status
