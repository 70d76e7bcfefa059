#!/usr/bin/env bash
# Retrieval quality of the knowledge base: recall@5 and MRR@10 of keyword,
# dense and hybrid search (and of the other fusions) on the two labelled
# evaluation sets crates/strata/tests/fixtures/retrieval_eval.json.gz
# (Python standard library; scripts/make-retrieval-eval.py) and
# manpage_eval.json.gz (manual pages; scripts/make-manpage-eval.py), see the
# header of crates/strata/tests/retrieval_quality.rs, on their dev and test
# halves.
#
#   bash bench/retrieval.sh                       # default + chunking variants
#   RETRIEVAL_VARIANTS=0 bash bench/retrieval.sh  # the default run only
#   RETRIEVAL_DUMP_OUT=F bash bench/retrieval.sh  # also keep the dumped lists in F
#
# Runs the same test CI runs (which holds hybrid's defaults to at least the
# better of keyword and dense on the test halves), with STRATA_EVAL_REPORT
# and STRATA_EVAL_DUMP set; then the same test again per chunking variant
# (STRATA_EVAL_SETTINGS: contextual chunk headers off, chunks 500/100 and
# 1200/200; each re-indexes everything); then bench/retrieval_report.py,
# which replays hybrid search from the dumped lists over keyword variants,
# fusions and document-level aggregation, chooses on the dev halves only and
# shows every variant on both halves. Writes bench/results/retrieval.md and
# bench/results/retrieval.json, with the commit, the state of the working
# tree and the machine's load. Takes 3–6 minutes per run on 2 cores
# (indexing ~470 documents with the local model), the test build not
# counted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}"
OUT_DIR="$ROOT/bench/results"
mkdir -p "$OUT_DIR"
model="$(bash scripts/fetch-model.sh)"

echo "==> cargo test -p strata --test retrieval_quality --no-run" >&2
cargo test -p strata --test retrieval_quality --no-run

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-retrieval.XXXXXX")
trap 'rm -rf "$WORK_DIR"' EXIT
bench_git_state
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_monitor_start "$WORK_DIR/load.json"
set +e
STRATA_TEST_MODEL_DIR="$model" STRATA_EVAL_REPORT="$WORK_DIR/report.json" \
    STRATA_EVAL_DUMP="$WORK_DIR/dump.json" \
    cargo test -p strata --test retrieval_quality -- --nocapture
STATUS=$?
VARIANT_ARGS=()
if [[ "${RETRIEVAL_VARIANTS:-1}" != 0 ]]; then
    i=0
    for v in 'no chunk headers={"kb.chunk_context": false}' \
        'chunks 500/100={"kb.chunk_size": 500, "kb.chunk_overlap": 100}' \
        'chunks 1200/200={"kb.chunk_size": 1200, "kb.chunk_overlap": 200}'; do
        i=$((i + 1))
        label="${v%%=*}"
        echo "==> variant: $label" >&2
        STRATA_TEST_MODEL_DIR="$model" STRATA_EVAL_REPORT="$WORK_DIR/variant$i.json" \
            STRATA_EVAL_SETTINGS="${v#*=}" \
            cargo test -p strata --test retrieval_quality -- --nocapture
        VARIANT_ARGS+=(--variant "$label=$WORK_DIR/variant$i.json")
    done
fi
set -e
bench_monitor_stop
if [[ ! -f "$WORK_DIR/report.json" || ! -f "$WORK_DIR/dump.json" ]]; then
    echo "!!! the evaluation wrote no figures; nothing written to bench/results" >&2
    exit 1
fi
if [[ -n "${RETRIEVAL_DUMP_OUT:-}" ]]; then
    cp "$WORK_DIR/dump.json" "$RETRIEVAL_DUMP_OUT"
    echo "==> kept the dumped lists in $RETRIEVAL_DUMP_OUT" >&2
fi
python3 "$ROOT/bench/retrieval_report.py" --report "$WORK_DIR/report.json" --dump "$WORK_DIR/dump.json" \
    --md "$OUT_DIR/retrieval.md" --json "$OUT_DIR/retrieval.json" \
    --command "bash bench/retrieval.sh" "${VARIANT_ARGS[@]}" \
    --meta "date=$DATE" \
    --meta "CPU=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || echo unknown)" \
    --meta "nproc=$(nproc 2>/dev/null || echo '?')" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "test exit status=$STATUS (0: hybrid's default held on the test split)" \
    "${BENCH_META[@]}" >/dev/null
bench_mark_report "$OUT_DIR/retrieval.md"
echo "==> wrote bench/results/retrieval.md and retrieval.json" >&2
exit "$STATUS"
