#!/usr/bin/env python3
"""Writes the vectors benchmark report from the three JSON files that
bench/vectors.sh produces (stdlib only).

    python3 bench/vectors_report.py --strata ann.json --peer peer.json \
        --http http.json --baselines baselines_results.json \
        --md bench/results/vectors.md --json bench/results/vectors.json \
        --svg bench/results/vectors_recall_qps.svg [--meta name=value ...]

- vectors.md: machine, build and memory, unfiltered recall/QPS of Strata and
  hnswlib side by side (with hnswlib's QPS interpolated at Strata's recall),
  filtered recall/QPS next to hnswlib and BASELINES.md's qdrant-edge, and the
  HTTP figures next to the Qdrant-server reference with pass/fail per target.
- vectors.json: the inputs plus the computed summary.
- vectors_recall_qps.svg: recall@10 (x) against QPS (log y), one polyline
  per engine, drawn here by hand.

Any of --peer / --http may be missing (the sections say so).
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

# Qdrant 1.19 server, measured elsewhere with the same HTTP client method
# (Qdrant is not installable here); supplied with the benchmark's brief.
QDRANT_SERVER = {
    "version": "1.19",
    "search_1t_ef16_qps": 740.0,
    "search_1t_ef16_recall": 0.965,
    "search_8t_ef64_qps": 1150.0,
    "search_8t_ef64_p99_ms": (18.0, 20.0),
    "upload_s": 12.2,
    "cold_start_s": 0.13,
    "rss_mib": 365.0,
}
TARGETS = {
    "search_qps_ratio": 1.5,      # Strata >= 1.5x Qdrant's QPS
    "upload_ratio": 0.8,          # Strata <= 0.8x Qdrant's upload time
    "cold_start_s": 0.13,         # <=
    "rss_mib": 365.0,             # <=
}
BASELINE_CURVES = [  # (key in baselines_results.json, label, colour, dashed)
    ("hnswlib-M16-efc200", "hnswlib M16 efc200 (BASELINES.md)", "#ff7f0e", True),
    ("faiss-HNSWFlat-M16-efc200", "faiss HNSWFlat M16 efc200 (BASELINES.md)", "#2ca02c", True),
    ("faiss-HNSWFlat-M32-efc200", "faiss HNSWFlat M32 efc200 (BASELINES.md)", "#98df8a", True),
    ("usearch-c16-ea200", "usearch c16 ea200 (BASELINES.md)", "#9467bd", True),
    ("qdrant-edge-m16-efc100", "qdrant-edge m16 efc100 (BASELINES.md)", "#8c564b", True),
    ("qdrant-edge-m16-efc200", "qdrant-edge m16 efc200 (BASELINES.md)", "#e377c2", True),
]
QDRANT_EDGE = ["qdrant-edge-m16-efc100", "qdrant-edge-m16-efc200"]
MIB = 1048576.0


def load(p):
    if p is None:
        return None
    p = Path(p)
    if not p.exists():
        return None
    return json.loads(p.read_text())


def fmt(x, spec=".0f", none="-"):
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return none
    return format(x, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fx(r):
    if r is None:
        return "-"
    return (format(r, ".2f") if r >= 0.095 else format(r, ".2g")) + "×"


def frontier(points):
    """Pareto frontier of (recall, qps): sorted by recall, each point faster
    than every point of higher recall."""
    pts = sorted(points, key=lambda p: (-p[0], -p[1]))
    out, best = [], -1.0
    for r, q in pts:
        if q > best:
            out.append((r, q))
            best = q
    return sorted(out)


def qps_at(points, recall):
    """QPS of a curve at `recall`: linear in recall, geometric in QPS between
    the frontier points around it; None outside the curve's recall range."""
    f = frontier(points)
    if not f or recall > f[-1][0] + 1e-12 or recall < f[0][0] - 1e-12:
        return None
    for (r0, q0), (r1, q1) in zip(f, f[1:]):
        if r0 <= recall <= r1:
            if r1 == r0:
                return max(q0, q1)
            t = (recall - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    return f[0][1] if abs(recall - f[0][0]) < 1e-12 else f[-1][1]


def best_at(points, min_recall):
    ok = [q for r, q in points if r >= min_recall]
    return max(ok) if ok else None


def curve(result):
    return [(s["recall10"], s["qps"]) for s in result.get("sweep", [])]


def baseline_curve(b):
    return [(s["recall10"], s["qps_loop"]) for s in b.get("sweep", []) if s.get("ef") is not None]


DISTURBED = 0.3


def warn(cell):
    """' ⚠' when other processes used more than DISTURBED cores during it."""
    return " ⚠" if cell and (cell.get("other_cpu") or 0) > DISTURBED else ""


def pf(ok):
    return "—" if ok is None else ("**pass**" if ok else "**FAIL**")


# ------------------------------------------------------------------ SVG
def svg_chart(series, path, title):
    """series: [(label, colour, dashed, [(recall, qps, ef)])]."""
    W, H = 900, 560
    L, R, T, B = 80, 330, 50, 60
    pw, ph = W - L - R, H - T - B
    rs = [p[0] for _, _, _, pts in series for p in pts]
    qs = [p[1] for _, _, _, pts in series for p in pts if p[1] > 0]
    if not rs or not qs:
        return False
    x0 = min(0.95, math.floor(min(rs) * 100) / 100)
    x1 = 1.0
    y0, y1 = nice_below(min(qs)), nice_above(max(qs))

    def X(r):
        return L + (r - x0) / (x1 - x0) * pw

    def Y(q):
        return T + ph - (math.log10(q) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L + pw / 2}" y="24" text-anchor="middle" font-size="15" '
         f'font-weight="bold">{esc(title)}</text>']
    # grid: recall every 0.01 (labels every 0.01 if few, else 0.02)
    steps = round((x1 - x0) / 0.01)
    every = 1 if steps <= 10 else 2
    for i in range(steps + 1):
        r = x0 + i * 0.01
        x = X(r)
        o.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + ph}" stroke="#e5e5e5"/>')
        if i % every == 0:
            o.append(f'<text x="{x:.1f}" y="{T + ph + 18}" text-anchor="middle">{r:.2f}</text>')
    dec = 10 ** math.floor(math.log10(y0))
    while dec <= y1 * 1.0001:
        for m in range(1, 10):
            q = dec * m
            if q > y1 * 1.0001:
                break
            if q < y0 * 0.9999:
                continue
            y = Y(q)
            major = m == 1 or q == y0 or abs(q - y1) < 1e-9
            o.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" '
                     f'stroke="{"#cccccc" if major else "#f0f0f0"}"/>')
            if major or m in (2, 5):
                o.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" '
                         f'fill="{"#000" if major else "#777"}">{human(q)}</text>')
        dec *= 10
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">recall@10</text>')
    o.append(f'<text transform="translate(22 {T + ph / 2}) rotate(-90)" text-anchor="middle">'
             f'queries per second, 1 thread (log scale)</text>')
    o.append(f'<clipPath id="plot"><rect x="{L}" y="{T}" width="{pw}" height="{ph}"/></clipPath>')
    legend = []
    # Drawn last-first so that the first series (Strata) lies on top.
    for i, (label, colour, dashed, pts) in reversed(list(enumerate(series))):
        pts = sorted(pts, key=lambda p: (p[2] if p[2] is not None else 0))
        pts = [p for p in pts if p[1] > 0]
        if not pts:
            continue
        d = " ".join(f"{X(r):.1f},{Y(q):.1f}" for r, q, _ in pts)
        width = 3 if i == 0 else 2
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        o.append(f'<g clip-path="url(#plot)"><polyline points="{d}" fill="none" '
                 f'stroke="{colour}" stroke-width="{width}"{dash}/>')
        for r, q, ef in pts:
            o.append(f'<circle cx="{X(r):.1f}" cy="{Y(q):.1f}" r="{3.5 if i == 0 else 2.5}" '
                     f'fill="{colour}"><title>{esc(label)}: ef={ef} recall {r:.4f}, '
                     f'{q:.0f} QPS</title></circle>')
            if i == 0 and ef is not None:
                right = X(r) > L + pw - 45
                o.append(f'<text x="{X(r) + (-6 if right else 5):.1f}" y="{Y(q) - 5:.1f}" '
                         f'font-size="10" text-anchor="{"end" if right else "start"}" '
                         f'fill="{colour}">ef {ef}</text>')
        o.append("</g>")
        ly = T + 10 + i * 22
        lx = L + pw + 16
        legend.append((i, f'<line x1="{lx}" y1="{ly}" x2="{lx + 28}" y2="{ly}" '
                          f'stroke="{colour}" stroke-width="{width}"{dash}/>'
                          f'<text x="{lx + 34}" y="{ly + 4}">{esc(label)}</text>'))
    o.extend(e for _, e in sorted(legend))
    o.append("</svg>")
    Path(path).write_text("\n".join(o) + "\n")
    return True


