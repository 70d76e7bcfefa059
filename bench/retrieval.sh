#!/usr/bin/env bash
# Retrieval quality of the knowledge base: recall@5 and MRR of keyword,
# dense and hybrid search on the labelled evaluation set
# crates/strata/tests/fixtures/retrieval_eval.json.gz (made by
# scripts/make-retrieval-eval.py from ../shared/bench/data; see the header
# of crates/strata/tests/retrieval_quality.rs).
#
#   bash bench/retrieval.sh
#
# Runs the same test CI runs (which holds hybrid to at least the better of
# keyword and dense), with STRATA_EVAL_REPORT set, and writes
# bench/results/retrieval.md and bench/results/retrieval.json.
# Takes 1–3 minutes on 2 cores (indexing 127 documents with the local model).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}"
model="$(bash scripts/fetch-model.sh)"
out="bench/results/retrieval.json"
mkdir -p bench/results
STRATA_TEST_MODEL_DIR="$model" STRATA_EVAL_REPORT="$PWD/$out" \
    cargo test -p strata --test retrieval_quality -- --nocapture
python3 - "$out" bench/results/retrieval.md <<'PY'
import json, sys, platform, os
r = json.load(open(sys.argv[1]))
rows = r["rows"]
lines = [
    "# Knowledge-base retrieval quality",
    "",
    "Command: `bash bench/retrieval.sh` (the CI test `cargo test -p strata --test retrieval_quality`).",
    "",
    f"Corpus: {r['documents']} Markdown documents (one per Python standard-library module: its "
    f"docstring, comment and language-reference paragraphs from `../shared/bench/data/base.jsonl.gz`), "
    f"{r['chunks']} chunks (800/150), embedded with all-MiniLM-L6-v2 (local embedder); indexed in "
    f"{r['indexing_seconds']:.0f} s on this machine.",
    "",
    f"Queries: **questions** — {r['questions']} hand-written natural-language questions, each labelled with "
    f"the module that answers it; **passages** — {r['passages']} held-out sentences and paragraphs of "
    "`query.jsonl.gz` (never in the corpus), labelled with their module.",
    "",
    f"Measures at document level (a document's rank is its best chunk's; {r['depth']} chunks fetched): "
    "recall@5 = share of queries whose document is in the first 5, MRR = mean of 1/rank (0 when not found).",
    "",
    f"Default fusion of `mode: hybrid`: `{r['default_fusion']}`.",
    "",
    "| set | method | recall@5 | MRR |",
    "|---|---|---:|---:|",
]
for row in rows:
    lines.append(f"| {row['set']} | {row['method']} | {row['recall_at_5']:.3f} | {row['mrr']:.3f} |")
best = {}
for row in rows:
    best.setdefault(row["set"], {})[row["method"]] = row
lines += ["", "Hybrid (default) against the better of keyword and dense:", ""]
for s, m in best.items():
    kw, de, hy = m["keyword"], m["dense"], m["hybrid"]
    lines.append(
        f"- {s}: recall@5 {hy['recall_at_5']:.3f} vs {max(kw['recall_at_5'], de['recall_at_5']):.3f}, "
        f"MRR {hy['mrr']:.3f} vs {max(kw['mrr'], de['mrr']):.3f}"
    )
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
