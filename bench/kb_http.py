#!/usr/bin/env python3
"""Knowledge-base ingest and search through `strata serve` over HTTP
(stdlib only; the process helpers come from bench/vectors_http.py).

    python3 bench/kb_http.py --strata target/release/strata --model DIR \
        --data DIR --texts 4000 --out FILE.json --chunks-out CHUNKS.jsonl \
        --vectors-out VECTORS.jsonl

1. Corpus: the base texts of base.jsonl.gz with id < --texts (the ids are a
   random permutation of the pool, so this is a random sample of every
   module), grouped by `source` module: one Markdown document per module,
   `# <module>` then its texts in id order, separated by blank lines.
2. Starts `strata serve` on a free loopback port with a fresh temporary data
   folder, `STRATA_EMBEDDER=local:<model>`, a random admin key and
   `STRATA_RATE_LIMIT` raised; creates a bot and an admin key for it.
3. Ingest: `PUT /v1/bots/{bot}/files/{bot}.gbai/{bot}.gbkb/<module>.md`
   (Content-Type text/markdown) for every document on one keep-alive
   connection, one after the other, while polling
   `GET /v1/bots/{bot}/kb/documents` (every --poll-ms, from a second
   connection) until every document is `indexed` (or `failed`). Reported:
   documents, chunks, the wall time from the first upload to the poll that
   saw everything indexed, chunks/s, the cores used, and the embedder's
   share: the growth of `strata_embed_seconds_sum{purpose="index"}` on
   `/metrics` (the time the knowledge-base worker waited for the embedder,
   spawn_blocking hand-off included) over that wall time.
4. The chunk texts Strata made, read from `kb_chunks` in the server's SQLite
   file (read-only), to --chunks-out (one `{"key","chunk","text"}` per line,
   ordered by key and chunk; "text" is what Strata embedded: the chunk's
   context head, a blank line and its text, as `strata_kb::embedding_text`), and the vectors Strata stored for them (from
   the `_kb` collection's rows in the same file) to --vectors-out, so
   the peer embeds exactly the same texts and its vectors can be compared.
5. Search: `POST /v1/bots/{bot}/kb/search {query, mode, k: 10}` with the
   texts of query.jsonl.gz, each client with its own keep-alive connection,
   per phase `mode:clients:first-end` (--phases): hybrid with 1 client on
   queries 0-499 and with 4 clients on 500-979 (queries not seen before:
   the server caches query embeddings), keyword and dense with 1 client on
   0-499 (dense then finds the embeddings cached; the report shows how many
   queries each phase embedded). Each client first sends --warmup untimed
   requests from queries 980-999. Reported: requests/s, p50/p90/p99/max
   latency, mean results per query, cores used.
"""

import argparse
import collections
import gzip
import http.client
import json
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vectors_http import CpuWindow, Server, percentile, rss_bytes, wait_healthy  # noqa: E402

K = 10


