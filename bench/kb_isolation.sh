#!/usr/bin/env bash
# One-command benchmark: keyword-search isolation between tenants.
#
#   bash bench/kb_isolation.sh                 # writes bench/results/kb_isolation.{md,json}
#   LABEL=before bash bench/kb_isolation.sh    # writes bench/results/kb_isolation_before.{md,json}
#
# bench/kb_isolation.py starts the release `strata serve` (no embedder) on a
# fresh data folder, loads a small bot (~500 chunks) through the files API,
# measures its keyword search (`POST /v1/bots/{bot}/kb/search`, mode
# keyword, 1 client, p50/p99), loads a big bot with 100 times its chunks
# (~50,000), measures the small bot again and the big bot itself, and
# compares the small bot's scores before and after the big bot arrived.
# The queries' words occur in both bots' documents. When
# bench/results/kb_isolation_before.json exists (a run with LABEL=before,
# e.g. on the code before a change to the full-text index), the report
# shows it beside this run.
#
# Knobs (environment): LABEL (default none: kb_isolation.md), SMALL_CHUNKS
# (default 500), RATIO (default 100), DOC_CHUNKS (chunks per uploaded
# document, default 100), QUERIES (timed requests per phase, default 300),
# STRATA_BENCH_DATA (the dataset folder, default ../shared/bench/data),
# KEEP_DATA=1.
#
# Takes 1–2 minutes on 2 cores (the release build not counted): indexing the
# big bot's ~29 MiB of text took 7 s, and its own keyword phase is the
# slowest (~40 s at ~130 ms a query on the code before the per-bot index).
#
# Exit status: 0 on success, 2 when requests or documents failed (the
# report is still written), 1 on setup failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
OUT_DIR="$ROOT/bench/results"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LABEL=${LABEL:-}
SMALL_CHUNKS=${SMALL_CHUNKS:-500}
RATIO=${RATIO:-100}
DOC_CHUNKS=${DOC_CHUNKS:-100}
QUERIES=${QUERIES:-300}
export PYTHONDONTWRITEBYTECODE=1

DATA_IN=${STRATA_BENCH_DATA:-$ROOT/../shared/bench/data}
for f in base.jsonl.gz query.jsonl.gz; do
    if [[ ! -f "$DATA_IN/$f" ]]; then
        echo "!!! $DATA_IN/$f is missing: set STRATA_BENCH_DATA to the dataset's data/ folder" >&2
        exit 1
    fi
done
DATA=$(cd "$DATA_IN" && pwd -P)

echo "==> cargo build --release -p strata-cli" >&2
cargo build --release -p strata-cli
STRATA="$TARGET_DIR/release/strata"

NAME=kb_isolation${LABEL:+_$LABEL}
COMMAND="bash bench/kb_isolation.sh"
[[ -z "$LABEL" ]] || COMMAND="LABEL=$LABEL $COMMAND"
[[ "$SMALL_CHUNKS/$RATIO/$DOC_CHUNKS/$QUERIES" == "500/100/100/300" ]] ||
    COMMAND="SMALL_CHUNKS=$SMALL_CHUNKS RATIO=$RATIO DOC_CHUNKS=$DOC_CHUNKS QUERIES=$QUERIES $COMMAND"
COMPARE=()
[[ "$LABEL" != before && -f "$OUT_DIR/kb_isolation_before.json" ]] &&
    COMPARE=(--compare "$OUT_DIR/kb_isolation_before.json")
KEEP=()
[[ "${KEEP_DATA:-0}" == "1" ]] && KEEP=(--keep-data)

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-kb-isolation.XXXXXX")
trap 'rm -rf "$WORK_DIR"' EXIT
bench_git_state
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_monitor_start "$WORK_DIR/load.json"

set +e
"${PYTHON:-python3}" "$ROOT/bench/kb_isolation.py" \
    --strata "$STRATA" --data "$DATA" \
    --small-chunks "$SMALL_CHUNKS" --ratio "$RATIO" --doc-chunks "$DOC_CHUNKS" \
    --queries "$QUERIES" --label "${LABEL:-latest}" "${KEEP[@]}" \
    --json "$WORK_DIR/raw.json" \
    --command "$COMMAND" \
    --meta "date=$DATE" \
    --meta "CPU=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || echo unknown)" \
    --meta "nproc=$(nproc 2>/dev/null || echo '?')" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "server=strata serve, release build, default configuration on a fresh data folder, STRATA_EMBEDDER=none, STRATA_RATE_LIMIT=100000000" \
    --meta "HTTP client=Python $(python3 -c 'import platform; print(platform.python_version())') http.client"
STATUS=$?
set -e
bench_monitor_stop
if [[ $STATUS -eq 1 || ! -f "$WORK_DIR/raw.json" ]]; then
    echo "!!! the benchmark failed; nothing written to bench/results" >&2
    exit 1
fi
python3 "$ROOT/bench/kb_isolation.py" --report-from "$WORK_DIR/raw.json" "${COMPARE[@]}" \
    --md "$OUT_DIR/$NAME.md" --json "$OUT_DIR/$NAME.json" "${BENCH_META[@]}"
bench_mark_report "$OUT_DIR/$NAME.md"
echo "==> wrote bench/results/$NAME.md and $NAME.json" >&2
exit "$STATUS"
