#!/usr/bin/env bash
# One-command benchmark of Strata's vector search.
#
#   bash bench/vectors.sh
#
# On the pystdlib-minilm-50k dataset (50,000 x 384-d MiniLM vectors, 1,000
# queries, exact ground truth, named payload filters; see
# ../shared/bench/README.md):
#
# 1. In-process: `strata-loadgen ann` builds strata_vectors::VectorIndex
#    (M=16, ef_construction=200, 2 build threads, with payloads; and a
#    payload-free build for the memory figure) and measures recall@10 and
#    single-thread QPS for ef 10..256, then filtered search at ef 16/64/256.
# 2. Peer: bench/ann_peer.py runs hnswlib with the same parameters and
#    measurements, in a venv this script makes once (numpy + hnswlib from
#    PyPI) under ${XDG_CACHE_HOME:-~/.cache}/strata/bench-venv.
# 3. HTTP: bench/vectors_http.py starts the release `strata serve` on a fresh
#    temporary data folder, uploads the vectors, searches with 1 client at
#    ef=16 and 8 clients at ef=64, reads the server's RSS, restarts it and
#    times the cold start to the first search answer.
# 4. bench/vectors_report.py writes
#      bench/results/vectors.md              the report
#      bench/results/vectors.json            the raw numbers
#      bench/results/vectors_recall_qps.svg  recall vs QPS, with the curves
#                                            of ../shared/bench/BASELINES.md
#
# Knobs (environment): STRATA_BENCH_DATA (the dataset folder, default
# ../shared/bench/data from the repository root), BENCH_VENV (the venv
# folder), SKIP_PEER=1, SKIP_HTTP=1 (leave a part out), QUANTIZATION
# (none|f16|i8, in-process engine only, default none), KEEP_DATA=1 (keep the
# HTTP part's data folder and server log).
#
# Takes about 10 minutes on 2 cores (hnswlib's filtered runs call a
# Python function per visited node and are the slowest part).
#
# Exit status: 0 on success, 2 when some HTTP requests failed or the
# restarted server did not answer (the report is still written), 1 on setup
# failure. A missed performance target does not fail the script; read the
# summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
OUT_DIR="$ROOT/bench/results"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
QUANTIZATION=${QUANTIZATION:-none}
export PYTHONDONTWRITEBYTECODE=1

DATA_IN=${STRATA_BENCH_DATA:-$ROOT/../shared/bench/data}
if [[ ! -d "$DATA_IN" ]]; then
    echo "!!! the dataset folder $DATA_IN does not exist." >&2
    echo "!!! Set STRATA_BENCH_DATA to the folder holding base.fvecs, query.fvecs, groundtruth.ivecs, ..." >&2
    exit 1
fi
DATA=$(cd "$DATA_IN" && pwd -P)
for f in base.fvecs query.fvecs groundtruth.ivecs base_attrs.jsonl.gz filters.json; do
    if [[ ! -f "$DATA/$f" ]]; then
        echo "!!! $DATA/$f is missing: STRATA_BENCH_DATA must name the dataset's data/ folder" >&2
        exit 1
    fi
done
BASELINES="$DATA/../baselines_results.json"

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || {
    echo "!!! $PYTHON is not installed" >&2
    exit 1
}

echo "==> cargo build --release -p strata-cli -p strata-loadgen" >&2
cargo build --release -p strata-cli -p strata-loadgen
STRATA="$TARGET_DIR/release/strata"
LOADGEN="$TARGET_DIR/release/strata-loadgen"

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-vectors-bench.XXXXXX")
trap 'rm -rf "$WORK_DIR"' EXIT

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
SIMD=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile|neon|asimd' | tr '\n' ' ' | sed 's/ *$//' || true)
NPROC=$(nproc 2>/dev/null || echo "?")
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
if [[ -n "$(git status --porcelain 2>/dev/null || true)" ]]; then
    COMMIT="$COMMIT (working tree has uncommitted changes)"
