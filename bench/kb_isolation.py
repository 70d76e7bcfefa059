#!/usr/bin/env python3
"""Keyword-search isolation between tenants, over HTTP (stdlib only; the
process and HTTP helpers come from bench/vectors_http.py and kb_http.py).

    python3 bench/kb_isolation.py --strata target/release/strata --data DIR \
        --md OUT.md --json OUT.json [--label before] [--compare BEFORE.json] \
        [--small-chunks 500] [--ratio 100] [--meta name=value ...]

Does a bot's keyword search slow down, or its scores change, when another
bot on the same server holds many more chunks?

1. Corpus: paragraphs of ../shared/bench/data/base.jsonl.gz (Python
   standard-library docstrings, comments and reference text), packed into
   Markdown documents of about --doc-chunks chunks each (one paragraph per
   blank-line-separated block). The *small* bot gets about --small-chunks
   chunks, the *big* bot --ratio times as many; both draw from the same
   pool (different shuffles; the big bot reuses paragraphs in new
   combinations once the pool is used up), so the bots share a vocabulary.
2. Starts `strata serve` on a free loopback port with a fresh data folder,
   no embedder (`STRATA_EMBEDDER=none`), `STRATA_RATE_LIMIT` raised; creates
   the two bots and an admin key for each. Everything goes through the
   public HTTP API: documents are uploaded with
   `PUT /v1/bots/{bot}/files/{bot}.gbai/{bot}.gbkb/doc-NNNN.md` and the
   script waits (polling `GET /v1/bots/{bot}/kb/documents`) until all are
   indexed. So the same script measures any full-text index behind the API.
3. Queries: the texts of query.jsonl.gz (held-out paragraphs of the same
   sources), each reduced to its first --query-words words (2+ letters or
   digits) that occur in *both* bots' documents; queries left with fewer
   than 2 such words are skipped. Stop words are kept: users type them.
4. Phases, one keep-alive connection, `POST /v1/bots/{bot}/kb/search
   {query, mode: "keyword", k}`: --warmup untimed requests, then --queries
   timed ones, one after the other:
     A. the small bot alone (only its chunks are on the server);
     then the big bot's documents are loaded;
     B. the small bot again, same queries, the big bot's chunks beside it;
     C. the big bot itself, same queries (context: its own latency).
   Reported per phase: p50/p90/p99/max latency as the client saw it,
   requests/s, mean results, the cores the server, this client and other
   processes used. Ratios B/A are the isolation figures.
5. Score isolation: the small bot's results of A and B, query by query —
   how many queries got different scores or a different ranking once the
   big bot's documents were indexed (with per-bot statistics, none should).
"""

import argparse
import gzip
import json
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kb_http import Client, ingest  # noqa: E402
from vectors_http import CpuWindow, Server, percentile, rss_bytes, wait_healthy  # noqa: E402

# Characters per chunk the corpus builder aims at (chunks of 800 with 150
# overlap, packed at paragraph boundaries); the real counts are read back.
CHARS_PER_CHUNK = 610
WORD_RE = re.compile(r"[^\W_]+")


