#!/usr/bin/env python3
"""Writes bench/results/retrieval.md and retrieval.json from the parts of
bench/retrieval.sh, and runs the parameter study on the dev split.

    python3 bench/retrieval_report.py --report REPORT.json --dump DUMP.json \
        --md OUT.md --json OUT.json --command "bash bench/retrieval.sh" \
        [--variant LABEL=REPORT.json ...] [--meta key=value ...]

--variant: the REPORT.json of a run of the same test with other bot
settings (STRATA_EVAL_SETTINGS: chunk size and overlap, contextual chunk
headers off), shown beside the default run.

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
SETS = ("questions", "passages", "manpages")
SPLITS = ("dev", "test")

RULE = (
    "on the dev split, at the default candidate depth (40), the variant whose worst margin over "
    "the better of keyword and dense (over the three query sets and both measures) is largest; "
    "ties broken by the mean MRR@10 of the sets, then by the order of the grid (the default "
    "in fusion.rs first)"
)
RULE_KEYWORD = (
    "on the dev split, the keyword variant whose hybrid search (default fusion) has the largest "
    "mean MRR@10 over the three query sets, ties broken by mean recall@5"
)
# Document-level aggregation studied: a chunk's fused score plus LAMBDA times
# the fused scores of the other candidates of its document.
LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5)

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
    # Study variants that fusion.rs does not offer: other normalisations of
    # the weighted sum, and RRF with a weight per list.
    for w in (0.4, 0.5, 0.6, 0.7):
        g.append(("z", w))
        g.append(("dbsf", w))
        for k in (5, 10, 30):
            g.append(("wrrf", w, k))
    if default not in g:
        sys.exit(f"the default {default} is not in the grid")
    return [default] + [v for v in g if v != default]


def name(v):
    if v[0] == "adaptive":
        return f"adaptive p={v[1]} r={v[2]}"
    if v[0] == "rrf":
        return f"rrf k={v[1]}"
    if v[0] == "z":
        return f"z-score weighted {v[1]:.1f}"
    if v[0] == "dbsf":
        return f"dbsf weighted {v[1]:.1f}"
    if v[0] == "wrrf":
        return f"rrf k={v[2]} dense weight {v[1]:.1f}"
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


def zscore(lst):
    """Scores as z-scores over the list (a study variant, not in fusion.rs)."""
    if not lst:
        return []
    xs = [s for _, s in lst]
    m = sum(xs) / len(xs)
    sd = (sum((x - m) ** 2 for x in xs) / len(xs)) ** 0.5 or 1.0
    return [(i, (s - m) / sd) for i, s in lst]


def dbsf(lst):
    """Distribution-based score fusion's normalisation: mean ± 3 standard
    deviations mapped to 0..1 (a study variant, not in fusion.rs)."""
    if not lst:
        return []
    xs = [s for _, s in lst]
    m = sum(xs) / len(xs)
    sd = (sum((x - m) ** 2 for x in xs) / len(xs)) ** 0.5 or 1.0
    lo, hi = m - 3 * sd, m + 3 * sd
    return [(i, min(max((s - lo) / (hi - lo), 0.0), 1.0)) for i, s in lst]


def fused_scores(kw, de, v):
    """(scores, first-seen order) of every candidate under variant `v`."""
    scores, order = {}, {}

    def add(i, s):
        if i not in scores:
            scores[i], order[i] = 0.0, len(order)
        scores[i] += s

    if v[0] in ("rrf", "wrrf"):
        k = v[1] if v[0] == "rrf" else v[2]
        w = 0.5 if v[0] == "rrf" else v[1]
        for lst, wt in ((kw, 1 - w), (de, w)):
            for rank, (i, _) in enumerate(lst):
                add(i, (1.0 if v[0] == "rrf" else 2 * wt) / (k + rank + 1.0))
    elif v[0] in ("weighted", "z", "dbsf"):
        norm = {"weighted": normalise, "z": zscore, "dbsf": dbsf}[v[0]]
        w = min(max(v[1], 0.0), 1.0)
        for i, s in norm(kw):
            add(i, (1 - w) * s)
        for i, s in norm(de):
            add(i, w * s)
    else:
        _, p, r = v
        ck, cd = confidence(kw, r) ** p, confidence(de, r) ** p
        w = cd / (ck + cd) if ck + cd > 1.1920929e-07 else 0.5
        for i, s in max_normalise(kw):
            add(i, (1 - w) * s)
        for i, s in max_normalise(de):
            add(i, w * s)
    return scores, order


def fuse(kw, de, v):
    scores, order = fused_scores(kw, de, v)
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


def lists(q, depth, keyword="keyword"):
    kw = [((d, c), s) for d, c, s in q["lists"][keyword][:depth]]
    de = [((d, c), s) for d, c, s in q["lists"]["dense"][:depth]]
    return kw, de


def aggregate(fused, lam, scores):
    """Document-level aggregation: each chunk's score plus `lam` times the
    scores of the other candidates of its document."""
    if lam == 0:
        return fused
    total = {}
    for i in fused:
        total[i[0]] = total.get(i[0], 0.0) + scores[i]
    new = {i: scores[i] + lam * (total[i[0]] - scores[i]) for i in fused}
    return sorted(fused, key=lambda i: -new[i])


def fuse_scored(kw, de, v):
    """fuse() with the fused scores (for aggregation)."""
    scores, order = fused_scores(kw, de, v)
    return sorted(scores, key=lambda i: (-scores[i], order[i])), scores


def study(dump, g, default, keyword_variants):
    """{(set, split): {variant key: score}}: the single modes, every fusion
    at every depth, every keyword variant (alone and fused by the default),
    and the default fusion with document-level aggregation."""
    out = {}
    for s in SETS:
        for split in SPLITS:
            qs = [q for q in dump if q["set"] == s and q["split"] == split]
            if not qs:
                continue
            cell = {}
            cell["keyword"] = score(qs, [[i for i, _ in lists(q, K)[0]] for q in qs])
            cell["dense"] = score(qs, [[i for i, _ in lists(q, K)[1]] for q in qs])
            for depth in DEPTHS:
                for v in g:
                    cell[(name(v), depth)] = score(qs, [fuse(*lists(q, depth), v) for q in qs])
            for kv in keyword_variants:
                cell[("kw", kv)] = score(qs, [[i for i, _ in lists(q, K, kv)[0]] for q in qs])
                cell[("hy", kv)] = score(
                    qs, [fuse(*lists(q, DEFAULT_DEPTH, kv), default) for q in qs]
                )
            for lam in LAMBDAS:
                ranked = []
                for q in qs:
                    order, scores = fuse_scored(*lists(q, DEFAULT_DEPTH), default)
                    ranked.append(aggregate(order, lam, scores))
                cell[("agg", lam)] = score(qs, ranked)
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


def mean(cells, split, key, measure):
    return sum(cells[(s, split)][key][measure] for s in SETS) / len(SETS)


def choose(cells, variants):
    best, best_key = None, None
    for v in variants:
        w, m = margins(cells, "dev", (name(v), DEFAULT_DEPTH))
        key = (round(w, 9), round(m, 9))
        if best_key is None or key > best_key:
            best, best_key = v, key
    return best


def choose_by_mrr(cells, keys):
    return max(
        keys,
        key=lambda k: (
            round(mean(cells, "dev", k, "mrr_at_10"), 9),
            round(mean(cells, "dev", k, "recall_at_5"), 9),
        ),
    )


# ---- report ------------------------------------------------------------------


def f3(x):
    return f"{x:.3f}"


def signed(x):
    return f"{x:+.3f}"


def facade_cells(rep):
    out = {}
    for row in rep["rows"]:
        out.setdefault((row["set"], row["split"]), {})[row["method"]] = row
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()
    meta = dict(m.split("=", 1) for m in a.meta)
    rep = json.loads(Path(a.report).read_text())
    dump = json.loads(Path(a.dump).read_text())
    if rep["k"] != K or rep["mrr_cutoff"] != MRR_CUTOFF:
        sys.exit(f"the test measured k={rep['k']}, MRR@{rep['mrr_cutoff']}; this script replays k={K}")
    variants = []
    for v in a.variant:
        label, _, path = v.partition("=")
        if Path(path).is_file():
            variants.append((label, json.loads(Path(path).read_text())))
        else:
            variants.append((label, None))

    facade = facade_cells(rep)
    methods = list(dict.fromkeys(r["method"] for r in rep["rows"]))
    counts = {(s, sp): next(iter(facade[(s, sp)].values()))["queries"] for s in SETS for sp in SPLITS}

    default = parse_fusion(rep["default_fusion"])
    g = grid(default)
    keyword_variants = sorted(k for k in dump[0]["lists"] if k.startswith("keyword hw="))
    cells = study(dump, g, default, keyword_variants)
    chosen = choose(cells, g)
    per_family = {fam: choose(cells, [v for v in g if v[0] == fam]) for fam in ("adaptive", "rrf", "weighted", "z", "dbsf", "wrrf")}
    chosen_kw = choose_by_mrr(cells, [("hy", kv) for kv in keyword_variants])[1]
    chosen_lam = choose_by_mrr(cells, [("agg", lam) for lam in LAMBDAS])[1]

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

    docs, chunks, queries = rep["documents"], rep["chunks"], rep["queries"]
    L = ["# Knowledge-base retrieval quality", ""]
    L += [
        f"Command: `{a.command}` (runs the CI test `cargo test -p strata --test retrieval_quality`, "
        "then `bench/retrieval_report.py`).",
        "",
        "## Method",
        "",
        "Two labelled sets of real documents of different kinds, each indexed in a bot of its own with "
        "all-MiniLM-L6-v2 (local embedder), chunks 800/150 with contextual chunk headers (the default); "
        f"indexed in {rep['indexing_seconds']:.0f} s on this machine.",
        "",
        f"- **stdlib** ({docs['eval']} Markdown documents, {chunks['eval']} chunks): one per Python "
        "standard-library module (its docstring, comment and language-reference paragraphs from "
        "`../shared/bench/data/base.jsonl.gz`), built by `scripts/make-retrieval-eval.py`. Query sets: "
        f"**questions** — {queries['questions']} hand-written natural-language questions; **passages** — "
        f"{queries['passages']} texts of `query.jsonl.gz` (paragraphs and windows of 1–3 sentences) held out "
        "of the corpus by construction (the generator fails if any passage still shares a run of 8 "
        "consecutive words, or more than 20 % of its word 5-grams, with its answer document).",
        f"- **manpages** ({docs['man']} Markdown documents, {chunks['man']} chunks): section-1 manual pages "
        "installed on the machine (coreutils, git, binutils, LLVM, OpenSSL, perf, PostgreSQL, MariaDB, X11 "
        "tools, …), rendered by `man` and cut at 5000 characters, built by `scripts/make-manpage-eval.py`. "
        f"Query set **manpages**: {queries['manpages']} questions written by hand from what each page says "
        "its program is for, as a user who does not know the program's name asks (\"Who wrote this line "
        "of code and in which commit?\"); the generator fails if a question names its program or shares a "
        "run of 6 consecutive words with its page.",
        "- **Splits**: each query set split in two halves with a fixed seed (passages stratified by kind, "
        "manual pages by document): "
        + ", ".join(f"{s} {counts[(s, 'dev')]} dev / {counts[(s, 'test')]} test" for s in SETS)
        + ". **Every choice of method and parameter is made on dev; test plays no part in any choice.** "
        "The CI test holds hybrid's default to at least the better of keyword and dense on the test half "
        "of every query set, on both measures.",
        f"- **Measures**, at document level (a document's rank is its best chunk's; {K} chunks fetched, so "
        f"hybrid fuses {DEFAULT_DEPTH} candidates from each list, as every request with k ≤ 20 does): "
        "recall@5 = share of queries whose document is in the first 5; MRR@10 = mean of 1/rank, 0 beyond "
        f"rank {MRR_CUTOFF}.",
        f"- Defaults in this build: fusion `{rep['default_fusion']}` (`{name(default)}` below); keyword "
        f"search `{rep['default_keyword']}` (hw = BM25 weight of the chunk's context head against its text, "
        "sw = English stop words dropped from the query). Fusion names: `weighted w` = min–max normalised "
        "scores, w · dense + (1 − w) · keyword; `rrf k` = Σ 1/(k + rank); `adaptive p=… r=…` = each list "
        "divided by its best score and weighted by c^p, c = (s₁ − s_r)/s₁. The API's `rrf` is "
        f"k = {rep['rrf_k']:g}; see `crates/strata-kb/src/fusion.rs`.",
        "",
    ]

    def table(split, fc=facade, ms=methods):
        hdr = "| method | " + " | ".join(f"{s} R@5 | {s} MRR@10" for s in SETS) + " |"
        out = [hdr, "|---|" + "---:|" * (2 * len(SETS))]
        for m in ms:
            label = f"**{m}** (default)" if m == "hybrid" else m
            cols = []
            for s in SETS:
                r = fc[(s, split)][m]
                cols += [f3(r["recall_at_5"]), f3(r["mrr_at_10"])]
            out.append(f"| {label} | " + " | ".join(cols) + " |")
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
    L += ["", "Issue 14's target on the test halves (hybrid recall@5 ≥ 0.95 and MRR@10 ≥ 0.88):", ""]
    for s in SETS:
        hy = facade[(s, "test")]["hybrid"]
        ok = hy["recall_at_5"] >= 0.95 and hy["mrr_at_10"] >= 0.88
        L.append(f"- {s}: {'met' if ok else 'NOT met'} ({f3(hy['recall_at_5'])}, {f3(hy['mrr_at_10'])})")
    L += ["", "## Dev split", "", "Measured through the facade by the CI test.", ""]
    L += table("dev")

    # Chunking variants: separate runs of the same test with bot settings.
    if variants:
        L += [
            "",
            "## Chunking variants (separate runs)",
            "",
            "The same test run again with other bot settings (`STRATA_EVAL_SETTINGS`): everything re-indexed. "
            "Hybrid is the default fusion with the default keyword search.",
            "",
            "| run | settings | split | "
            + " | ".join(f"{s} kw/dense/hybrid MRR@10" for s in SETS)
            + " | "
            + " | ".join(f"{s} hybrid R@5" for s in SETS)
            + " |",
            "|---|---|---|" + "---|" * (2 * len(SETS)),
        ]
        for label, vr in [("default", rep)] + variants:
            if vr is None:
                L.append(f"| {label} | (not run) | | " + " | " * (2 * len(SETS) - 1) + " |")
                continue
            fc = facade_cells(vr)
            for sp in SPLITS:
                cols = []
                for s in SETS:
                    c = fc[(s, sp)]
                    cols.append("/".join(f3(c[m]["mrr_at_10"]) for m in ("keyword", "dense", "hybrid")))
                for s in SETS:
                    cols.append(f3(fc[(s, sp)]["hybrid"]["recall_at_5"]))
                settings = json.dumps(vr.get("settings") or {}) or "{}"
                L.append(f"| {label} | `{settings}` | {sp} | " + " | ".join(cols) + " |")

    L += [
        "",
        "## Parameter study (choices on dev)",
        "",
        "Hybrid search replayed offline from every query's keyword and dense lists (written by the test with "
        "`STRATA_EVAL_DUMP`), with the fusions of `fusion.rs` re-implemented in `bench/retrieval_report.py`; "
        f"the replay agrees with the facade's figures above to within {replay_diff:.3f}.",
        "",
        "### Keyword search: head weight and query normalisation",
        "",
        f"Rule: {RULE_KEYWORD}. Chosen on dev: **{chosen_kw}**"
        + (" — the default." if chosen_kw == rep["default_keyword"] else
           f" — NOT the default (`{rep['default_keyword']}`)."),
        "",
        "| keyword variant | dev mean kw MRR@10 | dev mean hybrid MRR@10 | dev mean hybrid R@5 | "
        + " | ".join(f"test {s} kw / hybrid MRR@10" for s in SETS) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(SETS),
    ]
    for kv in keyword_variants:
        label = f"**{kv}**" if kv == chosen_kw else kv
        if kv == rep["default_keyword"]:
            label += " (default)"
        L.append(
            f"| {label} | {f3(mean(cells, 'dev', ('kw', kv), 'mrr_at_10'))} | "
            f"{f3(mean(cells, 'dev', ('hy', kv), 'mrr_at_10'))} | "
            f"{f3(mean(cells, 'dev', ('hy', kv), 'recall_at_5'))} | "
            + " | ".join(
                f"{f3(cells[(s, 'test')][('kw', kv)]['mrr_at_10'])} / {f3(cells[(s, 'test')][('hy', kv)]['mrr_at_10'])}"
                for s in SETS
            )
            + " |"
        )
    L += [
        "",
        "### Document-level aggregation",
        "",
        "A chunk's fused score plus λ times the fused scores of the other candidates of its document (λ = 0: a "
        f"document is as good as its best chunk, what search does). Same rule as for keyword search. Chosen on dev: "
        f"**λ = {chosen_lam}**.",
        "",
        "| λ | dev mean hybrid MRR@10 | dev mean hybrid R@5 | "
        + " | ".join(f"test {s} R@5 / MRR@10" for s in SETS) + " |",
        "|---:|---:|---:|" + "---:|" * len(SETS),
    ]
    for lam in LAMBDAS:
        key = ("agg", lam)
        L.append(
            f"| {lam} | {f3(mean(cells, 'dev', key, 'mrr_at_10'))} | {f3(mean(cells, 'dev', key, 'recall_at_5'))} | "
            + " | ".join(
                f"{f3(cells[(s, 'test')][key]['recall_at_5'])} / {f3(cells[(s, 'test')][key]['mrr_at_10'])}"
                for s in SETS
            )
            + " |"
        )
    L += [
        "",
        "### Fusion",
        "",
        f"Rule: {RULE}.",
        "",
        f"- Chosen on dev: **{name(chosen)}**" + (
            " — the default in fusion.rs." if chosen == default else
            f" — NOT the default in fusion.rs (`{name(default)}`)."
        ),
    ]
    chosen_margin = margins(cells, "dev", (name(chosen), DEFAULT_DEPTH))[0]
    if chosen != default and chosen_margin < 0:
        L.append(
            f"- **Decision: the default stays.** No variant studied reaches a dev margin ≥ 0 (the best, "
            f"`{name(chosen)}`, is {chosen_margin:+.3f}): none is at least as good as the better single mode on "
            "every dev half, so changing the default would trade one set's loss for another's gain. "
            "z-score, DBSF and per-list RRF weights are studied here only (fusion.rs does not offer them)."
        )
    for fam, v in per_family.items():
        L.append(f"- Best `{fam}` on dev by the same rule: {name(v)}")
    L += [
        "",
        "Margin = the variant's worst difference from the better of keyword and dense over the three sets and "
        "both measures (≥ 0: at least as good everywhere). Depth 40 unless stated. Test columns are shown for "
        "every variant; they played no part in the choice.",
        "",
        "| variant | dev margin | "
        + " | ".join(f"dev {s} MRR@10" for s in SETS)
        + " | test margin | "
        + " | ".join(f"test {s} MRR@10" for s in SETS)
        + " |",
        "|---|---:|" + "---:|" * len(SETS) + "---:|" + "---:|" * len(SETS),
    ]

    def study_row(label, key):
        wd, _ = margins(cells, "dev", key)
        wt, _ = margins(cells, "test", key)
        return (
            f"| {label} | {signed(wd)} | "
            + " | ".join(f3(cells[(s, 'dev')][key]["mrr_at_10"]) for s in SETS)
            + f" | {signed(wt)} | "
            + " | ".join(f3(cells[(s, 'test')][key]["mrr_at_10"]) for s in SETS)
            + " |"
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
        "Recall and MRR depend on no timing (the same fixtures, model and code give the same rankings): the "
        "machine's load changes only the indexing time.",
    ]
    Path(a.md).write_text("\n".join(L) + "\n")

    def key_str(k):
        return k if isinstance(k, str) else " ".join(str(x) for x in k)

    out = {
        "command": a.command,
        "meta": meta,
        "method": {"k": K, "mrr_cutoff": MRR_CUTOFF, "hybrid_depth": DEFAULT_DEPTH, "rule": RULE,
                   "rule_keyword": RULE_KEYWORD},
        "facade": rep,
        "variants": {label: vr for label, vr in variants},
        "study": {
            "chosen_on_dev": name(chosen),
            "chosen_keyword_on_dev": chosen_kw,
            "chosen_aggregation_lambda_on_dev": chosen_lam,
            "default": name(default),
            "best_per_family_on_dev": {f: name(v) for f, v in per_family.items()},
            "replay_max_difference": replay_diff,
            "cells": [
                {"set": s, "split": sp, "variant": key_str(k), **v}
                for (s, sp), c in cells.items() for k, v in c.items()
            ],
        },
    }
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
