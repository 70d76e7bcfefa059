#!/usr/bin/env bash
# One-command benchmark of Strata's vector search.
#
#   bash bench/vectors.sh
#
# On the pystdlib-minilm-50k dataset (50,000 x 384-d MiniLM vectors, 1,000
# queries, exact ground truth, named payload filters; see
# ../shared/bench/README.md):
#
# 1. In-process, Strata against hnswlib, interleaved: bench/ann_peer.py
#    (hnswlib, in a venv this script makes once) starts `strata-loadgen ann
#    --interleave`, which builds strata_vectors::VectorIndex (M=16,
#    ef_construction=200, 2 build threads, with payloads; and a payload-free
#    build for the memory figure); then hnswlib builds with the same
#    parameters. For each cell — ef 10..256 unfiltered, then each filter at
#    ef 16/64/256 — both engines run a warm-up and REPEATS (default 5) timed
#    passes each, alternating S P P S S P ..., single-threaded; the median
#    pass is reported. hnswlib's unfiltered pass is one batch `knn_query`
#    over all queries on one thread (no Python call per query); its filtered
#    passes call a Python callable per visited node (all its binding offers)
#    over the first FILTER_QUERIES (default 200) queries, which Strata's
#    filtered passes use too.
# 2. HTTP: bench/vectors_http.py starts the release `strata serve` on a fresh
#    temporary data folder and runs bench/qdrant_client_bench.py — the
#    client that measured the Qdrant 1.19 reference, adapted only in URLs,
#    auth header and field names — then times restarts: after a clean stop,
#    and after SIGKILL right after 20,000 and 50,000 acknowledged upserts.
# 3. bench/vectors_report.py writes
#      bench/results/vectors.md              the report
#      bench/results/vectors.json            the raw numbers
#      bench/results/vectors_recall_qps.svg  recall vs QPS, with the curves
#                                            of ../shared/bench/BASELINES.md
#    Every result records the commit, whether the tree was clean, and the
#    machine's load during the run (bench/lib.sh, bench/loadmon.py).
#
# The venv (${XDG_CACHE_HOME:-~/.cache}/strata/bench-venv, or BENCH_VENV):
# numpy, requests and hnswlib 0.8.0 from PyPI. hnswlib 0.8.0 is published as
# a source distribution only: pip builds it here with the system C++
# compiler (its setup.py asks for -O3 -march=native), from a fresh download
# (--no-cache-dir, so no wheel built on another CPU is reused); the compile
# command is saved in the venv and recorded in the report.
#
# Knobs (environment): STRATA_BENCH_DATA (the dataset folder, default
# ../shared/bench/data from the repository root), BENCH_VENV, SKIP_PEER=1
# (Strata alone, no interleaving), SKIP_HTTP=1, REPEATS (timed passes per
# cell, default 5, at least 5 for a quotable run), FILTER_QUERIES (default
# 200), KILL_POINTS (default 20000,50000), KILL_TRIALS (default 3),
# RESTART_TRIALS (default 3), QUANTIZATION (none|f16|i8, in-process engine
# only, default none), KEEP_DATA=1 (keep the HTTP part's data folders and
# server logs).
#
# Takes about 5–8 minutes on 2 cores (more on a busy machine): the in-process
# part ~3–4 (most of it hnswlib's filtered cells, a Python callback per
# visited node), the HTTP part ~2–3 (serialising and uploading the 50k
# vectors, then 20k and 50k three times each for the SIGKILL restarts).
#
# Exit status: 0 on success, 2 when some HTTP requests failed, a restarted
# server did not answer or lost acknowledged points (the report is still
# written), 1 on setup failure. A missed performance target does not fail
# the script; read the summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
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
REPEATS=${REPEATS:-5}
FILTER_QUERIES=${FILTER_QUERIES:-200}
KILL_POINTS=${KILL_POINTS:-20000,50000}
KILL_TRIALS=${KILL_TRIALS:-3}
RESTART_TRIALS=${RESTART_TRIALS:-3}

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

VENV=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/bench-venv}
VPY="$VENV/bin/python"
if [[ "${SKIP_PEER:-0}" != "1" || "${SKIP_HTTP:-0}" != "1" ]]; then
    if ! "$VPY" -c 'import numpy, requests' >/dev/null 2>&1; then
        echo "==> making the venv $VENV (numpy, requests from PyPI)" >&2
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 requests==2.34.2
    fi
    if ! "$VPY" -c 'import hnswlib' >/dev/null 2>&1 || [[ ! -s "$VENV/hnswlib-build.txt" ]]; then
        echo "==> building hnswlib 0.8.0 from its PyPI sdist into $VENV (log: $VENV/hnswlib-pip.log)" >&2
        "$VENV/bin/pip" install -v --no-cache-dir --force-reinstall --no-deps \
            --disable-pip-version-check --no-binary hnswlib hnswlib==0.8.0 \
            >"$VENV/hnswlib-pip.log" 2>&1 || {
            tail -n 30 "$VENV/hnswlib-pip.log" >&2
            exit 1
        }
        CXX_LINE=$(grep -E '^ *(g\+\+|gcc|c\+\+|x86_64-linux-gnu-g(cc|\+\+)|clang\+*) .* -c .*bindings\.cpp' "$VENV/hnswlib-pip.log" | head -n 1 | sed 's/^ *//' || true)
        FLAGS=$(printf '%s\n' "$CXX_LINE" | tr ' ' '\n' | grep -E '^-(O|m|f|std|D)' | grep -v '^-DVERSION_INFO' | tr '\n' ' ' | sed 's/ *$//')
        CXX_BIN=$(printf '%s\n' "$CXX_LINE" | cut -d' ' -f1)
        printf 'built by pip %s from the PyPI sdist (no binary wheel), %s; compile flags: %s\n' \
            "$("$VENV/bin/pip" --version | cut -d' ' -f2)" \
            "$(${CXX_BIN:-c++} --version 2>/dev/null | head -n 1 || echo 'compiler ?')" \
            "${FLAGS:-not found in the pip log}" >"$VENV/hnswlib-build.txt"
    fi
