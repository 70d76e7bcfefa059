#!/usr/bin/env python3
"""Vector search through `strata serve` over HTTP, measured the way the
Qdrant-server figures in bench/vectors.sh were (stdlib only).

    python3 bench/vectors_http.py --strata target/release/strata \
        --data DIR --out FILE.json

1. Starts `strata serve` on a free loopback port with a fresh temporary data
   folder and a random `STRATA_ADMIN_KEY` (`STRATA_RATE_LIMIT` raised so that
   the per-key limiter does not cap the run; everything else default).
   Creates a bot and an admin key for it, then a collection
   `{dimension: 384, metric: cosine, hnsw: {m: 16, ef_construction: 100,
   ef_search: 64}}` (Qdrant's defaults).
2. Upload: the 50,000 base vectors with ids 0..n-1 and their payloads
   (`module_top`, `len_bucket`, `year`), `PUT .../points` in batches of
   `--batch` on one keep-alive connection, one request after the other. The
   request bodies are serialised before the clock starts. An upsert returns
   when its points are durable and indexed; `POST .../points/count` must
   then say n. Reported: the wall time from the first request to the count.
3. Search: `POST .../points/search {vector, k: 10, ef, with_payload: false}`,
   each client thread with its own keep-alive connection (http.client),
   looping over the 1,000 queries from its own offset: 1 thread at ef=16,
   8 threads at ef=64 (`--phases`). Each phase has an untimed warm-up, then
   a timed run; reported: requests/s, p50/p90/p99/max latency, recall@10
   against groundtruth.ivecs, and the CPU cores the server, this client and
   the rest of the machine used.
4. The server's RSS (VmRSS of /proc/<pid>/status) after the upload and after
   the searches.
5. Graceful stop (SIGTERM, wait), restart on the same data folder, and the
   time from spawning the process to the first search answered with k
   results (polled every `--poll-ms`); then the count and the recall of one
   pass at ef=16, to show the restarted server serves the same index.
"""

import argparse
import gzip
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
K = 10


def log(msg):
    print(f"vectors_http: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data
def read_vecs(path, fmt):
    """fvecs ('f') / ivecs ('i') as a list of tuples."""
    b = Path(path).read_bytes()
    d = struct.unpack_from("<i", b, 0)[0]
    rec = 4 * (d + 1)
    if d <= 0 or len(b) % rec:
        sys.exit(f"vectors_http: {path} is not a whole number of {d}-d records")
    row = struct.Struct(f"<i{d}{fmt}")
    out = []
    for off in range(0, len(b), rec):
        r = row.unpack_from(b, off)
        if r[0] != d:
            sys.exit(f"vectors_http: {path}: a record has dimension {r[0]}, not {d}")
        out.append(r[1:])
    return out


def vec_json(v):
    # 9 significant digits round-trip a float32 exactly.
    return "[" + ",".join(format(x, ".9g") for x in v) + "]"


# ---------------------------------------------------------------- process
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_s(pid=None):
    try:
        with open(f"/proc/{pid or 'self'}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


class CpuWindow:
    """Cores used by the server, this process and everything else between
    start() and stop()."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.t = time.perf_counter()
        self.m, self.s, self.c = machine_busy_s(), cpu_s(self.pid), cpu_s()
        return self

    def stop(self):
        dt = time.perf_counter() - self.t
        m, s, c = machine_busy_s(), cpu_s(self.pid), cpu_s()
        server = (s - self.s) / dt if s is not None and self.s is not None else None
        client = (c - self.c) / dt
        other = (m - self.m) / dt - (server or 0.0) - client
        return {"server_cpu": server, "client_cpu": client, "other_cpu": max(0.0, other)}


class Server:
    def __init__(self, binary, data_dir, admin_key, log_path):
        self.binary, self.data_dir, self.admin_key = binary, data_dir, admin_key
        self.log_path = log_path
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        env = dict(os.environ)
        env.pop("STRATA_CONFIG", None)
        env.update({
            "STRATA_ADMIN_KEY": self.admin_key,
            "STRATA_DATA_DIR": str(self.data_dir),
            "STRATA_LISTEN": f"127.0.0.1:{self.port}",
            "STRATA_RATE_LIMIT": "100000000",
        })
        logf = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([str(self.binary), "serve"], env=env,
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        return t0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the seconds it took to exit."""
        if not self.alive():
            return None
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"!!! the server did not exit {timeout} s after SIGTERM; killing it")
            self.proc.kill()
            self.proc.wait()
            return None
        return time.perf_counter() - t

    def tail(self, n=40):
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port, key=None, timeout=120):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.key = key

    def request(self, method, path, body=None):
        headers = {"Content-Type": "application/json"}
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
            raise
        return r.status, data

    def ok(self, method, path, body=None, expect=(200, 201)):
        status, data = self.request(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:500]!r}")
        return json.loads(data) if data else None

    def close(self):
        self.conn.close()


