#!/usr/bin/env python3
"""Writes bench/results/retrieval.md and retrieval.json from the parts of
bench/retrieval.sh, and runs the fusion parameter study on the dev split.

    python3 bench/retrieval_report.py --report REPORT.json --dump DUMP.json \
        --md OUT.md --json OUT.json --command "bash bench/retrieval.sh" \
        [--meta key=value ...]

REPORT.json is what the CI test `retrieval_quality` writes with
STRATA_EVAL_REPORT: recall@5 and MRR@10 of fixed variants measured through
the facade on both splits. DUMP.json is what it writes with STRATA_EVAL_DUMP:
every query's keyword and dense lists (60 chunks deep, with scores).

The study replays hybrid search offline from the dump: the same fusions as
crates/strata-kb/src/fusion.rs (re-implemented below, checked against the
facade's figures in the report) over a grid of parameters and candidate
depths. It *chooses* on the dev split only, by RULE below, and then shows
every variant's test figures, which play no part in the choice.
"""

import argparse
import json
import sys
from pathlib import Path

# What the facade does (crates/strata-kb/src/base.rs, the CI test): k = 20
# chunks per search, hybrid fuses max(2k, 40) = 40 candidates per list.
K = 20
DEFAULT_DEPTH = 40
DEPTHS = (20, 40, 60)
MRR_CUTOFF = 10
SETS = ("questions", "passages")

RULE = (
    "on the dev split, at the default candidate depth (40), the variant whose worst margin over "
    "the better of keyword and dense (over both query sets and both measures) is largest; "
    "ties broken by the mean MRR@10 of the two sets, then by the order of the grid (the default "
    "in fusion.rs first)"
)

# `Fusion::Adaptive` in crates/strata-kb/src/fusion.rs: the exponent and
# the rank whose score measures a list's fall.
ADAPTIVE = ("adaptive", 2, 10)


def parse_fusion(debug):
    """The test's `format!("{:?}", Fusion::default())` as a grid variant."""
    if debug == "Adaptive":
        return ADAPTIVE
    kind, _, rest = debug.partition(" { ")
    value = float(rest.split(":")[1].strip(" }"))
    if kind == "Rrf":
        return ("rrf", int(value) if value.is_integer() else value)
    if kind == "Weighted":
        return ("weighted", round(value, 3))
    sys.exit(f"unknown default fusion {debug!r}")


def grid(default):
    """Every variant studied, the default first."""
    g = []
    for p in (1, 2, 3, 4):
        for r in (5, 10, 20):
            g.append(("adaptive", p, r))
    for k in (1, 5, 10, 20, 40, 60, 100):
        g.append(("rrf", k))
    for w in range(1, 10):
        g.append(("weighted", w / 10))
    if default not in g:
        sys.exit(f"the default {default} is not in the grid")
    return [default] + [v for v in g if v != default]


def name(v):
    if v[0] == "adaptive":
        return f"adaptive p={v[1]} r={v[2]}"
    if v[0] == "rrf":
        return f"rrf k={v[1]}"
    return f"weighted {v[1]:.1f}"


# ---- fusion.rs, re-implemented ---------------------------------------------


def normalise(lst):
    if not lst:
        return []
    hi, lo = max(s for _, s in lst), min(s for _, s in lst)
    span = hi - lo
    return [(i, (s - lo) / span if span > 1.1920929e-07 else 1.0) for i, s in lst]


def max_normalise(lst):
    if not lst:
        return []
    hi = max(s for _, s in lst)
    return [(i, min(max(s / hi, 0.0), 1.0) if hi > 1.1920929e-07 else 0.0) for i, s in lst]


def confidence(lst, rank):
    if not lst:
        return 0.0
    first = lst[0][1]
    if first <= 0.0:
        return 0.0
    nth = lst[rank - 1][1] if len(lst) >= rank else 0.0
    return min(max((first - nth) / first, 0.0), 1.0)