def nice_below(x):
    d = 10 ** math.floor(math.log10(x))
    return max(m * d for m in (1, 2, 5) if m * d <= x)


def nice_above(x):
    d = 10 ** math.floor(math.log10(x))
    return min(m * d for m in (1, 2, 5, 10) if m * d >= x)


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def human(q):
    if q >= 1000:
        v = q / 1000
        return f"{v:.0f}k" if v == int(v) else f"{v:g}k"
    return f"{q:g}"


# ------------------------------------------------------------------ report
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strata", required=True)
    ap.add_argument("--peer")
    ap.add_argument("--http")
    ap.add_argument("--baselines")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--command", default="bash bench/vectors.sh")
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--note", action="append", default=[])
    a = ap.parse_args()

    for p in (a.md, a.json, a.svg):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    st = load(a.strata)
    if st is None:
        sys.exit(f"vectors_report: {a.strata} is missing")
    pe = load(a.peer)
    ht = load(a.http)
    bl = load(a.baselines) or {}
    meta = [m.split("=", 1) for m in a.meta if "=" in m]
    summary = {}
    L = []
    w = L.append

    w("# Vector search benchmark: Strata's engine vs hnswlib, and `strata serve` over HTTP\n")
    w(f"Command: `{a.command}` (results of one run; see *How to read* below).\n")
    w("Dataset: pystdlib-minilm-50k (`../shared/bench/`, see its README.md): 50,000 base and "
      "1,000 query all-MiniLM-L6-v2 vectors, 384-d, L2-normalised; exact top-100 ground truth; "
      "recall@10 against the first 10 ids.\n")
    w("## Machine\n")
    for k, v in meta:
        w(f"- {k}: {v}")
    bl_cpu = baselines_cpu(a.baselines)
    this_cpu = dict(meta).get("CPU", "")
    same = True
    if bl_cpu:
        same = bl_cpu.split("(")[0].strip() == this_cpu.split("(SIMD")[0].strip()
        summary["baselines_cpu"] = bl_cpu
        w(f"- BASELINES.md was measured on: {bl_cpu}"
          + ("" if same else " — **another CPU than this run's**, so its rows (marked "
             "BASELINES.md) are context only; the hnswlib columns of this run are the "
             "controlled comparison"))
    w("")

    # ---------------- headline
    sc = curve(st)
    pc = curve(pe) if pe else []
    w("## Summary\n")
    heads = []
    if pe:
        sb, pb = best_at(sc, 0.95), best_at(pc, 0.95)
        r95 = ratio(sb, pb)
        matched = []
        for s in st["sweep"]:
            if s["recall10"] >= 0.95:
                q = qps_at(pc, s["recall10"])
                if q:
                    matched.append((s["ef"], s["recall10"], s["qps"] / q))
        gm = (math.exp(sum(math.log(m[2]) for m in matched) / len(matched))
              if matched else None)
        summary["unfiltered"] = {
            "best_qps_recall_ge_095": {"strata": sb, "hnswlib": pb, "ratio": r95},
            "matched_recall_ratios": [{"ef": e, "recall10": r, "qps_ratio": x}
                                      for e, r, x in matched],
            "matched_recall_ratio_geomean": gm,
        }
        heads.append(
            f"- **Unfiltered, 1 thread, recall@10 ≥ 0.95**: fastest Strata setting "
            f"{fmt(sb)} QPS vs hnswlib {fmt(pb)} QPS → **{fx(r95)}**. At matched recall "
            f"(hnswlib's curve interpolated at each Strata point with recall ≥ 0.95): "
            + (f"geometric mean **{fx(gm)}**, range {fx(min(m[2] for m in matched))}"
               f"–{fx(max(m[2] for m in matched))} over {len(matched)} points."
               if matched else "no Strata point inside hnswlib's recall range."))
        br = ratio(st["build_s"], pe["build_s"])
        bare = st.get("bare") or {}
        bbr = ratio(bare.get("build_s"), pe["build_s"])
        mem_ref = bare.get("rss_delta_per_vector") or st.get("rss_delta_per_vector")
        mr = ratio(mem_ref, pe["rss_delta_per_vector"])
        summary["build_time_ratio"] = br
        summary["build_time_ratio_payload_free"] = bbr
        summary["memory_per_vector_ratio"] = mr
        disturbed = [f"{who} ({o:.2f} cores)" for who, o in (
            ("Strata's", st.get("build_other_cpu")),
            ("Strata's payload-free", bare.get("build_other_cpu")),
            ("hnswlib's", pe.get("build_other_cpu"))) if o is not None and o > DISTURBED]
        bref = (bl.get("hnswlib-M16-efc200") or {}).get("build_s")
        bl_ratio = ratio(st["build_s"], bref)
        summary["build_time_ratio_vs_baselines_hnswlib"] = bl_ratio
        heads.append(
            f"- **Build** ({st['threads_build']} threads, M=16, ef_construction=200): Strata "
            f"{fmt(st['build_s'], '.1f')} s with payloads"
            + (f", {fmt(bare.get('build_s'), '.1f')} s payload-free" if bare else "")
            + f", hnswlib {fmt(pe['build_s'], '.1f')} s → **{fx(br)}**"
            + (f" ({fx(bbr)} payload-free)" if bare else "") + " of hnswlib's time."
            + (f" ⚠ Other processes ran during " + " and ".join(disturbed) + " build, which "
               f"skews this ratio; against BASELINES.md's hnswlib build ({fmt(bref, '.1f')} s, "
               f"a quiet run{'' if same else ' on another CPU'}) Strata's build with payloads "
               f"is {fx(bl_ratio)}."
               if disturbed and bref else ""))
        heads.append(
            f"- **Memory** (process RSS growth across the build, per vector): Strata "
            f"{fmt(mem_ref)} B{' payload-free' if bare else ''} vs hnswlib "
            f"{fmt(pe['rss_delta_per_vector'])} B → **{fx(mr)}**.")
    else:
        heads.append("- hnswlib did not run (no peer JSON); see the tables for Strata alone.")
    if ht:
        hs = http_summary(ht)
        summary["http"] = hs
        passes = [r for r in hs["rows"] if r["pass"] is not None]
        n_ok = sum(1 for r in passes if r["pass"])
        heads.append(f"- **HTTP (`strata serve`) vs the Qdrant 1.19 server reference**: "
                     f"{n_ok} of {len(passes)} targets met: "
                     + "; ".join(f"{r['what']} {r['strata_s']} ({'pass' if r['pass'] else 'FAIL'})"
                                 for r in passes) + ".")
    else:
        heads.append("- The HTTP part did not run (no HTTP JSON).")
    L.extend(heads)
    w("")

    # ---------------- build / memory
    w("## Build and memory\n")
    w("Process RSS (VmRSS) growth across the build, measured with the data already loaded; "
      "Strata's payload-free build runs in a child process so that it starts from a clean "
      "heap. `memory_bytes()` is the engine's own account of what the index holds. A build uses "
      "both cores, so other processes running during it (third column) slow it "
      "directly.\n")
    w("| engine | build (s) | other cores during the build | RSS delta | bytes / vector (RSS) | "
      "memory_bytes() | bytes / vector (memory_bytes) | payload indexes (s) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    w(f"| Strata, with payloads ({esc(st['params'])}) | {fmt(st['build_s'], '.1f')} | "
      f"{fmt(st.get('build_other_cpu'), '.2f')}{warn({'other_cpu': st.get('build_other_cpu')})} | "
      f"{fmt(st['rss_delta_bytes'] / MIB, '.1f')} MiB | {fmt(st['rss_delta_per_vector'])} | "
      f"{fmt(st['memory_bytes'] / MIB, '.1f')} MiB | {fmt(st['memory_bytes_per_vector'])} | "
      f"{fmt(st.get('payload_index_s'), '.2f')} |")
    bare = st.get("bare")
    if bare:
        w(f"| Strata, payload-free | {fmt(bare['build_s'], '.1f')} | "
          f"{fmt(bare.get('build_other_cpu'), '.2f')}"
          f"{warn({'other_cpu': bare.get('build_other_cpu')})} | "
          f"{fmt(bare['rss_delta_bytes'] / MIB, '.1f')} MiB | {fmt(bare['rss_delta_per_vector'])} | "
          f"{fmt(bare['memory_bytes'] / MIB, '.1f')} MiB | {fmt(bare['memory_bytes_per_vector'])} | "
          f"- |")
    if pe:
        w(f"| hnswlib {pe['version']} ({esc(pe['params'])}) | {fmt(pe['build_s'], '.1f')} | "
          f"{fmt(pe.get('build_other_cpu'), '.2f')}{warn({'other_cpu': pe.get('build_other_cpu')})} | "
          f"{fmt(pe['rss_delta_bytes'] / MIB, '.1f')} MiB | {fmt(pe['rss_delta_per_vector'])} | "
          f"(saved index {fmt(pe['index_bytes'] / MIB, '.1f')} MiB) | "
          f"{fmt(pe['index_bytes'] / pe['n'])} (saved index) | - |")
    for key in ["hnswlib-M16-efc200"] + QDRANT_EDGE:
        b = bl.get(key)
        if b:
            w(f"| {key} (BASELINES.md, another run) | {fmt(b['build_s'], '.1f')} | - | "
              f"{fmt(b['rss_delta_mb'], '.1f')} MiB | {fmt(b['rss_delta_mb'] * MIB / 50000)} | "
              f"(index size {fmt(b['index_bytes'] / MIB, '.1f')} MiB) | "
              f"{fmt(b['index_bytes'] / 50000)} (index size) | - |")
    w("")
    w("The raw vectors alone are 384 × 4 = 1,536 bytes per vector.\n")

    # ---------------- unfiltered
    w("## Unfiltered search: recall@10 and QPS (1 thread, one call per query)\n")
    w("Each cell: the first 100 queries once as a warm-up, then timed passes over all 1,000 "
      "queries, the best pass kept. *hnswlib @ Strata's recall* interpolates hnswlib's curve "
      "(its Pareto frontier; linear in recall, geometric in QPS) at Strata's recall; outside "
      "hnswlib's measured recall range it is blank.\n")
    w("| ef | Strata recall | Strata QPS | hnswlib recall | hnswlib QPS | QPS ratio, same ef | "
      "hnswlib QPS @ Strata's recall | **QPS ratio, matched recall** |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    pmap = {s["ef"]: s for s in (pe or {}).get("sweep", [])}
    for s in st["sweep"]:
        p = pmap.get(s["ef"])
        q = qps_at(pc, s["recall10"]) if pc else None
        w(f"| {s['ef']} | {s['recall10']:.4f} | {fmt(s['qps'])}{warn(s)} | "
          f"{fmt(p['recall10'], '.4f') if p else '-'} | {fmt(p['qps']) + warn(p) if p else '-'} | "
          f"{fx(ratio(s['qps'], p['qps'])) if p else '-'} | {fmt(q)} | "
          f"{fx(ratio(s['qps'], q))} |")
    w("")
    w("⚠: other processes (builds, tests) used more than 0.3 cores during the kept pass of "
      "this measurement; the per-pass times and the other processes' CPU are in vectors.json. "
      "The same mark is used in the tables below.\n")
    w("Chart: [vectors_recall_qps.svg](vectors_recall_qps.svg) — Strata and hnswlib from this "
      "run, the other curves from `../shared/bench/baselines_results.json` (BASELINES.md, "
      "another run; its CPU is under Machine).\n")
    w("![recall@10 vs QPS](vectors_recall_qps.svg)\n")

    # ---------------- filtered
    w("## Filtered search: recall@10 / QPS (1 thread, one call per query)\n")
    w("Recall against the exact filtered top-10 (`gt_filter_<name>.ivecs`). Strata: "
      "`search(…, filter: Some(&Filter))` with payload indexes on `module_top`, `len_bucket` "
      "(keyword) and `year` (integer) declared after the build. hnswlib: "
      "`knn_query(filter=callable)` with a Python callable per visited node (its QPS is mostly "
      "that callback). qdrant-edge: from BASELINES.md (another run; its planner answers "
      "these four filters by an exact scan of the matching points, so its QPS does not depend "
      "on ef); it did not run `sel50_year2000_2012` and `len_long`.\n")
    fefs = sorted({f["ef"] for f in st.get("filtered", [])})
    names = list(dict.fromkeys(f["filter"] for f in st.get("filtered", [])))
    summary["filtered"] = []
    for name in names:
        rows = {f["ef"]: f for f in st["filtered"] if f["filter"] == name}
        sel = next(iter(rows.values()))
        w(f"### {name} ({sel['matches']:,} points, {100 * sel['selectivity']:.2f}%)\n")
        w("| engine | " + " | ".join(f"ef={e}" for e in fefs) + " |")
        w("|---|" + "---:|" * len(fefs))
        w("| Strata | " + " | ".join(
            f"{rows[e]['recall10']:.4f} / {fmt(rows[e]['qps'])}{warn(rows[e])}" if e in rows
            else "-"
            for e in fefs) + " |")
        prow = {f["ef"]: f for f in (pe or {}).get("filtered", []) if f["filter"] == name}
        if pe:
            w("| hnswlib (this run) | " + " | ".join(
                f"{prow[e]['recall10']:.4f} / {fmt(prow[e]['qps'])}{warn(prow[e])}" if e in prow
                else "-"
                for e in fefs) + " |")
            w("| *QPS Strata / hnswlib* | " + " | ".join(
                fx(ratio(rows[e]["qps"], prow[e]["qps"])) if e in rows and e in prow else "-"
                for e in fefs) + " |")
        for key in QDRANT_EDGE:
            b = bl.get(key)
            if not b:
                continue
            brow = {f["ef"]: f for f in b.get("filtered", []) if f["filter"] == name}
            if not brow:
                w(f"| {key} (BASELINES.md) | " + " | ".join("not run" for _ in fefs) + " |")
                continue
            w(f"| {key} (BASELINES.md) | " + " | ".join(
                f"{brow[e]['recall10']:.4f} / {fmt(brow[e]['qps_loop'])}" if e in brow else "-"
                for e in fefs) + " |")
            w(f"| *QPS Strata / {key}* | " + " | ".join(
                fx(ratio(rows[e]["qps"], brow[e]["qps_loop"])) if e in rows and e in brow
                else "-" for e in fefs) + " |")
        w("")
        for e in fefs:
            if e in rows:
                summary["filtered"].append({
                    "filter": name, "ef": e, "strata_recall10": rows[e]["recall10"],
                    "strata_qps": rows[e]["qps"],
                    "hnswlib_recall10": prow[e]["recall10"] if e in prow else None,
                    "hnswlib_qps": prow[e]["qps"] if e in prow else None})

    # ---------------- HTTP
    w("## HTTP: `strata serve` vs the Qdrant 1.19 server reference\n")
    if ht:
        w(f"`bench/vectors_http.py` against the release `strata serve` (default configuration on "
          f"a fresh data folder, `STRATA_RATE_LIMIT` raised so the per-key limiter does not cap "
          f"the run). Collection: 384-d cosine, hnsw m=16 ef_construction=100 ef_search=64 "
          f"(Qdrant's defaults). Client: Python http.client, one keep-alive connection per "
          f"thread, request bodies serialised before the clock starts. The Qdrant figures were "
          f"measured elsewhere with the same client method (Qdrant is not installable here) and "
          f"are not re-measured in this run.\n")
        w("| measure | Strata | Qdrant 1.19 server | Strata / Qdrant | target | verdict |")
        w("|---|---:|---:|---:|---|---|")
        for r in hs["rows"]:
            w(f"| {r['what']} | {r['strata_s']} | {r['qdrant_s']} | {r['ratio_s']} | "
              f"{r['target_s']} | {pf(r['pass'])} |")
        w("")
        w("Search phases in detail (latency measured by the client, per request):\n")
        w("| threads | ef | requests | req/s | mean ms | p50 ms | p90 ms | p99 ms | max ms | "
          "recall@10 | errors | server cores | client cores | other cores |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in ht.get("search", []):
            w(f"| {s['threads']} | {s['ef']} | {s['requests']:,} | {fmt(s['qps'])} | "
              f"{fmt(s['mean_ms'], '.2f')} | {fmt(s['p50_ms'], '.2f')} | {fmt(s['p90_ms'], '.2f')} | "
              f"{fmt(s['p99_ms'], '.2f')} | {fmt(s['max_ms'], '.2f')} | "
              f"{fmt(s['recall10'], '.4f')} | {s['errors']} | {fmt(s['server_cpu'], '.2f')} | "
              f"{fmt(s['client_cpu'], '.2f')} | {fmt(s['other_cpu'], '.2f')} |")
        w("")
        up = ht.get("upload", {})
        cs = ht.get("cold_start", {})
        ar = ht.get("after_restart", {})
        w(f"- Upload: {ht['n']:,} points in {ht['n'] // ht['batch']} × `PUT …/points` of "
          f"{ht['batch']} ({fmt(ht.get('upload_body_mib'), '.0f')} MiB of JSON), one connection: "
          f"{fmt(up.get('seconds'), '.2f')} s ({fmt(up.get('points_per_s'))} points/s; median "
          f"batch {fmt(up.get('batch_p50_ms'))} ms, slowest {fmt(up.get('batch_max_ms'))} ms); "
          f"`points/count` then said {up.get('count')}. Cores during the upload: server "
          f"{fmt(up.get('server_cpu'), '.2f')}, client {fmt(up.get('client_cpu'), '.2f')}, "
          f"other {fmt(up.get('other_cpu'), '.2f')}.")
        w(f"- Server RSS: idle {mib_s(ht.get('rss_idle_bytes'))}, after the upload "
          f"{mib_s(ht.get('rss_after_upload_bytes'))}, after the searches "
          f"{mib_s(ht.get('rss_after_search_bytes'))}, after the restart and one search pass "
          f"{mib_s(ht.get('rss_after_restart_bytes'))}.")
        w(f"- Graceful stop (SIGTERM → exit): {fmt(ht.get('shutdown_s'), '.2f')} s. Cold start "
          f"(spawn → first search answered with 10 results, polled every "
          f"{fmt(cs.get('poll_ms'), 'g')} ms): {fmt(cs.get('seconds'), '.3f')} s (first HTTP "
          f"answer of any kind {fmt(cs.get('first_http_answer_s'), '.3f')} s, "
          f"{cs.get('attempts')} attempts). After the restart: count {ar.get('count')}, "
          f"recall@10 at ef 16 {fmt(ar.get('recall10'), '.4f')} (one pass, "
          f"{fmt(ar.get('qps'))} req/s).")
        for n in ht.get("notes", []):
            w(f"- **{n}**")
        w("")
    else:
        w("Not run in this invocation.\n")

    # ---------------- how to read
    w("## How to read these numbers\n")
    w("- **One shared machine.** Engines, the HTTP client and the server share the same "
      "cores, and other processes (builds, tests) may run at the same time: each cell records "
      "the cores other processes used (vectors.json, `other_cpu`), and cells marked ⚠ were "
      "disturbed. Compare ratios measured minutes apart in this run rather than absolute "
      "numbers; BASELINES.md found up to ~25% run-to-run movement on such a VM.")
    w("- **Same parameters.** Both in-process engines: M=16, ef_construction=200, inner product "
      "on the L2-normalised vectors (Strata's `dot` metric; `cosine` ranks identically), 2 "
      "build threads, queries on 1 thread, one call per query, k=10, the same ef values, the "
      "same warm-up and best-of-passes rule (a pass longer than 5 s is not repeated).")
    w("- **hnswlib** holds no payload, so the payload-free Strata build is its memory "
      "counterpart; the build with payloads also holds the 50,000 payload objects.")
    w("- **Matched recall.** Recall@10 saturates early on this dataset (near-duplicates, see "
      "the dataset README), so ratios at the same ef can mislead when the two graphs differ in "
      "quality; the matched-recall column compares the speed at equal result quality.")
    w("- **BASELINES.md** rows come from `../shared/bench/baselines_results.json`, another run "
      "(another time, possibly other neighbours on the machine); they give context, the "
      "hnswlib row of this run is the controlled comparison.")
    for n in a.note:
        w(f"- {n}")
    w("")
    w("Raw numbers: [vectors.json](vectors.json).")

    # ---------------- chart
    series = [("Strata (this run)", "#1f77b4", False,
               [(s["recall10"], s["qps"], s["ef"]) for s in st["sweep"]])]
    if pe:
        series.append(("hnswlib M16 efc200 (this run)", "#d62728", False,
                       [(s["recall10"], s["qps"], s["ef"]) for s in pe["sweep"]]))
    for key, label, colour, dashed in BASELINE_CURVES:
        b = bl.get(key)
        if b:
            series.append((label, colour, dashed,
                           [(s["recall10"], s["qps_loop"], s["ef"]) for s in b["sweep"]
                            if s.get("ef") is not None]))
    svg_chart(series, a.svg, "pystdlib-minilm-50k: recall@10 vs QPS (k=10, 1 thread)")

    Path(a.md).write_text("\n".join(L) + "\n")
    combined = {
        "meta": dict(meta), "command": a.command, "summary": summary,
        "strata": st, "hnswlib": pe, "http": ht,
        "qdrant_server_reference": QDRANT_SERVER, "targets": TARGETS,
        "baselines_used": {k: bl[k] for k in ["hnswlib-M16-efc200",
                                              "faiss-HNSWFlat-M16-efc200",
                                              "faiss-HNSWFlat-M32-efc200",
                                              "usearch-c16-ea200"] + QDRANT_EDGE if k in bl},
    }
    Path(a.json).write_text(json.dumps(combined, indent=2) + "\n")
    return 0


def baselines_cpu(results_path):
    """The CPU line of BASELINES.md next to baselines_results.json, if any."""
    if not results_path:
        return None
    md = Path(results_path).parent / "BASELINES.md"
    try:
        text = md.read_text()
    except OSError:
        return None
    m = re.search(r"CPU: ([^;\n]+)", text)
    return m.group(1).strip() if m else None


def mib_s(b):
    return "-" if b is None else f"{b / MIB:.0f} MiB"


def http_summary(ht):
    q = QDRANT_SERVER
    rows = []
    ph = {(s["threads"], s["ef"]): s for s in ht.get("search", [])}

    def row(what, val, spec, qv, qs, rat, target, ok):
        rows.append({"what": what, "strata": val, "strata_s": fmt(val, spec), "qdrant": qv,
                     "qdrant_s": qs, "ratio": rat, "ratio_s": fx(rat), "target_s": target,
                     "pass": ok})

    s1 = ph.get((1, 16))
    if s1:
        r = ratio(s1["qps"], q["search_1t_ef16_qps"])
        row("search QPS, 1 client, ef=16", s1["qps"], ".0f", q["search_1t_ef16_qps"],
            f"~{q['search_1t_ef16_qps']:.0f}", r, "≥ 1.5× (≥ 1,110)",
            None if r is None else r >= TARGETS["search_qps_ratio"])
        row("recall@10, 1 client, ef=16", s1["recall10"], ".4f", q["search_1t_ef16_recall"],
            f"{q['search_1t_ef16_recall']:.3f}", ratio(s1["recall10"], q["search_1t_ef16_recall"]),
            "(context)", None)
        row("p50 / p99 latency, 1 client, ef=16 (ms)", None, "", None, "-", None, "(context)",
            None)
        rows[-1]["strata_s"] = f"{fmt(s1['p50_ms'], '.2f')} / {fmt(s1['p99_ms'], '.2f')}"
    s8 = ph.get((8, 64))
    if s8:
        r = ratio(s8["qps"], q["search_8t_ef64_qps"])
        row("search QPS, 8 threads, ef=64", s8["qps"], ".0f", q["search_8t_ef64_qps"],
            f"~{q['search_8t_ef64_qps']:,.0f}", r, "≥ 1.5× (≥ 1,725)",
            None if r is None else r >= TARGETS["search_qps_ratio"])
        lo, hi = q["search_8t_ef64_p99_ms"]
        row("p99 latency, 8 threads, ef=64 (ms)", s8["p99_ms"], ".2f", (lo, hi),
            f"{lo:.0f}–{hi:.0f}", ratio(s8["p99_ms"], (lo + hi) / 2), "(context)", None)
        row("recall@10, 8 threads, ef=64", s8["recall10"], ".4f", None, "-", None, "(context)",
            None)
    up = ht.get("upload") or {}
    if up.get("seconds") is not None:
        r = ratio(up["seconds"], q["upload_s"])
        row("upload 50k + index (s)", up["seconds"], ".2f", q["upload_s"], f"{q['upload_s']}",
            r, "≤ 0.8× (≤ 9.76 s)", r <= TARGETS["upload_ratio"])
    cs = (ht.get("cold_start") or {}).get("seconds")
    row("cold start to first search (s)", cs, ".3f", q["cold_start_s"], f"{q['cold_start_s']}",
        ratio(cs, q["cold_start_s"]), "≤ 0.13 s",
        None if cs is None and not ht.get("cold_start") else (cs is not None and
                                                              cs <= TARGETS["cold_start_s"]))
    rss = ht.get("rss_after_search_bytes")
    rmib = None if rss is None else rss / MIB
    row("server RSS after upload + searches (MiB)", rmib, ".0f", q["rss_mib"],
        f"{q['rss_mib']:.0f}", ratio(rmib, q["rss_mib"]), "≤ 365 MiB",
        None if rmib is None else rmib <= TARGETS["rss_mib"])
    return {"rows": rows}


if __name__ == "__main__":
    sys.exit(main())
