"""The client that measured the real Qdrant 1.19 server
(../shared/qdrant/reference/client_bench.py, figures in http_bench.md there),
pointed at `strata serve`:

    STRATA_BENCH_KEY=<bot admin key> STRATA_BENCH_DATA=<dataset data/> \
        python3 bench/qdrant_client_bench.py http://127.0.0.1:PORT/v1/bots/BOT SERVER_PID OUT.json

(needs numpy and requests; bench/vectors_http.py runs it). Adapted ONLY in
URLs, the auth header and field names, each change marked `ADAPTED`; the
timing, the client (requests.Session), the bodies (json.dumps of Python
floats), r.json() and the recall bookkeeping inside the timed loops are the
reference's, so that a difference in the figures is the server's, not the
client's. Left out: the reference's exact-search run (Strata has no exact
mode). Original docstring:

The client that measured the real Qdrant 1.19 server in http_bench.md, kept
as it ran: python3 client_bench.py QDRANT_URL SERVER_PID OUT.json (needs numpy
and requests). Measure another server's Qdrant-compatible API with this same
script, so that a difference in the figures is the server's, not the client's."""
import json, sys, time, threading, statistics
import numpy as np
import requests

BASE = sys.argv[1]
PID = int(sys.argv[2])
OUTJSON = sys.argv[3]
import os
# ADAPTED (path): the dataset folder from the environment.
D = os.environ.get("STRATA_BENCH_DATA") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench", "data")
D = D.rstrip("/") + "/"
COL = "bench"
# ADAPTED (auth header): every session carries the bot's key.
KEY = os.environ["STRATA_BENCH_KEY"]


def session():
    sess = requests.Session()
    sess.headers["Authorization"] = f"Bearer {KEY}"
    return sess


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    arr = raw.reshape(-1, d + 1)[:, 1:]
    return arr.view(dtype) if dtype == np.float32 else arr


base = read_vecs(D + "base.fvecs", np.float32)
query = read_vecs(D + "query.fvecs", np.float32)
gt = read_vecs(D + "groundtruth.ivecs", np.int32)
print("shapes", base.shape, query.shape, gt.shape, flush=True)
res = {}


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