def fuse(kw, de, v):
    scores, order = {}, {}

    def add(i, s):
        if i not in scores:
            scores[i], order[i] = 0.0, len(order)
        scores[i] += s

    if v[0] == "rrf":
        for lst in (kw, de):
            for rank, (i, _) in enumerate(lst):
                add(i, 1.0 / (v[1] + rank + 1.0))
    elif v[0] == "weighted":
        w = min(max(v[1], 0.0), 1.0)
        for i, s in normalise(kw):
            add(i, (1 - w) * s)
        for i, s in normalise(de):
            add(i, w * s)
    else:
        _, p, r = v
        ck, cd = confidence(kw, r) ** p, confidence(de, r) ** p
        w = cd / (ck + cd) if ck + cd > 1.1920929e-07 else 0.5
        for i, s in max_normalise(kw):
            add(i, (1 - w) * s)
        for i, s in max_normalise(de):
            add(i, w * s)
    return sorted(scores, key=lambda i: (-scores[i], order[i]))


# ---- measures ----------------------------------------------------------------


def doc_rank(chunks, document):
    """`chunks`: (document, chunk) ids, best first."""
    docs = []
    for d, _ in chunks:
        if d not in docs:
            docs.append(d)
    return docs.index(document) if document in docs else None


def score(queries, ranked):
    r5 = mrr = 0.0
    for q, chunks in zip(queries, ranked):
        pos = doc_rank(chunks[:K], q["document"])
        if pos is not None:
            r5 += pos < 5
            mrr += 1.0 / (pos + 1) if pos < MRR_CUTOFF else 0.0
    n = len(queries)
    return {"recall_at_5": r5 / n, "mrr_at_10": mrr / n, "queries": n}


def lists(q, depth):
    kw = [((d, c), s) for d, c, s in q["lists"]["keyword"][:depth]]
    de = [((d, c), s) for d, c, s in q["lists"]["dense"][:depth]]
    return kw, de


def study(dump, g):
    """{(set, split): {variant name: score}} for the single modes and every
    grid variant at every depth."""
    out = {}
    for s in SETS:
        for split in ("dev", "test"):
            qs = [q for q in dump if q["set"] == s and q["split"] == split]
            cell = {}
            cell["keyword"] = score(qs, [[i for i, _ in lists(q, K)[0]] for q in qs])
            cell["dense"] = score(qs, [[i for i, _ in lists(q, K)[1]] for q in qs])
            for depth in DEPTHS:
                for v in g:
                    cell[(name(v), depth)] = score(qs, [fuse(*lists(q, depth), v) for q in qs])
            out[(s, split)] = cell
    return out


def margins(cells, split, key):
    """Worst margin over sets and measures of `key` against the better of
    keyword and dense, and the mean MRR@10 over the sets."""
    worst, mrr = float("inf"), 0.0
    for s in SETS:
        c = cells[(s, split)]
        for m in ("recall_at_5", "mrr_at_10"):
            worst = min(worst, c[key][m] - max(c["keyword"][m], c["dense"][m]))
        mrr += c[key]["mrr_at_10"] / len(SETS)
    return worst, mrr


def choose(cells, variants):
    best, best_key = None, None
    for v in variants:
        w, m = margins(cells, "dev", (name(v), DEFAULT_DEPTH))
        key = (round(w, 9), round(m, 9))
        if best_key is None or key > best_key:
            best, best_key = v, key
    return best


# ---- report ------------------------------------------------------------------


def f3(x):
    return f"{x:.3f}"


