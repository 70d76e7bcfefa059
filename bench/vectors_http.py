#!/usr/bin/env python3
"""Vector search through `strata serve` over HTTP, measured with the client
that measured the Qdrant 1.19 server reference, plus restart times.

    python3 bench/vectors_http.py --strata target/release/strata --data DIR \
        --client-python VENV/bin/python --out FILE.json

1. Starts `strata serve` on a free loopback port with a fresh temporary data
   folder and a random `STRATA_ADMIN_KEY` (`STRATA_RATE_LIMIT` raised so that
   the per-key limiter does not cap the run; everything else default), and
   creates a bot and an admin key for it.
2. Runs bench/qdrant_client_bench.py — the reference's client_bench.py
   (../shared/qdrant/reference/) adapted only in URLs, the auth header and
   field names — with --client-python (numpy + requests): upload of the 50k
   vectors in batches of 500 (bodies json.dumps'd before the clock), then
   single-client searches at ef 16, 64, 128 (and 64 again: the reference's
   legacy-endpoint row) with 100 warm-up queries each, then 8 client threads
   at ef 64 over 2 x 1,000 queries; the server's RSS at the reference's
   points (before, 2 s after the load, after the query runs). The client
   and the server share the machine's cores, as they did for the reference.
3. Clean stop (SIGTERM, wait), then --restart-trials times: spawn on the
   same data folder and time from spawn to the first search answered with
   k results (`POST .../points/search`, ef 64, k 10, polled every
   --poll-ms, as the reference's restart table did); the first restart also
   checks the count and the recall of one pass at ef 16; stop again.
4. Restart after SIGKILL: for each N of --kill-points, --kill-trials times:
   a fresh data folder and server, a collection like the one above, the
   first N base vectors upserted over HTTP (500 per request, every request
   acknowledged), then SIGKILL at once (no clean stop), spawn again on that
   folder and time from spawn to the first search answered with k results;
   then `points/count` must say N (all acknowledged writes survived).
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

    def kill(self):
        """SIGKILL, no clean stop."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

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


def time_to_first_search(server, path, key, probe, poll_ms, timeout_s=120):
    """Spawns the server and polls a search until it answers with K
    results. Returns {seconds, first_http_answer_s, attempts, ...}."""
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    t0 = server.start()
    first_answer = cold = None
    attempts = refused = 0
    deadline = t0 + timeout_s
    conn = None
    while time.perf_counter() < deadline:
        if server.proc.poll() is not None:
            break
        attempts += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("POST", path, body=probe, headers=auth)
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
        time.sleep(poll_ms / 1000)
    if conn is not None:
        conn.close()
    return {"seconds": cold, "first_http_answer_s": first_answer, "attempts": attempts,
            "failed_connects": refused, "poll_ms": poll_ms,
            "rss_bytes": rss_bytes(server.proc.pid) if server.alive() else None}


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def kill_trial(a, n, upload_bodies, probe, work, trial):
    """Fresh server, n points upserted, SIGKILL, restart: the time to the
    first answered search."""
    data_dir = work / f"kill-{n}-{trial}"
    admin_key = "bench-admin-" + secrets.token_hex(16)
    server = Server(a.strata, data_dir, admin_key, work / f"server-kill-{n}-{trial}.log")
    try:
        server.start()
        if not wait_healthy(server.port, server.proc):
            raise RuntimeError("the server did not become healthy:\n" + server.tail())
        admin = Client(server.port, admin_key)
        bot = "vkill"
        admin.ok("POST", "/v1/bots", {"id": bot, "name": bot})
        key = admin.ok("POST", f"/v1/bots/{bot}/keys", {"name": "bench", "role": "admin"})["key"]
        admin.close()
        c = Client(server.port, key)
        cpath = f"/v1/bots/{bot}/collections/bench"
        c.ok("POST", f"/v1/bots/{bot}/collections", {"name": "bench", **COLLECTION})
        t = time.perf_counter()
        acked = 0
        for body in upload_bodies:
            acked += c.ok("PUT", f"{cpath}/points", body)["upserted"]
        last_ack = time.perf_counter()
        c.close()
        server.kill()
        kill_gap_ms = 1000 * (time.perf_counter() - last_ack)
        upload_s = last_ack - t
        r = time_to_first_search(server, f"{cpath}/points/search", key, probe, a.poll_ms)
        if r["seconds"] is not None:
            c = Client(server.port, key)
            r["count"] = c.ok("POST", f"{cpath}/points/count", {})["count"]
            c.close()
        else:
            r["log_tail"] = server.tail()
        server.stop()
        r.update({"points": n, "acknowledged": acked, "upload_s": upload_s,
                  "kill_after_last_ack_ms": kill_gap_ms})
        return r
    finally:
        if server.alive():
            server.stop()
        if not a.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