s = session()  # ADAPTED (auth header)
s.delete(f"{BASE}/collections/{COL}")
res["rss_before_kib"] = rss_kib(PID)
# ADAPTED (URL, field names): Strata creates with POST .../collections {name, ...};
# ef_search is Strata's default ef for searches that name none (all of these do).
r = s.post(f"{BASE}/collections", json={"name": COL, "dimension": 384, "metric": "cosine",
                                         "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 64}})
print("create", r.status_code, r.text, flush=True)

# pre-serialise bodies (serialisation cost measured separately)
t = time.perf_counter()
bodies = []
for start in range(0, len(base), 500):
    pts = [{"id": int(i), "vector": base[i].tolist()} for i in range(start, min(start + 500, len(base)))]
    bodies.append(json.dumps({"points": pts}))
res["client_json_serialise_s"] = time.perf_counter() - t
res["upload_body_mb_total"] = sum(len(b) for b in bodies) / 1e6

t0 = time.perf_counter()
for b in bodies:
    # ADAPTED (URL): no ?wait=true; a Strata upsert returns when its points are durable and indexed.
    r = s.put(f"{BASE}/collections/{COL}/points", data=b, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
t1 = time.perf_counter()
res["upload_s"] = t1 - t0
print("upload", res["upload_s"], flush=True)
# ADAPTED (field names): Strata answers the info object itself, with `points`.
INFO_KEYS = ("points", "indexes")
info = s.get(f"{BASE}/collections/{COL}").json()
res["info_right_after_upload"] = {k: info.get(k) for k in INFO_KEYS}
print(res["info_right_after_upload"], flush=True)
# wait green + indexed
polls = []
while True:
    info = s.get(f"{BASE}/collections/{COL}").json()  # ADAPTED (field names)
    polls.append((round(time.perf_counter() - t1, 2), info["points"]))
    if info["points"] == 50000:
        break
    if time.perf_counter() - t1 > 900:
        print("timeout waiting for index", info, flush=True)
        break
    time.sleep(0.25)
t2 = time.perf_counter()
res["index_wait_after_upload_s"] = t2 - t1
res["upload_plus_index_s"] = t2 - t0
res["info_after_index"] = {k: info.get(k) for k in INFO_KEYS}  # ADAPTED (field names)
res["poll_trace_sample"] = polls[:: max(1, len(polls) // 20)] + [polls[-1]]
print("indexed", res["index_wait_after_upload_s"], res["info_after_index"], flush=True)
time.sleep(2)
res["rss_after_load_kib"] = rss_kib(PID)

qlist = [q.tolist() for q in query]
gt10 = [set(int(x) for x in g[:10]) for g in gt]


def run_single(ef, endpoint="query", n=len(qlist)):
    sess = session()  # ADAPTED (auth header)
    # ADAPTED (URL): Strata's one search endpoint serves both the "query" and the "search" rows.
    url = f"{BASE}/collections/{COL}/points/search"
    hits = 0
    lat = []
    bodies = []
    for q in qlist[:n]:
        # ADAPTED (field names): limit -> k, params.hnsw_ef -> ef; with_payload false is
        # Qdrant's default (Strata's is true).
        bodies.append(json.dumps({"vector": q, "k": 10, "ef": ef, "with_payload": False}))
    # warm-up: first 100 queries once (not counted)
    for b in bodies[:100]:
        sess.post(url, data=b, headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    for i, b in enumerate(bodies):
        a = time.perf_counter()
        r = sess.post(url, data=b, headers={"Content-Type": "application/json"})
        lat.append(time.perf_counter() - a)
        j = r.json()["results"]  # ADAPTED (field names)
        pts = j
        hits += len(gt10[i] & set(p["id"] for p in pts))
    el = time.perf_counter() - t
    lat.sort()
    return {"ef": ef, "endpoint": endpoint, "n": n, "recall@10": hits / (10 * n), "qps": n / el,
            "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
            "mean_ms": statistics.mean(lat) * 1e3}


res["single"] = []
for ef in (16, 64, 128):
    r = run_single(ef)
    print(r, flush=True)
    res["single"].append(r)
r = run_single(64, "search")
print(r, flush=True)
res["single"].append(r)
r = run_single(0, "exact_dummy") if False else None

# ADAPTED: the reference's exact (brute-force) run is left out: Strata has no exact mode.
res["exact_200"] = None


def run_concurrent(ef, threads=8, passes=2):
    url = f"{BASE}/collections/{COL}/points/search"  # ADAPTED (URL)
    # ADAPTED (field names), as in run_single.
    bodies = [json.dumps({"vector": q, "k": 10, "ef": ef, "with_payload": False}) for q in qlist] * passes
    lat = [None] * len(bodies)
    hits = [0] * len(bodies)
    nxt = [0]
    lock = threading.Lock()

    def worker():
        sess = session()  # ADAPTED (auth header)
        sess.post(url, data=bodies[0], headers={"Content-Type": "application/json"})
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(bodies):
                return
            a = time.perf_counter()
            r = sess.post(url, data=bodies[i], headers={"Content-Type": "application/json"})
            lat[i] = time.perf_counter() - a
            hits[i] = len(gt10[i % len(qlist)] & set(p["id"] for p in r.json()["results"]))  # ADAPTED

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    t = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    el = time.perf_counter() - t
    ls = sorted(lat)
    return {"ef": ef, "threads": threads, "n": len(bodies), "recall@10": sum(hits) / (10 * len(bodies)),
            "qps": len(bodies) / el, "p50_ms": ls[len(ls) // 2] * 1e3, "p99_ms": ls[int(len(ls) * 0.99) - 1] * 1e3}


res["concurrent"] = run_concurrent(64)
print(res["concurrent"], flush=True)
res["rss_after_queries_kib"] = rss_kib(PID)
res["collection_info_final"] = s.get(f"{BASE}/collections/{COL}").json()
json.dump(res, open(OUTJSON, "w"), indent=1)
print("done", flush=True)