def wait_healthy(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            c = Client(port, timeout=2)
            status, _ = c.request("GET", "/health")
            c.close()
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- measurements
def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(-(-q * len(sorted_vals) // 1)) - 1))
    return sorted_vals[i]


def recall_of(results, gt):
    hits = n = 0
    for qi, ids in results:
        hits += len(set(ids[:K]) & set(gt[qi][:K]))
        n += 1
    return hits / (K * n) if n else None


def search_phase(port, key, path, bodies, gt, threads, requests_per_thread, warmup, server_pid):
    """Each thread: its own connection, `warmup` untimed requests, then
    `requests_per_thread` timed ones, cycling through the queries from
    offset i * nq / threads. The timed window starts when every thread has
    warmed up (a barrier) and ends when the last one finishes."""
    nq = len(bodies)
    lat = [[] for _ in range(threads)]
    res = [[] for _ in range(threads)]
    errors = [0] * threads
    samples = []
    barrier = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)

    def worker(i):
        c = Client(port, key)
        off = i * nq // threads
        try:
            for j in range(warmup):
                c.request("POST", path, bodies[(off + j) % nq])
        except Exception as e:  # noqa: BLE001 - reported below
            errors[i] += 1
            samples.append(repr(e))
        barrier.wait()
        for j in range(requests_per_thread):
            qi = (off + warmup + j) % nq
            t = time.perf_counter()
            try:
                status, data = c.request("POST", path, bodies[qi])
            except Exception as e:  # noqa: BLE001
                errors[i] += 1
                if len(samples) < 5:
                    samples.append(repr(e))
                c = Client(port, key)
                continue
            lat[i].append(time.perf_counter() - t)
            if status != 200:
                errors[i] += 1
                if len(samples) < 5:
                    samples.append(f"HTTP {status}: {data[:200]!r}")
                continue
            res[i].append((qi, data))
        done.wait()
        c.close()

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    cpu = CpuWindow(server_pid).start()
    t0 = time.perf_counter()
    done.wait()
    wall = time.perf_counter() - t0
    usage = cpu.stop()
    for t in ts:
        t.join()
    all_lat = sorted(x for l in lat for x in l)
    parsed = []
    for r in res:
        for qi, data in r:
            parsed.append((qi, [int(p["id"]) for p in json.loads(data)["results"]]))
    ok = sum(len(r) for r in res)
    return {
        "threads": threads,
        "requests": ok,
        "errors": sum(errors),
        "error_samples": samples[:5],
        "duration_s": wall,
        "qps": ok / wall if wall > 0 else None,
        "mean_ms": 1000 * sum(all_lat) / len(all_lat) if all_lat else None,
        "p50_ms": 1000 * percentile(all_lat, 0.50) if all_lat else None,
        "p90_ms": 1000 * percentile(all_lat, 0.90) if all_lat else None,
        "p99_ms": 1000 * percentile(all_lat, 0.99) if all_lat else None,
        "max_ms": 1000 * all_lat[-1] if all_lat else None,
        "recall10": recall_of(parsed, gt),
        **usage,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strata", required=True, type=Path, help="the strata binary")
    ap.add_argument("--data", required=True, type=Path, help="the dataset folder")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--batch", type=int, default=500, help="points per upsert request")
    ap.add_argument("--phases", default="1:16,8:64",
                    help="client threads:ef for each search phase")
    ap.add_argument("--requests", type=int, default=8000,
                    help="timed search requests per phase, split over its threads "
                         "(at least 1000 per thread)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed requests per thread")
    ap.add_argument("--poll-ms", type=float, default=2.0, help="cold-start polling interval")
    ap.add_argument("--keep-data", action="store_true", help="keep the data folder and log")
    a = ap.parse_args()

    base = read_vecs(a.data / "base.fvecs", "f")
    query = read_vecs(a.data / "query.fvecs", "f")
    gt = [list(r) for r in read_vecs(a.data / "groundtruth.ivecs", "i")]
    attrs = {}
    with gzip.open(a.data / "base_attrs.jsonl.gz", "rt") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                attrs[r["id"]] = {"module_top": r["module_top"], "len_bucket": r["len_bucket"],
                                  "year": r["year"]}
    n, dim = len(base), len(base[0])
    phases = [tuple(int(x) for x in p.split(":")) for p in a.phases.split(",") if p]

    log(f"serialising {n} points in batches of {a.batch} and {len(query)} queries")
    upload_bodies = []
    for s in range(0, n, a.batch):
        pts = ",".join(
            '{"id":%d,"vector":%s,"payload":%s}' % (i, vec_json(base[i]), json.dumps(attrs[i]))
            for i in range(s, min(n, s + a.batch)))
        upload_bodies.append(('{"points":[' + pts + "]}").encode())
    upload_mib = sum(len(b) for b in upload_bodies) / 2**20
    del base
    qvecs = [vec_json(q) for q in query]

    def search_bodies(ef):
        return [('{"vector":%s,"k":%d,"ef":%d,"with_payload":false}' % (v, K, ef)).encode()
                for v in qvecs]

    work = Path(tempfile.mkdtemp(prefix="strata-vectors-bench."))
    data_dir = work / "data"
    admin_key = "bench-admin-" + secrets.token_hex(16)
    server = Server(a.strata, data_dir, admin_key, work / "server.log")
    out = {"engine": "strata serve", "n": n, "dim": dim, "queries": len(query), "k": K,
           "batch": a.batch, "upload_body_mib": upload_mib,
           "collection": {"dimension": dim, "metric": "cosine",
                          "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 64}},
           "server_env": "defaults; STRATA_RATE_LIMIT=100000000", "notes": []}
    status = 0
    try:
        server.start()
        if not wait_healthy(server.port, server.proc):
            log("!!! the server did not become healthy; its log:\n" + server.tail())
            return 1
        pid = server.proc.pid
        out["rss_idle_bytes"] = rss_bytes(pid)
        admin = Client(server.port, admin_key)
        bot = f"vbench-{int(time.time())}"
        admin.ok("POST", "/v1/bots", {"id": bot, "name": bot})
        key = admin.ok("POST", f"/v1/bots/{bot}/keys", {"name": "bench", "role": "admin"})["key"]
        admin.close()
        c = Client(server.port, key)
        coll = "pystdlib"
        cpath = f"/v1/bots/{bot}/collections/{coll}"
        c.ok("POST", f"/v1/bots/{bot}/collections",
             {"name": coll, **out["collection"]})

        log(f"upload: {len(upload_bodies)} x PUT {a.batch} points ({upload_mib:.0f} MiB of JSON)")
        cpu = CpuWindow(pid).start()
        t0 = time.perf_counter()
        batch_s = []
        for body in upload_bodies:
            tb = time.perf_counter()
            c.ok("PUT", f"{cpath}/points", body)
            batch_s.append(time.perf_counter() - tb)
        count = c.ok("POST", f"{cpath}/points/count", {})["count"]
        upload_s = time.perf_counter() - t0
        usage = cpu.stop()
        batch_s.sort()
        out["upload"] = {"seconds": upload_s, "points_per_s": n / upload_s, "count": count,
                         "batch_p50_ms": 1000 * percentile(batch_s, 0.5),
                         "batch_max_ms": 1000 * batch_s[-1], **usage}
        out["rss_after_upload_bytes"] = rss_bytes(pid)
        log(f"upload: {upload_s:.2f} s ({n / upload_s:.0f} points/s), count {count}, "
            f"server RSS {out['rss_after_upload_bytes'] / 2**20:.0f} MiB")
        if count != n:
            out["notes"].append(f"count after the upload is {count}, not {n}")
            log(f"!!! count after the upload is {count}, not {n}")
            status = 2
        c.close()

        out["search"] = []
        for threads, ef in phases:
            per = max(1000, a.requests // threads)
            r = search_phase(server.port, key, f"{cpath}/points/search", search_bodies(ef), gt,
                             threads, per, a.warmup, pid)
            r["ef"] = ef
            out["search"].append(r)
            log(f"search: {threads} thread(s) ef {ef}: {r['qps']:.0f} req/s, "
                f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, recall@10 "
                f"{r['recall10']:.4f}, errors {r['errors']}; cores: server "
                f"{r['server_cpu']:.2f} client {r['client_cpu']:.2f} other {r['other_cpu']:.2f}")
            if r["errors"]:
                log(f"!!! {r['errors']} failed searches: {r['error_samples']}")
                status = 2
        out["rss_after_search_bytes"] = rss_bytes(pid)
        log(f"server RSS after the searches: {out['rss_after_search_bytes'] / 2**20:.0f} MiB")

        out["shutdown_s"] = server.stop()
        log(f"graceful stop: {out['shutdown_s']:.2f} s" if out["shutdown_s"] is not None
            else "!!! graceful stop failed")
        if out["shutdown_s"] is None:
            status = 2

        # Cold start: spawn, then poll a search until it answers with k results.
        probe = ('{"vector":%s,"k":%d,"with_payload":false}' % (qvecs[0], K)).encode()
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        t0 = server.start()
        pid = server.proc.pid
        first_answer = None
        attempts = refused = 0
        cold = None
        deadline = t0 + 120
        conn = None
        while time.perf_counter() < deadline:
            if server.proc.poll() is not None:
                break
            attempts += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request("POST", f"{cpath}/points/search", body=probe, headers=auth)
                r = conn.getresponse()
                data = r.read()
                now = time.perf_counter() - t0
                if first_answer is None:
                    first_answer = now
                if r.status == 200 and len(json.loads(data)["results"]) == K:
                    cold = now
                    break
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                refused += 1
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(a.poll_ms / 1000)
        if conn is not None:
            conn.close()
        out["cold_start"] = {"seconds": cold, "first_http_answer_s": first_answer,
                             "attempts": attempts, "failed_connects": refused,
                             "poll_ms": a.poll_ms, "rss_bytes": rss_bytes(pid)}
        if cold is None:
            log("!!! the restarted server never answered a search; its log:\n" + server.tail())
            status = 2
        else:
            log(f"cold start: first search answered {cold * 1000:.0f} ms after spawn "
                f"({attempts} attempts)")
            c = Client(server.port, key)
            out["cold_start"]["count"] = c.ok("POST", f"{cpath}/points/count", {})["count"]
            c.close()
            r = search_phase(server.port, key, f"{cpath}/points/search", search_bodies(16), gt,
                             1, len(query), 0, pid)
            out["after_restart"] = {"ef": 16, "recall10": r["recall10"], "qps": r["qps"],
                                    "errors": r["errors"], "count": out["cold_start"]["count"]}
            log(f"after restart: count {out['cold_start']['count']}, recall@10 at ef 16 "
                f"{r['recall10']:.4f}, {r['qps']:.0f} req/s (one cold pass)")
            out["rss_after_restart_bytes"] = rss_bytes(pid)
        server.stop()
    except Exception as e:  # noqa: BLE001 - report, keep the log
        log(f"!!! {e!r}; the server log's tail:\n{server.tail()}")
        status = 1
    finally:
        if server.alive():
            server.stop()
        if a.keep_data or status != 0:
            log(f"data folder and server log kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["status"] = status
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