# Qdrant's defaults, as the reference client creates its collection.
COLLECTION = {"dimension": 384, "metric": "cosine",
              "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 64}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strata", required=True, type=Path, help="the strata binary")
    ap.add_argument("--data", required=True, type=Path, help="the dataset folder")
    ap.add_argument("--client-python", required=True,
                    help="a Python with numpy and requests, for the reference client")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--restart-trials", type=int, default=3,
                    help="restarts after a clean stop")
    ap.add_argument("--kill-points", default="20000,50000",
                    help="points upserted before each SIGKILL")
    ap.add_argument("--kill-trials", type=int, default=3, help="SIGKILL restarts per N")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="restart polling interval")
    ap.add_argument("--skip-reference", action="store_true",
                    help="leave out the reference client's run (and the clean-stop restarts)")
    ap.add_argument("--keep-data", action="store_true", help="keep the data folders and logs")
    a = ap.parse_args()
    kill_points = [int(x) for x in a.kill_points.split(",") if x]

    base = read_vecs(a.data / "base.fvecs", "f")
    query = read_vecs(a.data / "query.fvecs", "f")
    gt = [list(r) for r in read_vecs(a.data / "groundtruth.ivecs", "i")]
    n, dim = len(base), len(base[0])
    if max(kill_points, default=0) > n:
        sys.exit(f"vectors_http: --kill-points above the dataset's {n} points")
    qvecs = [vec_json(q) for q in query]
    probe = ('{"vector":%s,"k":%d,"ef":64,"with_payload":false}' % (qvecs[0], K)).encode()

    work = Path(tempfile.mkdtemp(prefix="strata-vectors-bench."))
    out = {"engine": "strata serve", "n": n, "dim": dim, "queries": len(query), "k": K,
           "collection": COLLECTION, "poll_ms": a.poll_ms,
           "server_env": "defaults; STRATA_RATE_LIMIT=100000000", "notes": []}
    status = 0
    server = None
    try:
        if not a.skip_reference:
            data_dir = work / "data"
            admin_key = "bench-admin-" + secrets.token_hex(16)
            server = Server(a.strata, data_dir, admin_key, work / "server.log")
            server.start()
            if not wait_healthy(server.port, server.proc):
                log("!!! the server did not become healthy; its log:\n" + server.tail())
                return 1
            pid = server.proc.pid
            out["rss_idle_bytes"] = rss_bytes(pid)
            admin = Client(server.port, admin_key)
            bot = f"vbench-{int(time.time())}"
            admin.ok("POST", "/v1/bots", {"id": bot, "name": bot})
            key = admin.ok("POST", f"/v1/bots/{bot}/keys",
                           {"name": "bench", "role": "admin"})["key"]
            admin.close()
            cpath = f"/v1/bots/{bot}/collections/bench"

            ref_out = work / "reference_client.json"
            script = Path(__file__).resolve().parent / "qdrant_client_bench.py"
            base_url = f"http://127.0.0.1:{server.port}/v1/bots/{bot}"
            log(f"reference client: {a.client_python} {script.name} {base_url} {pid}")
            env = dict(os.environ, STRATA_BENCH_KEY=key, STRATA_BENCH_DATA=str(a.data))
            cpu = CpuWindow(pid).start()
            t = time.perf_counter()
            t0 = os.times()
            rc = subprocess.run([a.client_python, str(script), base_url, str(pid), str(ref_out)],
                                env=env, stdout=sys.stderr, stderr=sys.stderr,
                                timeout=3600).returncode
            t1 = os.times()
            wall = time.perf_counter() - t
            out["reference_client_wall_s"] = wall
            usage = cpu.stop()
            # The client is a child process, reaped by now: its CPU is in our
            # children's times, which CpuWindow (this process only) misses.
            child = ((t1.children_user - t0.children_user)
                     + (t1.children_system - t0.children_system)) / wall
            usage["client_cpu"] += child
            usage["other_cpu"] = max(0.0, usage["other_cpu"] - child)
            out["reference_client_cpu"] = usage
            if rc != 0 or not ref_out.exists():
                log(f"!!! the reference client failed ({rc}); the server log's tail:\n"
                    + server.tail())
                return 1
            ref = json.loads(ref_out.read_text())
            out["reference_client"] = ref
            count = ref.get("info_after_index", {}).get("points")
            if count != n:
                out["notes"].append(f"count after the upload is {count}, not {n}")
                status = 2

            out["shutdown_s"] = server.stop()
            log(f"graceful stop: {out['shutdown_s']:.2f} s" if out["shutdown_s"] is not None
                else "!!! graceful stop failed")
            if out["shutdown_s"] is None:
                status = 2

            trials = []
            for i in range(a.restart_trials):
                r = time_to_first_search(server, f"{cpath}/points/search", key, probe, a.poll_ms)
                trials.append(r)
                if r["seconds"] is None:
                    log("!!! the restarted server never answered a search; its log:\n"
                        + server.tail())
                    status = 2
                    server.stop()
                    break
                log(f"restart after a clean stop {i + 1}: first search answered "
                    f"{1000 * r['seconds']:.0f} ms after spawn ({r['attempts']} attempts)")
                if i == 0:
                    c = Client(server.port, key)
                    r["count"] = c.ok("POST", f"{cpath}/points/count", {})["count"]
                    c.close()
                    bodies = [('{"vector":%s,"k":%d,"ef":16,"with_payload":false}'
                               % (v, K)).encode() for v in qvecs]
                    p = search_phase(server.port, key, f"{cpath}/points/search", bodies, gt,
                                     1, len(query), 0, server.proc.pid)
                    out["after_restart"] = {"ef": 16, "recall10": p["recall10"],
                                            "qps": p["qps"], "errors": p["errors"],
                                            "count": r["count"]}
                    out["rss_after_restart_bytes"] = rss_bytes(server.proc.pid)
                    log(f"after restart: count {r['count']}, recall@10 at ef 16 "
                        f"{p['recall10']:.4f}, RSS {out['rss_after_restart_bytes'] / 2**20:.0f} MiB")
                if server.stop() is None:
                    status = 2
            out["cold_start"] = {"trials": trials,
                                 "seconds": median(t["seconds"] for t in trials),
                                 "poll_ms": a.poll_ms}

        out["kill_restart"] = []
        for kn in kill_points:
            log(f"SIGKILL restarts: serialising {kn} points")
            bodies = []
            for s0 in range(0, kn, 500):
                pts = ",".join('{"id":%d,"vector":%s}' % (i, vec_json(base[i]))
                               for i in range(s0, min(kn, s0 + 500)))
                bodies.append(('{"points":[' + pts + "]}").encode())
            trials = []
            for trial in range(a.kill_trials):
                r = kill_trial(a, kn, bodies, probe, work, trial)
                trials.append(r)
                if r["seconds"] is None:
                    log(f"!!! {kn} points, trial {trial + 1}: no search answered after the "
                        f"restart; the log:\n{r.get('log_tail', '')}")
                    status = 2
                    continue
                log(f"SIGKILL after {kn} points (upload {r['upload_s']:.1f} s, killed "
                    f"{r['kill_after_last_ack_ms']:.0f} ms after the last ack), trial "
                    f"{trial + 1}: first search answered {1000 * r['seconds']:.0f} ms after "
                    f"spawn; count {r.get('count')}")
                if r.get("count") != kn:
                    out["notes"].append(f"after SIGKILL with {kn} acknowledged points the "
                                        f"count was {r.get('count')}")
                    status = 2
            out["kill_restart"].append({"points": kn, "trials": trials,
                                        "seconds": median(t["seconds"] for t in trials)})
    except Exception as e:  # noqa: BLE001 - report, keep the log
        log(f"!!! {e!r}" + (f"; the server log's tail:\n{server.tail()}" if server else ""))
        status = 1
    finally:
        if server is not None and server.alive():
            server.stop()
        if a.keep_data or status != 0:
            log(f"data folders and server logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["status"] = status
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