fi

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
SIMD=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile|neon|asimd' | tr '\n' ' ' | sed 's/ *$//' || true)
NPROC=$(nproc 2>/dev/null || echo "?")
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
bench_git_state
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMAND="bash bench/vectors.sh"
[[ "$QUANTIZATION" == none ]] || COMMAND="QUANTIZATION=$QUANTIZATION $COMMAND"
for v in REPEATS:5 FILTER_QUERIES:200 KILL_POINTS:20000,50000 KILL_TRIALS:3 RESTART_TRIALS:3; do
    name=${v%%:*}
    [[ "${!name}" == "${v#*:}" ]] || COMMAND="$name=${!name} $COMMAND"
done
bench_monitor_start "$WORK_DIR/load.json"

PEER_JSON=""
PEER_VERSION="not run"
ANN_ARGS=(--data "$DATA" --m 16 --ef-construction 200 --threads 2
    --ef 10,12,16,24,32,64,128,256 --filter-ef 16,64,256 --k 10 --repeats "$REPEATS")
if [[ "${SKIP_PEER:-0}" != "1" ]]; then
    echo "==> 1/3 bench/ann_peer.py (hnswlib) interleaved with strata-loadgen ann (dataset $DATA)" >&2
    "$VPY" "$ROOT/bench/ann_peer.py" "${ANN_ARGS[@]}" \
        --filter-queries "$FILTER_QUERIES" \
        --strata-loadgen "$LOADGEN" --strata-out "$WORK_DIR/strata_ann.json" \
        --strata-arg=--quantization --strata-arg="$QUANTIZATION" \
        --out "$WORK_DIR/hnswlib.json"
    PEER_JSON="$WORK_DIR/hnswlib.json"
    PEER_VERSION="hnswlib $("$VPY" -c 'from importlib.metadata import version as v; print(v("hnswlib"))') ($(cat "$VENV/hnswlib-build.txt")), numpy $("$VPY" -c 'import numpy; print(numpy.__version__)'), Python $("$VPY" -c 'import platform; print(platform.python_version())')"
else
    echo "==> 1/3 strata-loadgen ann (in-process engine alone, dataset $DATA)" >&2
    "$LOADGEN" ann "${ANN_ARGS[@]}" --filter-queries "$FILTER_QUERIES" \
        --quantization "$QUANTIZATION" --out "$WORK_DIR/strata_ann.json"
fi

HTTP_STATUS=0
HTTP_JSON=""
if [[ "${SKIP_HTTP:-0}" != "1" ]]; then
    echo "==> 2/3 bench/vectors_http.py (strata serve over HTTP, the reference client, restarts)" >&2
    KEEP=()
    [[ "${KEEP_DATA:-0}" == "1" ]] && KEEP=(--keep-data)
    set +e
    "$PYTHON" "$ROOT/bench/vectors_http.py" \
        --strata "$STRATA" --data "$DATA" --client-python "$VPY" \
        --restart-trials "$RESTART_TRIALS" --kill-points "$KILL_POINTS" \
        --kill-trials "$KILL_TRIALS" --out "$WORK_DIR/http.json" "${KEEP[@]}"
    HTTP_STATUS=$?
    set -e
    if [[ $HTTP_STATUS -eq 1 || ! -f "$WORK_DIR/http.json" ]]; then
        echo "!!! the HTTP part failed to set up" >&2
        exit 1
    fi
    HTTP_JSON="$WORK_DIR/http.json"
fi
bench_monitor_stop

echo "==> 3/3 bench/vectors_report.py" >&2
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
    --meta "CPU=${CPU_MODEL:-unknown} (SIMD flags: ${SIMD:-?})" \
    --meta "nproc=$NPROC" \
    --meta "memory=${MEM:-unknown}" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "peer=$PEER_VERSION" \
    --meta "HTTP client=the reference's client_bench.py (requests $("$VPY" -c 'import requests; print(requests.__version__)' 2>/dev/null || echo '?'), Python $("$VPY" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo '?'))" \
    --meta "dataset=$DATA" \
    "${BENCH_META[@]}"
bench_mark_report "$OUT_DIR/vectors.md"
echo "==> wrote bench/results/vectors.md, vectors.json and vectors_recall_qps.svg" >&2
exit "$HTTP_STATUS"