fi
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
COMMAND="bash bench/vectors.sh"
[[ "$QUANTIZATION" == none ]] || COMMAND="QUANTIZATION=$QUANTIZATION $COMMAND"

echo "==> 1/4 strata-loadgen ann (in-process engine, dataset $DATA)" >&2
"$LOADGEN" ann \
    --data "$DATA" \
    --m 16 --ef-construction 200 --threads 2 \
    --ef 10,12,16,24,32,64,128,256 --filter-ef 16,64,256 --k 10 \
    --quantization "$QUANTIZATION" \
    --out "$WORK_DIR/strata_ann.json"

PEER_JSON=""
PEER_VERSION="not run"
if [[ "${SKIP_PEER:-0}" != "1" ]]; then
    VENV=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/bench-venv}
    if ! "$VENV/bin/python" -c 'import numpy, hnswlib' >/dev/null 2>&1; then
        echo "==> making the venv $VENV (numpy, hnswlib from PyPI)" >&2
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 hnswlib==0.8.0
    fi
    echo "==> 2/4 bench/ann_peer.py (hnswlib)" >&2
    "$VENV/bin/python" "$ROOT/bench/ann_peer.py" \
        --data "$DATA" \
        --m 16 --ef-construction 200 --threads 2 \
        --ef 10,12,16,24,32,64,128,256 --filter-ef 16,64,256 --k 10 \
        --out "$WORK_DIR/hnswlib.json"
    PEER_JSON="$WORK_DIR/hnswlib.json"
    PEER_VERSION="hnswlib $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("hnswlib"))'), numpy $("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)'), Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())')"
fi

HTTP_STATUS=0
HTTP_JSON=""
if [[ "${SKIP_HTTP:-0}" != "1" ]]; then
    echo "==> 3/4 bench/vectors_http.py (strata serve over HTTP)" >&2
    KEEP=()
    [[ "${KEEP_DATA:-0}" == "1" ]] && KEEP=(--keep-data)
    set +e
    "$PYTHON" "$ROOT/bench/vectors_http.py" \
        --strata "$STRATA" --data "$DATA" --out "$WORK_DIR/http.json" "${KEEP[@]}"
    HTTP_STATUS=$?
    set -e
    if [[ $HTTP_STATUS -eq 1 || ! -f "$WORK_DIR/http.json" ]]; then
        echo "!!! the HTTP part failed to set up" >&2
        exit 1
    fi
    HTTP_JSON="$WORK_DIR/http.json"
fi

echo "==> 4/4 bench/vectors_report.py" >&2
"$PYTHON" "$ROOT/bench/vectors_report.py" \
    --strata "$WORK_DIR/strata_ann.json" \
    ${PEER_JSON:+--peer "$PEER_JSON"} \
    ${HTTP_JSON:+--http "$HTTP_JSON"} \
    --baselines "$BASELINES" \
    --md "$OUT_DIR/vectors.md" \
    --json "$OUT_DIR/vectors.json" \
    --svg "$OUT_DIR/vectors_recall_qps.svg" \
    --command "$COMMAND" \
    --meta "date=$DATE" \
    --meta "git commit=$COMMIT" \
    --meta "CPU=${CPU_MODEL:-unknown} (SIMD flags: ${SIMD:-?})" \
    --meta "nproc=$NPROC" \
    --meta "memory=${MEM:-unknown}" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "peer=$PEER_VERSION" \
    --meta "HTTP client=Python $("$PYTHON" -c 'import platform; print(platform.python_version())') http.client" \
    --meta "load average before the run (1/5/15 min)=$LOAD_BEFORE" \
    --meta "load average at the end (1/5/15 min)=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" \
    --meta "dataset=$DATA"
echo "==> wrote bench/results/vectors.md, vectors.json and vectors_recall_qps.svg" >&2
exit "$HTTP_STATUS"