def log(msg):
    print(f"kb_http: {msg}", file=sys.stderr, flush=True)


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port, key=None, timeout=300):
        self.port, self.key, self.timeout = port, key, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, body=None, content_type="application/json"):
        headers = {"Content-Type": content_type}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            raise
        return r.status, data

    def ok(self, method, path, body=None, expect=(200, 201, 202), **kw):
        status, data = self.request(method, path, body, **kw)
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:500]!r}")
        return json.loads(data) if data else None

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- corpus
def make_corpus(data, n_texts):
    by_source = collections.defaultdict(list)
    with gzip.open(Path(data) / "base.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["id"] < n_texts:
                by_source[r["source"]].append((r["id"], r["text"]))
    docs = []
    for source in sorted(by_source):
        texts = [t for _, t in sorted(by_source[source])]
        body = f"# {source}\n\n" + "\n\n".join(texts) + "\n"
        docs.append((f"{source}.md", body.encode("utf-8"), len(texts)))
    return docs


def read_queries(data, n):
    out = []
    with gzip.open(Path(data) / "query.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


# ---------------------------------------------------------------- metrics
METRIC_RE = re.compile(r'^(strata_embed_seconds_(?:sum|count))\{([^}]*)\}\s+(\S+)$')


def embed_metric(port):
    """{purpose: {"sum": s, "count": n}} from /metrics."""
    c = Client(port)
    status, data = c.request("GET", "/metrics")
    c.close()
    out = {}
    if status != 200:
        return out
    for line in data.decode(errors="replace").splitlines():
        m = METRIC_RE.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        p = out.setdefault(labels.get("purpose", "?"), {"sum": 0.0, "count": 0.0})
        p["sum" if m.group(1).endswith("_sum") else "count"] += float(m.group(3))
    return out


def metric_delta(after, before, purpose):
    a = after.get(purpose, {"sum": 0.0, "count": 0.0})
    b = before.get(purpose, {"sum": 0.0, "count": 0.0})
    return a["sum"] - b["sum"], int(a["count"] - b["count"])


# ---------------------------------------------------------------- phases
def list_documents(c, bot):
    docs, cursor = [], None
    while True:
        path = f"/v1/bots/{bot}/kb/documents?limit=1000"
        if cursor:
            path += f"&cursor={quote(cursor, safe='')}"
        page = c.ok("GET", path)
        docs.extend(page["documents"])
        cursor = page.get("next_cursor")
        if not cursor:
            return docs


def ingest(port, key, bot, docs, pid, poll_ms, timeout_s):
    prefix = f"{bot}.gbai/{bot}.gbkb/"
    up = Client(port, key)
    poller = Client(port, key)
    before = embed_metric(port)
    state = {"uploaded": 0, "upload_s": None, "error": None}

    def upload():
        try:
            t = time.perf_counter()
            for name, body, _ in docs:
                up.ok("PUT", f"/v1/bots/{bot}/files/{quote(prefix + name)}", body,
                      content_type="text/markdown")
                state["uploaded"] += 1
            state["upload_s"] = time.perf_counter() - t
        except Exception as e:  # noqa: BLE001 - reported below
            state["error"] = repr(e)

    cpu = CpuWindow(pid).start()
    t0 = time.perf_counter()
    th = threading.Thread(target=upload, daemon=True)
    th.start()
    last_log = t0
    polls = 0
    while True:
        time.sleep(poll_ms / 1000)
        listed = list_documents(poller, bot)
        polls += 1
        done = [d for d in listed if d["status"] in ("indexed", "failed")]
        now = time.perf_counter()
        if state["error"]:
            raise RuntimeError(f"upload failed: {state['error']}")
        if state["upload_s"] is not None and len(done) == len(docs) == len(listed):
            break
        if now - last_log > 10:
            chunks = sum(d["chunks"] for d in done)
            log(f"  {now - t0:.0f} s: uploaded {state['uploaded']}/{len(docs)}, "
                f"done {len(done)}, chunks {chunks} ({chunks / (now - t0):.1f}/s)")
            last_log = now
        if now - t0 > timeout_s:
            raise RuntimeError(f"not indexed after {timeout_s} s: {len(done)}/{len(docs)} done")
    wall = time.perf_counter() - t0
    usage = cpu.stop()
    th.join()
    up.close()
    poller.close()
    after = embed_metric(port)
    embed_s, embed_calls = metric_delta(after, before, "index")
    failed = [d for d in listed if d["status"] == "failed"]
    chunks = sum(d["chunks"] for d in listed)
    return {
        "documents": len(docs),
        "texts": sum(n for _, _, n in docs),
        "bytes": sum(len(b) for _, b, _ in docs),
        "chunks": chunks,
        "failed": len(failed),
        "failed_samples": [{k: d.get(k) for k in ("key", "error", "error_code")} for d in failed[:5]],
        "upload_s": state["upload_s"],
        "wall_s": wall,
        "chunks_per_s": chunks / wall,
        "polls": polls,
        "poll_ms": poll_ms,
        "embed_s": embed_s,
        "embed_calls": embed_calls,
        "embed_share": embed_s / wall if wall > 0 else None,
        "metric_found": "index" in after,
        **usage,
    }


def dump_chunks(db_path, bot, out_path):
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        stored = conn.execute(
            "SELECT key, chunk, text, head FROM kb_chunks WHERE bot_id = ? ORDER BY key, chunk",
            (bot,)).fetchall()
    finally:
        conn.close()
    # What Strata embedded for each chunk (strata_kb::embedding_text): its
    # context head, a blank line, its text; the text alone without a head.
    rows = [(key, chunk, f"{head}\n\n{text}" if head else text)
            for key, chunk, text, head in stored]
    with open(out_path, "w", encoding="utf-8") as f:
        for key, chunk, text in rows:
            f.write(json.dumps({"key": key, "chunk": chunk, "text": text}) + "\n")
    lens = sorted(len(t) for _, _, t in rows)
    return {"rows": len(rows), "chars_p50": percentile(lens, 0.5) if lens else None,
            "chars_max": lens[-1] if lens else None,
            "chars_mean": sum(lens) / len(lens) if lens else None}


def dump_vectors(db_path, bot, out_path):
    """The vectors Strata stored for the chunks: the rows of the bot's
    knowledge-base collection (`_kb`, Strata's own, so not readable through
    the vectors API) in the server's SQLite file, read-only. The vector is
    little-endian f32 exactly as the embedder returned it."""
    import struct
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    n = 0
    try:
        rows = conn.execute(
            "SELECT p.vector, p.payload FROM vector_points p "
            "JOIN vector_collections c ON c.id = p.collection_id "
            "WHERE c.bot_id = ? AND c.name = '_kb'",
            (bot,)).fetchall()
        with open(out_path, "w", encoding="utf-8") as f:
            for blob, payload in rows:
                pl = json.loads(payload) if payload else {}
                vector = list(struct.unpack(f"<{len(blob) // 4}f", blob))
                f.write(json.dumps({"key": pl.get("key"), "chunk": pl.get("chunk"),
                                    "vector": vector}) + "\n")
                n += 1
    finally:
        conn.close()
    return n


def search_phase(port, key, bot, queries, warm_queries, mode, threads, warmup, pid):
    """Each client: its own connection, `warmup` untimed requests from
    `warm_queries`, then its share of `queries`, one request each."""
    path = f"/v1/bots/{bot}/kb/search"
    nq = len(queries)
    bodies = [json.dumps({"query": q, "mode": mode, "k": K}).encode() for q in queries]
    warm = [json.dumps({"query": q, "mode": mode, "k": K}).encode() for q in warm_queries]
    lat = [[] for _ in range(threads)]
    hits = [[] for _ in range(threads)]
    errors = [0] * threads
    samples = []
    barrier = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)

    def worker(i):
        c = Client(port, key)
        off = i * nq // threads
        per = nq // threads + (1 if i < nq % threads else 0)
        try:
            for j in range(warmup):
                c.request("POST", path, warm[(i + j) % len(warm)])
        except Exception as e:  # noqa: BLE001 - reported below
            errors[i] += 1
            samples.append(repr(e))
        barrier.wait()
        for j in range(per):
            t = time.perf_counter()
            try:
                status, data = c.request("POST", path, bodies[(off + j) % nq])
            except Exception as e:  # noqa: BLE001
                errors[i] += 1
                if len(samples) < 5:
                    samples.append(repr(e))
                continue
            lat[i].append(time.perf_counter() - t)
            if status != 200:
                errors[i] += 1
                if len(samples) < 5:
                    samples.append(f"HTTP {status}: {data[:200]!r}")
                continue
            hits[i].append(len(json.loads(data)["results"]))
        done.wait()
        c.close()

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    cpu = CpuWindow(pid).start()
    t0 = time.perf_counter()
    done.wait()
    wall = time.perf_counter() - t0
    usage = cpu.stop()
    for t in ts:
        t.join()
    all_lat = sorted(x for l in lat for x in l)
    all_hits = [h for l in hits for h in l]
    ok = len(all_hits)
    ms = (lambda q: 1000 * percentile(all_lat, q)) if all_lat else (lambda q: None)
    return {
        "mode": mode,
        "threads": threads,
        "requests": ok,
        "errors": sum(errors),
        "error_samples": samples[:5],
        "duration_s": wall,
        "qps": ok / wall if wall > 0 else None,
        "mean_ms": 1000 * sum(all_lat) / len(all_lat) if all_lat else None,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": 1000 * all_lat[-1] if all_lat else None,
        "mean_results": sum(all_hits) / ok if ok else None,
        **usage,
    }


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--model", required=True, help="the local embedder's model folder")
    ap.add_argument("--data", required=True, help="the dataset's data/ folder")
    ap.add_argument("--texts", type=int, default=4000,
                    help="use the base texts with id < N (default 4000)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--phases",
                    default="hybrid:1:0-500,hybrid:4:500-980,keyword:1:0-500,dense:1:0-500",
                    help="mode:clients:first-end,... over query.jsonl.gz (default "
                         "hybrid:1:0-500,hybrid:4:500-980,keyword:1:0-500,dense:1:0-500)")
    ap.add_argument("--poll-ms", type=int, default=250)
    ap.add_argument("--timeout", type=int, default=1800, help="ingest timeout, seconds")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chunks-out", required=True)
    ap.add_argument("--vectors-out")
    ap.add_argument("--keep-data", action="store_true")
    a = ap.parse_args()
    phases = []
    for p in a.phases.split(","):
        mode, threads, span = (p.split(":") + ["1", "0-500"])[:3]
        first, end = (int(x) for x in span.split("-"))
        phases.append((mode.strip(), int(threads), first, end))

    docs = make_corpus(a.data, a.texts)
    queries = read_queries(a.data, 1000)
    warm_queries = queries[980:1000]
    log(f"corpus: {len(docs)} documents from the {sum(n for _, _, n in docs)} base texts "
        f"with id < {a.texts} ({sum(len(b) for _, b, _ in docs) / 2**20:.2f} MiB of Markdown); "
        f"{len(queries)} queries")

    work = Path(tempfile.mkdtemp(prefix="strata-kb-bench-"))
    data_dir = work / "data"
    data_dir.mkdir()
    admin_key = secrets.token_hex(24)
    import os
    os.environ["STRATA_EMBEDDER"] = f"local:{a.model}"
    os.environ.setdefault("STRATA_LOG", "info")
    server = Server(a.strata, data_dir, admin_key, work / "server.log")
    out = {"engine": "strata serve", "texts_below_id": a.texts, "k": K,
           "server_env": "defaults; STRATA_EMBEDDER=local:<model>, STRATA_RATE_LIMIT=100000000",
           "notes": []}
    status = 0
    try:
        server.start()
        if not wait_healthy(server.port, server.proc, timeout=120):
            log("!!! the server did not become healthy; its log:\n" + server.tail())
            return 1
        pid = server.proc.pid
        out["rss_idle_bytes"] = rss_bytes(pid)
        admin = Client(server.port, admin_key)
        bot = "kbbench"
        admin.ok("POST", "/v1/bots", {"id": bot, "name": bot})
        key = admin.ok("POST", f"/v1/bots/{bot}/keys", {"name": "bench", "role": "admin"})["key"]
        admin.close()

        log(f"ingest: uploading {len(docs)} documents and waiting until all are indexed")
        r = ingest(server.port, key, bot, docs, pid, a.poll_ms, a.timeout)
        out["ingest"] = r
        out["rss_after_ingest_bytes"] = rss_bytes(pid)
        log(f"ingest: {r['documents']} documents, {r['chunks']} chunks in {r['wall_s']:.1f} s "
            f"= {r['chunks_per_s']:.1f} chunks/s (upload {r['upload_s']:.1f} s); embedder "
            f"{r['embed_s']:.1f} s in {r['embed_calls']} calls = {100 * (r['embed_share'] or 0):.0f} %"
            f" of the wall time; cores: server {r['server_cpu']:.2f} client "
            f"{r['client_cpu']:.2f} other {r['other_cpu']:.2f}")
        if r["failed"]:
            log(f"!!! {r['failed']} documents failed: {r['failed_samples']}")
            status = 2
        if not r["metric_found"]:
            out["notes"].append("strata_embed_seconds was not on /metrics: no embedder share")
            log("!!! strata_embed_seconds is not on /metrics")

        out["chunk_texts"] = dump_chunks(data_dir / "strata.db", bot, a.chunks_out)
        if out["chunk_texts"]["rows"] != r["chunks"]:
            out["notes"].append(f"kb_chunks holds {out['chunk_texts']['rows']} rows, "
                                f"the documents list {r['chunks']} chunks")
            status = 2
        if a.vectors_out:
            out["vectors_dumped"] = dump_vectors(data_dir / "strata.db", bot, a.vectors_out)

        out["search"] = []
        for mode, threads, first, end in phases:
            before = embed_metric(server.port)
            s = search_phase(server.port, key, bot, queries[first:end], warm_queries, mode,
                             threads, a.warmup, pid)
            q_s, q_n = metric_delta(embed_metric(server.port), before, "query")
            s["queries_span"] = [first, end]
            s["query_embeds"] = q_n
            s["query_embed_ms_mean"] = 1000 * q_s / q_n if q_n else None
            out["search"].append(s)
            qe = (f", query embedding {s['query_embed_ms_mean']:.1f} ms"
                  if s["query_embed_ms_mean"] else "")
            log(f"search {mode} x{threads}: {s['qps']:.1f} req/s, p50 {s['p50_ms']:.1f} ms, "
                f"p99 {s['p99_ms']:.1f} ms{qe}, {s['mean_results']:.1f} results, errors "
                f"{s['errors']}; cores: server {s['server_cpu']:.2f} client {s['client_cpu']:.2f}")
            if s["errors"]:
                log(f"!!! {s['errors']} failed searches: {s['error_samples']}")
                status = 2
        out["rss_after_search_bytes"] = rss_bytes(pid)
        out["shutdown_s"] = server.stop()
    except Exception as e:  # noqa: BLE001 - the report says what happened
        log(f"!!! {e!r}; the server log:\n{server.tail()}")
        out["notes"].append(f"failed: {e!r}")
        status = 1 if "ingest" not in out else 2
    finally:
        if server.alive():
            server.stop()
        Path(a.out).write_text(json.dumps(out, indent=1))
        if a.keep_data:
            log(f"kept the data folder and server log in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