def log(msg):
    print(f"kb_isolation: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- corpus
def read_texts(data, name):
    out = []
    with gzip.open(Path(data) / name, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                out.append(r["text"].strip())
    return [t for t in out if t]


def make_docs(pool, seed, chunks, doc_chunks, title):
    """Documents of ~doc_chunks chunks until ~chunks chunks in all."""
    rng = random.Random(seed)
    order = []
    target_doc = doc_chunks * CHARS_PER_CHUNK
    total_target = chunks * CHARS_PER_CHUNK
    docs, total = [], 0
    while total < total_target:
        n = len(docs)
        parts, size = [f"# {title} document {n}"], 0
        while size < target_doc and total + size < total_target:
            if not order:
                order = list(range(len(pool)))
                rng.shuffle(order)
            t = pool[order.pop()]
            parts.append(t)
            size += len(t) + 2
        body = "\n\n".join(parts) + "\n"
        docs.append((f"doc-{n:04d}.md", body.encode("utf-8"), len(parts) - 1))
        total += size
    return docs


def vocabulary(docs):
    v = set()
    for _, body, _ in docs:
        v.update(WORD_RE.findall(body.decode("utf-8").lower()))
    return v


def make_queries(texts, shared, words):
    out = []
    for t in texts:
        q = [w for w in WORD_RE.findall(t.lower()) if len(w) >= 2 and w in shared][:words]
        if len(q) >= 2:
            out.append(" ".join(q))
    return out


# ---------------------------------------------------------------- phases
def keyword_phase(port, key, bot, queries, warm, k, pid):
    c = Client(port, key)
    path = f"/v1/bots/{bot}/kb/search"
    for q in warm:
        c.ok("POST", path, {"query": q, "mode": "keyword", "k": k})
    bodies = [json.dumps({"query": q, "mode": "keyword", "k": k}).encode() for q in queries]
    lat, results, errors, samples = [], [], 0, []
    cpu = CpuWindow(pid).start()
    t0 = time.perf_counter()
    for b in bodies:
        t = time.perf_counter()
        try:
            status, data = c.request("POST", path, b)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors += 1
            if len(samples) < 5:
                samples.append(repr(e))
            results.append(None)
            continue
        lat.append(time.perf_counter() - t)
        if status != 200:
            errors += 1
            if len(samples) < 5:
                samples.append(f"HTTP {status}: {data[:200]!r}")
            results.append(None)
            continue
        results.append([(r["document"], r["chunk"], r["score"])
                        for r in json.loads(data)["results"]])
    wall = time.perf_counter() - t0
    usage = cpu.stop()
    c.close()
    s = sorted(lat)
    ok = [r for r in results if r is not None]
    return {
        "bot": bot, "requests": len(lat), "errors": errors, "error_samples": samples,
        "duration_s": wall, "qps": len(lat) / wall if wall > 0 else None,
        "mean_ms": 1000 * statistics.fmean(s) if s else None,
        "p50_ms": 1000 * percentile(s, 0.50) if s else None,
        "p90_ms": 1000 * percentile(s, 0.90) if s else None,
        "p99_ms": 1000 * percentile(s, 0.99) if s else None,
        "max_ms": 1000 * s[-1] if s else None,
        "mean_results": sum(len(r) for r in ok) / len(ok) if ok else None,
        "empty_results": sum(1 for r in ok if not r),
        **usage,
    }, results


def compare_results(a, b):
    """Queries whose small-bot results differ between two phases."""
    n = changed_scores = changed_ranking = 0
    worst = 0.0
    for ra, rb in zip(a, b):
        if ra is None or rb is None:
            continue
        n += 1
        if [(d, c) for d, c, _ in ra] != [(d, c) for d, c, _ in rb]:
            changed_ranking += 1
        sa = {(d, c): s for d, c, s in ra}
        sb = {(d, c): s for d, c, s in rb}
        # Relative to the query's best score alone (BM25 scores near 0 would
        # make a per-hit ratio meaningless).
        top = max((abs(s) for s in sa.values()), default=0.0)
        diff = 0.0
        for key in sa.keys() & sb.keys():
            diff = max(diff, abs(sa[key] - sb[key]) / max(1e-9, top))
        if diff > 1e-4 or sa.keys() != sb.keys():
            changed_scores += 1
        worst = max(worst, diff)
    return {"queries": n, "scores_changed": changed_scores,
            "ranking_changed": changed_ranking, "max_relative_score_change": worst}


# ---------------------------------------------------------------- report
def f(x, spec=".1f"):
    return "-" if x is None else format(x, spec)


def ratio(a, b):
    return None if a is None or not b else a / b


def fx(r):
    return "-" if r is None else f"{r:.2f}×"


def write_report(a, out, before):
    L = []
    w = L.append
    ph = out["phases"]
    A, B, C = ph.get("small_alone"), ph.get("small_with_big"), ph.get("big")
    w("# Keyword-search isolation between tenants\n")
    w(f"Command: `{a.command}` — label **{a.label}** (results of one run).\n")
    w("Question: does a small bot's keyword search (`POST /v1/bots/{bot}/kb/search` with "
      "`mode: keyword`) slow down, or do its scores change, when another bot on the same "
      f"server holds {a.ratio} times its chunks? Method: the header of `bench/kb_isolation.py`.\n")
    w("## Machine\n")
    for k, v in a.meta_pairs:
        w(f"- {k}: {v}")
    w("")
    w("## Summary\n")
    if A and B:
        w(f"- Small bot ({out['small']['chunks']:,} chunks), keyword search, 1 client: p50 "
          f"**{f(A['p50_ms'], '.2f')} ms alone → {f(B['p50_ms'], '.2f')} ms** beside the big bot "
          f"({out['big']['chunks']:,} chunks) = **{fx(ratio(B['p50_ms'], A['p50_ms']))}**; p99 "
          f"**{f(A['p99_ms'], '.2f')} → {f(B['p99_ms'], '.2f')} ms = "
          f"{fx(ratio(B['p99_ms'], A['p99_ms']))}**.")
    iso = out.get("score_isolation")
    if iso:
        w(f"- Scores: once the big bot's documents were indexed, the small bot's scores changed "
          f"for **{iso['scores_changed']} of {iso['queries']}** queries and its ranking for "
          f"**{iso['ranking_changed']}** (largest relative score change "
          f"{100 * iso['max_relative_score_change']:.1f} % of the query's best score). With the index and its statistics "
          f"scoped per bot, both would be 0.")
    if C:
        w(f"- The big bot's own keyword search on the same queries: p50 {f(C['p50_ms'], '.2f')} ms, "
          f"p99 {f(C['p99_ms'], '.2f')} ms.")
    w("")
    if before:
        bp = before.get("phases", {})
        bm = dict(before.get("meta", []))
        w(f"## Against the earlier run (label **{before.get('label')}**, commit "
          f"`{str(bm.get('git commit', '?'))[:12]}`, {bm.get('date', '?')})\n")
        w("| phase | earlier p50 / p99 ms | this run p50 / p99 ms | p50 ratio (this ÷ earlier) |")
        w("|---|---:|---:|---:|")
        for name, label in PHASES:
            x, y = bp.get(name), ph.get(name)
            if x and y:
                w(f"| {label} | {f(x['p50_ms'], '.2f')} / {f(x['p99_ms'], '.2f')} | "
                  f"{f(y['p50_ms'], '.2f')} / {f(y['p99_ms'], '.2f')} | "
                  f"{fx(ratio(y['p50_ms'], x['p50_ms']))} |")
        bi = before.get("score_isolation")
        if bi and iso:
            w(f"\nScores changed by the big bot: earlier {bi['scores_changed']} of "
              f"{bi['queries']} queries, this run {iso['scores_changed']} of {iso['queries']}.")
        w("")
    w("## Data\n")
    w(f"Paragraphs of `base.jsonl.gz` packed into Markdown documents of about "
      f"{a.doc_chunks} chunks (~{a.doc_chunks * CHARS_PER_CHUNK // 1000} KB) each, uploaded "
      f"through the files API under `<bot>.gbai/<bot>.gbkb/` and indexed by the server "
      f"(no embedder). Upload and indexing run together; the time is from the first upload "
      f"to the poll that saw every document indexed.\n")
    w("| bot | documents | paragraphs | MiB | chunks | load time (s) | chunks/s | failed |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("small", "big"):
        r = out.get(name)
        if r:
            w(f"| {name} | {r['documents']:,} | {r['texts']:,} | {r['bytes'] / 2**20:.1f} | "
              f"{r['chunks']:,} | {f(r['wall_s'])} | {f(r['chunks_per_s'], '.0f')} | "
              f"{r['failed']} |")
    w("")
    q = out["queries"]
    w(f"Queries: {q['count']} texts of `query.jsonl.gz`, each cut to its first "
      f"{a.query_words} words that occur in both bots' documents (mean {q['mean_words']:.1f} "
      f"words; {q['skipped']} of the texts skipped for having fewer than 2); k = {a.k}; "
      f"{a.warmup} untimed warm-up requests per phase (other queries). Example: "
      f"`{q['examples'][0] if q['examples'] else ''}`.\n")
    w("## Latency per phase (1 client, one keep-alive connection, requests back to back)\n")
    w("| phase | bot | requests | req/s | mean ms | p50 ms | p90 ms | p99 ms | max ms | "
      "mean results | errors | server cores | client cores | other cores |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, label in PHASES:
        p = ph.get(name)
        if p:
            w(f"| {label} | {p['bot']} | {p['requests']:,} | {f(p['qps'], '.0f')} | "
              f"{f(p['mean_ms'], '.2f')} | {f(p['p50_ms'], '.2f')} | {f(p['p90_ms'], '.2f')} | "
              f"{f(p['p99_ms'], '.2f')} | {f(p['max_ms'], '.2f')} | {f(p['mean_results'])} | "
              f"{p['errors']} | {f(p['server_cpu'], '.2f')} | {f(p['client_cpu'], '.2f')} | "
              f"{f(p['other_cpu'], '.2f')}{' ⚠' if (p['other_cpu'] or 0) > 0.3 else ''} |")
    w("")
    w("⚠: other processes used more than 0.3 cores during the phase.\n")
    w(f"Server RSS: after the small bot's load {f((out.get('rss_after_small_bytes') or 0) / 2**20, '.0f')} "
      f"MiB, after the big bot's {f((out.get('rss_after_big_bytes') or 0) / 2**20, '.0f')} MiB.\n")
    for n in out.get("notes", []):
        w(f"- **{n}**")
    w("Raw numbers: [" + Path(a.json).name + "](" + Path(a.json).name + ").")
    Path(a.md).write_text("\n".join(L) + "\n")


PHASES = [("small_alone", "A. small bot alone"),
          ("small_with_big", "B. small bot, big bot loaded"),
          ("big", "C. big bot")]


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", help="the strata binary (needed unless --report-from)")
    ap.add_argument("--data", help="the dataset's data/ folder (needed unless --report-from)")
    ap.add_argument("--small-chunks", type=int, default=500)
    ap.add_argument("--ratio", type=int, default=100, help="big bot's chunks / small bot's")
    ap.add_argument("--doc-chunks", type=int, default=100, help="chunks per document, about")
    ap.add_argument("--queries", type=int, default=300, help="timed requests per phase")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--query-words", type=int, default=8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--poll-ms", type=int, default=1000)
    ap.add_argument("--timeout", type=int, default=3600, help="load timeout per bot, seconds")
    ap.add_argument("--label", default="latest")
    ap.add_argument("--compare", help="an earlier run's JSON to show beside this one")
    ap.add_argument("--md", help="write the report here")
    ap.add_argument("--json", required=True, help="write the raw results here")
    ap.add_argument("--report-from", help="measure nothing: write --md and --json from this "
                    "earlier output, with the --meta lines added")
    ap.add_argument("--command", default="bash bench/kb_isolation.sh")
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--keep-data", action="store_true")
    a = ap.parse_args()
    a.meta_pairs = [m.split("=", 1) for m in a.meta if "=" in m]
    if a.report_from:
        out = json.loads(Path(a.report_from).read_text())
        known = {k for k, _ in out["meta"]}
        out["meta"] += [p for p in a.meta_pairs if p[0] not in known]
        a.meta_pairs = out["meta"]
        for k in ("small_chunks", "ratio", "doc_chunks", "queries", "warmup", "query_words", "k"):
            setattr(a, k, out["params"][k])
        a.label, a.command = out["label"], out["command"]
        return finish(a, out, 0)
    if not (a.strata and a.data):
        ap.error("--strata and --data are needed to measure")

    pool = read_texts(a.data, "base.jsonl.gz")
    small_docs = make_docs(pool, 1, a.small_chunks, a.doc_chunks, "small")
    big_docs = make_docs(pool, 2, a.small_chunks * a.ratio, a.doc_chunks, "big")
    shared = vocabulary(small_docs) & vocabulary(big_docs)
    qtexts = read_texts(a.data, "query.jsonl.gz")
    all_q = make_queries(qtexts, shared, a.query_words)
    if len(all_q) < a.queries + a.warmup:
        sys.exit(f"kb_isolation: only {len(all_q)} usable queries")
    queries, warm = all_q[:a.queries], all_q[a.queries:a.queries + a.warmup]
    log(f"small bot: {len(small_docs)} documents, big bot: {len(big_docs)} documents "
        f"({sum(len(b) for _, b, _ in big_docs) / 2**20:.1f} MiB); {len(queries)} queries, e.g. "
        f"{queries[0]!r}")

    work = Path(tempfile.mkdtemp(prefix="strata-kb-isolation-"))
    data_dir = work / "data"
    data_dir.mkdir()
    admin_key = secrets.token_hex(24)
    os.environ["STRATA_EMBEDDER"] = "none"
    server = Server(a.strata, data_dir, admin_key, work / "server.log")
    out = {"label": a.label, "meta": a.meta_pairs, "command": a.command,
           "server_env": "defaults; STRATA_EMBEDDER=none, STRATA_RATE_LIMIT=100000000",
           "params": {k: getattr(a, k) for k in ("small_chunks", "ratio", "doc_chunks",
                                                 "queries", "warmup", "query_words", "k")},
           "queries": {"count": len(queries), "skipped": len(qtexts) - len(all_q),
                       "mean_words": statistics.fmean(len(q.split()) for q in queries),
                       "examples": queries[:3]},
           "phases": {}, "notes": []}
    status = 0
    try:
        server.start()
        if not wait_healthy(server.port, server.proc, timeout=120):
            log("!!! the server did not become healthy; its log:\n" + server.tail())
            return 1
        pid = server.proc.pid
        admin = Client(server.port, admin_key)
        keys = {}
        for bot in ("small", "big"):
            admin.ok("POST", "/v1/bots", {"id": bot, "name": bot})
            keys[bot] = admin.ok("POST", f"/v1/bots/{bot}/keys",
                                 {"name": "bench", "role": "admin"})["key"]
        admin.close()

        for bot, docs in (("small", small_docs),):
            log(f"loading the {bot} bot: {len(docs)} documents")
            r = ingest(server.port, keys[bot], bot, docs, pid, a.poll_ms, a.timeout)
            out[bot] = r
            log(f"  {r['chunks']} chunks in {r['wall_s']:.1f} s ({r['chunks_per_s']:.0f}/s), "
                f"failed {r['failed']}")
        out["rss_after_small_bytes"] = rss_bytes(pid)

        log("phase A: the small bot alone")
        A, res_a = keyword_phase(server.port, keys["small"], "small", queries, warm, a.k, pid)
        out["phases"]["small_alone"] = A
        log(f"  p50 {A['p50_ms']:.2f} ms, p99 {A['p99_ms']:.2f} ms, {A['mean_results']:.1f} results")

        log(f"loading the big bot: {len(big_docs)} documents")
        r = ingest(server.port, keys["big"], "big", big_docs, pid, a.poll_ms, a.timeout)
        out["big"] = r
        out["rss_after_big_bytes"] = rss_bytes(pid)
        log(f"  {r['chunks']} chunks in {r['wall_s']:.1f} s ({r['chunks_per_s']:.0f}/s), "
            f"failed {r['failed']}")

        log("phase B: the small bot beside the big one")
        B, res_b = keyword_phase(server.port, keys["small"], "small", queries, warm, a.k, pid)
        out["phases"]["small_with_big"] = B
        log(f"  p50 {B['p50_ms']:.2f} ms, p99 {B['p99_ms']:.2f} ms, {B['mean_results']:.1f} results")
        log("phase C: the big bot")
        C, _ = keyword_phase(server.port, keys["big"], "big", queries, warm, a.k, pid)
        out["phases"]["big"] = C
        log(f"  p50 {C['p50_ms']:.2f} ms, p99 {C['p99_ms']:.2f} ms, {C['mean_results']:.1f} results")
        out["score_isolation"] = compare_results(res_a, res_b)
        log(f"score isolation: {out['score_isolation']}")
        for name, p in out["phases"].items():
            if p["errors"]:
                out["notes"].append(f"{p['errors']} failed requests in phase {name}: "
                                    f"{p['error_samples']}")
                status = 2
        for bot in ("small", "big"):
            if out[bot]["failed"]:
                out["notes"].append(f"{out[bot]['failed']} of the {bot} bot's documents failed "
                                    f"to index: {out[bot]['failed_samples']}")
                status = 2
        out["shutdown_s"] = server.stop()
    except Exception as e:  # noqa: BLE001 - the report says what happened
        log(f"!!! {e!r}; the server log:\n{server.tail()}")
        out["notes"].append(f"failed: {e!r}")
        status = 1
    finally:
        if server.alive():
            server.stop()
        if a.keep_data or status:
            log(f"data folder and server log kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return finish(a, out, status)


def finish(a, out, status):
    before = None
    if a.compare and Path(a.compare).exists() and Path(a.compare).resolve() != Path(a.json).resolve():
        before = json.loads(Path(a.compare).read_text())
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    if a.md and status != 1:
        write_report(a, out, before)
    return status


if __name__ == "__main__":
    sys.exit(main())
