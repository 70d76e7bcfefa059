"""Driver of bench/qdrant_ab.sh: an interleaved A/B of two `strata` binaries'
Qdrant listeners under the reference client's own loops.

Both servers are loaded with the reference dataset (50,000 × 384-d) the way
client_bench.py loads it; then, PASSES times in ABBA order, each side runs
the client's loops with `requests` exactly as client_bench.py shapes them:
GET /healthz from 1 and 8 threads (the client's ceiling on this machine: a
server that does nothing), and POST /points/query at ef 64 from 1 and 8
threads. Only one server is driven at a time. Per cell: QPS and the server's
CPU per request (utime + stime of the process from /proc). Reports medians
per side and the B/A ratios."""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ann_peer import read_vecs  # noqa: E402
from qdrant_bench import ADMIN, free_port, spawn, stop, wait_health  # noqa: E402
from vectors_http import cpu_s  # noqa: E402

H = {"Content-Type": "application/json"}


class Side:
    def __init__(self, name, binary, work, base):
        self.name = name
        data = os.path.join(work, name)
        port, self.qport = free_port(), free_port()
        self.log = open(os.path.join(work, f"{name}.log"), "ab")
        self.proc = spawn(binary, data, port, self.qport, self.log)
        wait_health(self.qport, self.proc)
        r = requests.post(f"http://127.0.0.1:{port}/v1/bots", json={"id": "bench", "name": "bench"},
                          headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 201, r.text
        self.url = f"http://127.0.0.1:{self.qport}"
        s = requests.Session()
        r = s.put(f"{self.url}/collections/bench", json={"vectors": {"size": 384, "distance": "Cosine"},
                                                         "hnsw_config": {"m": 16, "ef_construct": 100}})
        assert r.status_code == 200, r.text
        for start in range(0, len(base), 500):
            pts = [{"id": int(i), "vector": base[i].tolist()} for i in range(start, min(start + 500, len(base)))]
            r = s.put(f"{self.url}/collections/bench/points?wait=true", data=json.dumps({"points": pts}), headers=H)
            assert r.status_code == 200, r.text


def loop(side, kind, threads, n, bodies, gt10):
    """client_bench.py's run_single (threads 1) / run_concurrent shape."""
    nxt = [0]
    lock = threading.Lock()
    hits = [0] * n
    url = f"{side.url}/collections/bench/points/query"

    def worker():
        sess = requests.Session()
        sess.get(f"{side.url}/healthz")
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            if kind == "health":
                sess.get(f"{side.url}/healthz")
            else:
                r = sess.post(url, data=bodies[i % len(bodies)], headers=H)
                hits[i] = len(gt10[i % len(bodies)] & set(p["id"] for p in r.json()["result"]["points"]))

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    c0, t0 = cpu_s(side.proc.pid), time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    el, c = time.perf_counter() - t0, cpu_s(side.proc.pid) - c0
    out = {"qps": n / el, "server_cpu_us": c / n * 1e6}
    if kind == "query":
        out["recall@10"] = sum(hits) / (10 * n)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--a-name", default="A")
    ap.add_argument("--b-name", default="B")
    ap.add_argument("--data", required=True)
    ap.add_argument("--passes", type=int, default=4)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--machine", default="")
    a = ap.parse_args()
    base = read_vecs(os.path.join(a.data, "base.fvecs"), np.float32)
    query = read_vecs(os.path.join(a.data, "query.fvecs"), np.float32)
    gt = read_vecs(os.path.join(a.data, "groundtruth.ivecs"), np.int32)
    gt10 = [set(int(x) for x in g[:10]) for g in gt]
    bodies = [json.dumps({"query": q.tolist(), "limit": 10, "params": {"hnsw_ef": 64}}) for q in query]
    work = tempfile.mkdtemp(prefix="strata-qdrant-ab.")
    sides = {}
    try:
        for name, binary in (("a", a.a), ("b", a.b)):
            sides[name] = Side(name, binary, work, base)
        cells = [("health", 1), ("health", 8), ("query", 1), ("query", 8)]
        runs = {s: {f"{k}{t}": [] for k, t in cells} for s in sides}
        for p in range(a.passes):
            order = ("a", "b") if p % 2 == 0 else ("b", "a")
            for kind, threads in cells:
                n = a.queries if kind == "query" else 2 * a.queries
                for s in order:
                    r = loop(sides[s], kind, threads, n, bodies, gt10)
                    runs[s][f"{kind}{threads}"].append(r)
                    print(f"pass {p + 1} {kind}{threads} {s}: {r}", flush=True)
    finally:
        for s in sides.values():
            stop(s.proc)
    med = {s: {c: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for c, rs in runs[s].items()} for s in runs}
    json.dump({"a": a.a_name, "b": a.b_name, "passes": a.passes, "queries": a.queries, "runs": runs, "medians": med},
              open(a.out_json, "w"), indent=1)
    lines = [
        "# Qdrant listener A/B under the reference client's loops",
        "",
        "`bash bench/qdrant_ab.sh`: two `strata` binaries, each loaded with the reference dataset (50,000 × 384-d),",
        "driven in turn (ABBA, " + str(a.passes) + " passes) with client_bench.py's own loops (`requests`, one",
        "session per thread): `GET /healthz` (the client's ceiling: a server that does nothing) and",
        f"`POST /points/query` at ef 64, limit 10, {a.queries} queries per cell; medians per side.",
        "",
        f"- A: {a.a_name}",
        f"- B: {a.b_name}",
        "",
        "| cell | A QPS | B QPS | B/A | A server CPU µs/req | B server CPU µs/req | B/A | B QPS / B health QPS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in runs["a"]:
        ma, mb = med["a"][c], med["b"][c]
        hc = "health" + c[-1]
        lines.append(
            f"| {c} | {ma['qps']:.0f} | {mb['qps']:.0f} | {mb['qps'] / ma['qps']:.3f} | {ma['server_cpu_us']:.0f} | "
            f"{mb['server_cpu_us']:.0f} | {mb['server_cpu_us'] / ma['server_cpu_us']:.3f} | "
            f"{mb['qps'] / med['b'][hc]['qps']:.3f} |")
    rec = [med[s]["query1"].get("recall@10") for s in ("a", "b")]
    lines += ["", f"recall@10 (query1): A {rec[0]:.4f}, B {rec[1]:.4f}", ""]
    if a.machine:
        lines += ["## Machine", "", a.machine, ""]
    open(a.out_md, "w").write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