def signed(x):
    return f"{x:+.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()
    meta = dict(m.split("=", 1) for m in a.meta)
    rep = json.loads(Path(a.report).read_text())
    dump = json.loads(Path(a.dump).read_text())
    if rep["k"] != K or rep["mrr_cutoff"] != MRR_CUTOFF:
        sys.exit(f"the test measured k={rep['k']}, MRR@{rep['mrr_cutoff']}; this script replays k={K}")

    facade = {}
    for row in rep["rows"]:
        facade.setdefault((row["set"], row["split"]), {})[row["method"]] = row
    methods = list(dict.fromkeys(r["method"] for r in rep["rows"]))
    counts = {(s, sp): next(iter(facade[(s, sp)].values()))["queries"] for s in SETS for sp in ("dev", "test")}

    default = parse_fusion(rep["default_fusion"])
    g = grid(default)
    cells = study(dump, g)
    chosen = choose(cells, g)
    per_family = {fam: choose(cells, [v for v in g if v[0] == fam]) for fam in ("adaptive", "rrf", "weighted")}

    # The replay against the facade: the variants both measured.
    replay_of = {"keyword": "keyword", "dense": "dense", "hybrid": (name(default), DEFAULT_DEPTH),
                 "hybrid adaptive": (name(ADAPTIVE), DEFAULT_DEPTH)}
    for m in methods:
        if m.startswith("hybrid rrf k=") or m.startswith("hybrid weighted "):
            replay_of[m] = (m[len("hybrid "):], DEFAULT_DEPTH)
    replay_diff = 0.0
    for (s, sp), rows in facade.items():
        for m, row in rows.items():
            if m in replay_of:
                o = cells[(s, sp)][replay_of[m]]
                for x in ("recall_at_5", "mrr_at_10"):
                    replay_diff = max(replay_diff, abs(o[x] - row[x]))

    L = ["# Knowledge-base retrieval quality", ""]
    L += [
        f"Command: `{a.command}` (runs the CI test `cargo test -p strata --test retrieval_quality`, "
        "then `bench/retrieval_report.py`).",
        "",
        "## Method",
        "",
        f"- **Corpus**: {rep['documents']} Markdown documents, one per Python standard-library module (its "
        "docstring, comment and language-reference paragraphs from `../shared/bench/data/base.jsonl.gz`), "
        f"{rep['chunks']} chunks (800/150), embedded with all-MiniLM-L6-v2 (local embedder); indexed in "
        f"{rep['indexing_seconds']:.0f} s on this machine. Built by `scripts/make-retrieval-eval.py`.",
        f"- **Queries**, each labelled with the one module that answers it: **questions** — {rep['questions']} "
        f"hand-written natural-language questions; **passages** — {rep['passages']} texts of "
        "`query.jsonl.gz` (paragraphs and windows of 1–3 sentences) held out of the corpus by construction: "
        "the paragraphs of the module that a passage was cut from (or that share its words) are left out "
        "of the corpus, and the generator fails if any passage still shares a run of 8 consecutive words, "
        "or more than 20 % of its word 5-grams, with its answer document.",
        f"- **Splits**: each set split in two with a fixed seed (passages stratified by kind): questions "
        f"{counts[('questions', 'dev')]} dev / {counts[('questions', 'test')]} test, passages "
        f"{counts[('passages', 'dev')]} dev / {counts[('passages', 'test')]} test. **Every choice of fusion and "
        "parameters is made on dev; test plays no part in any choice.** The CI test holds hybrid's default to "
        "at least the better of keyword and dense on the test split of both sets, on both measures.",
        f"- **Measures**, at document level (a document's rank is its best chunk's; {K} chunks fetched, so hybrid "
        f"fuses {DEFAULT_DEPTH} candidates from each list, as every request with k ≤ 20 does): recall@5 = share "
        f"of queries whose document is in the first 5; MRR@10 = mean of 1/rank, 0 beyond rank {MRR_CUTOFF}.",
        f"- Default fusion of `mode: hybrid` in this build: `{rep['default_fusion']}` (`{name(default)}` "
        "below). Names: `weighted w` = min–max normalised scores, w · dense + (1 − w) · keyword; `rrf k` = "
        "Σ 1/(k + rank); `adaptive p=… r=…` = each list divided by its best score and weighted by c^p, "
        "c = (s₁ − s_r)/s₁ (the API's `adaptive` is p=2 r=10). The API's `rrf` is "
        f"k = {rep['rrf_k']:g}; see `crates/strata-kb/src/fusion.rs`.",
        "",
        "How today's default was chosen: the rule below was fixed before any dev figure was seen, and applied "
        "to the dev split once; it chose `weighted 0.4` over the previous default `adaptive p=2 r=10` (dev "
        "worst margin +0.020 against +0.000). Before that choice one test figure had been glimpsed in the "
        "test's output (`weighted 0.7` on the test passages) together with the test's verdict on the previous "
        "default (it held); neither is an input of the rule.",
        "",
    ]

    def table(split):
        out = [
            "| method | questions recall@5 | questions MRR@10 | passages recall@5 | passages MRR@10 |",
            "|---|---:|---:|---:|---:|",
        ]
        for m in methods:
            q, p = facade[("questions", split)][m], facade[("passages", split)][m]
            label = f"**{m}** (default)" if m == "hybrid" else m
            out.append(
                f"| {label} | {f3(q['recall_at_5'])} | {f3(q['mrr_at_10'])} | {f3(p['recall_at_5'])} | {f3(p['mrr_at_10'])} |"
            )
        return out

    L += ["## Test split (the figures to quote)", "", "Measured through the facade by the CI test.", ""]
    L += table("test")
    L += ["", "Hybrid (default) against the better of keyword and dense, on test:", ""]
    for s in SETS:
        c = facade[(s, "test")]
        kw, de, hy = c["keyword"], c["dense"], c["hybrid"]
        L.append(
            f"- {s}: recall@5 {f3(hy['recall_at_5'])} vs {f3(max(kw['recall_at_5'], de['recall_at_5']))}, "
            f"MRR@10 {f3(hy['mrr_at_10'])} vs {f3(max(kw['mrr_at_10'], de['mrr_at_10']))}"
        )
    L += ["", "## Dev split", "", "Measured through the facade by the CI test.", ""]
    L += table("dev")

    L += [
        "",
        "## Parameter study (choices on dev)",
        "",
        "Hybrid search replayed offline from every query's keyword and dense lists (written by the test with "
        "`STRATA_EVAL_DUMP`), with the fusions of `fusion.rs` re-implemented in `bench/retrieval_report.py`; "
        f"the replay agrees with the facade's figures above to within {replay_diff:.3f}.",
        "",
        f"Rule: {RULE}.",
        "",
        f"- Chosen on dev: **{name(chosen)}**" + (
            " — the default in fusion.rs." if chosen == default else
            f" — NOT the default in fusion.rs (`{name(default)}`): the default should be chosen again."
        ),
    ]
    for fam, v in per_family.items():
        L.append(f"- Best `{fam}` on dev by the same rule: {name(v)}")
    L += [
        "",
        "Margin = the variant's worst difference from the better of keyword and dense over both sets and both "
        "measures (≥ 0: at least as good everywhere). Depth 40 unless stated. Test columns are shown for "
        "every variant; they played no part in the choice.",
        "",
        "| variant | dev margin | dev questions MRR@10 | dev passages MRR@10 | test margin | test questions MRR@10 | test passages MRR@10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def study_row(label, key):
        wd, _ = margins(cells, "dev", key)
        wt, _ = margins(cells, "test", key)
        c = lambda s, sp: cells[(s, sp)][key]["mrr_at_10"]  # noqa: E731
        return (
            f"| {label} | {signed(wd)} | {f3(c('questions', 'dev'))} | {f3(c('passages', 'dev'))} | "
            f"{signed(wt)} | {f3(c('questions', 'test'))} | {f3(c('passages', 'test'))} |"
        )

    for key, label in (("keyword", "keyword"), ("dense", "dense")):
        L.append(study_row(label, key))
    for v in g:
        label = name(v)
        if v == chosen:
            label = f"**{label}** (chosen)"
        elif v == default:
            label = f"{label} (default)"
        L.append(study_row(label, (name(v), DEFAULT_DEPTH)))
    L += ["", "Candidate depth (hybrid's `HYBRID_MIN_CANDIDATES` in `crates/strata-kb/src/base.rs` is 40):", ""]
    L += [
        "| variant | depth | dev margin | test margin |",
        "|---|---:|---:|---:|",
    ]
    for v in dict.fromkeys([default, chosen, *per_family.values()]):
        for depth in DEPTHS:
            key = (name(v), depth)
            L.append(
                f"| {name(v)} | {depth} | {signed(margins(cells, 'dev', key)[0])} | "
                f"{signed(margins(cells, 'test', key)[0])} |"
            )
    L += ["", "## Machine and run", ""]
    for k, v in meta.items():
        L.append(f"- {k}: {v}")
    L += [
        "",
        "Recall and MRR depend on no timing (the same fixture, model and code give the same rankings; runs "
        "under different loads gave the same figures): the machine's load changes only the indexing time.",
    ]
    Path(a.md).write_text("\n".join(L) + "\n")

    out = {
        "command": a.command,
        "meta": meta,
        "method": {"k": K, "mrr_cutoff": MRR_CUTOFF, "hybrid_depth": DEFAULT_DEPTH, "rule": RULE},
        "facade": rep,
        "study": {
            "chosen_on_dev": name(chosen),
            "default": name(default),
            "best_per_family_on_dev": {f: name(v) for f, v in per_family.items()},
            "replay_max_difference": replay_diff,
            "cells": [
                {"set": s, "split": sp, "variant": k if isinstance(k, str) else k[0],
                 "depth": None if isinstance(k, str) else k[1], **v}
                for (s, sp), c in cells.items() for k, v in c.items()
            ],
        },
    }
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
