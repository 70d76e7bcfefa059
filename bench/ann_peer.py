#!/usr/bin/env python3
"""The peer of `strata-loadgen ann`: hnswlib on the same dataset, the same
parameters and the same measurements, written as JSON in the same shape —
and, with --strata-loadgen, the driver that interleaves both engines' passes.

    python bench/ann_peer.py --data DIR --out FILE.json
        [--strata-loadgen PATH --strata-out FILE.json [--strata-arg ARG ...]]
        [--m 16] [--ef-construction 200] [--threads 2] [--repeats 5]
        [--ef 10,12,16,24,32,64,128,256] [--filter-ef 16,64,256] [--k 10]
        [--filter-queries N]

Runs in the venv `bench/vectors.sh` makes (numpy + hnswlib from PyPI).

- Build: space='ip' (the vectors are L2-normalised), `add_items` with
  `--threads` threads; wall time and the growth of this process's RSS
  (VmRSS) across it; `index_bytes` is the size of `save_index`'s file.
  With --strata-loadgen, Strata's builds run first (in its own process) and
  this build starts when they are done, so the builds never overlap.
- Unfiltered cells: `set_num_threads(1)` and ONE batch call,
  `knn_query(all queries, k, num_threads=1)`, per pass: hnswlib's C++ loop
  runs every query, so no Python call per query is timed (Strata's pass is
  its Rust loop, one `search` call per query).
- Filtered cells: the Python binding can only filter through a Python
  callable that hnswlib calls per visited node, so these cells time that
  callback (one `knn_query(q, filter=callable)` per query, over the first
  --filter-queries queries, the same ones Strata runs); recall against
  `gt_filter_<name>.ivecs`.
- Every cell: a warm-up (the first --warmup queries, untimed), then
  --repeats timed passes; the median pass gives the QPS. With
  --strata-loadgen, `strata-loadgen ann --interleave` runs in a child
  process and the passes alternate, S P P S S P ..., so that both engines
  are timed under the same machine conditions; Strata writes its own JSON
  (--strata-out).
"""

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

MAX_OTHER_CPU = 0.3
# Passes shorter than this get no other-process CPU figure (/proc/stat counts
# 10 ms ticks).
MIN_CPU_WINDOW_S = 0.1
CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=dtype)
    if raw.size == 0:
        sys.exit(f"ann_peer: {path} is empty")
    d = int(raw[:1].view("<i4")[0])
    if raw.size % (d + 1):
        sys.exit(f"ann_peer: {path} is not a whole number of {d}-d records")
    m = raw.reshape(-1, d + 1)
    if not (m[:, 0].view("<i4") == d).all():
        sys.exit(f"ann_peer: {path} has records of another dimension")
    return np.ascontiguousarray(m[:, 1:])


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def self_cpu_s():
    t = os.times()
    return t.user + t.system


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def passes(conds, a):
    for c in conds:
        v = a[c[0]]
        if c[1] == "eq":
            ok = v == c[2]
        elif c[1] == "range":
            ok = c[2] <= v <= c[3]
        elif c[1] == "in":
            ok = v in c[2]
        else:
            raise ValueError(f"condition {c} is not understood")
        if not ok:
            return False
    return True


def recall(results, gt, k):
    hits = 0
    for r, g in zip(results, gt):
        hits += len(set(int(x) for x in list(r)[:k]) & set(g[:k].tolist()))
    return hits / (k * len(gt))


class Cell:
    """One (ef, filter) cell: its timed passes and its first results."""

    def __init__(self, ef, filt):
        self.ef, self.filter = ef, filt
        self.passes = []        # (seconds, other processes' cores)
        self.results = None

    def median_secs(self):
        return statistics.median(p[0] for p in self.passes)

    def median_other(self):
        o = [p[1] for p in self.passes if p[1] is not None]
        return statistics.median(o) if o else None


def timed(fn):
    """Runs fn() and returns (its result, seconds, other processes' cores)."""
    b0, s0 = machine_busy_s(), self_cpu_s()
    t = time.perf_counter()
    res = fn()
    secs = time.perf_counter() - t
    other = max(0.0, ((machine_busy_s() - b0) - (self_cpu_s() - s0)) / secs)
    return res, secs, (other if secs >= MIN_CPU_WINDOW_S else None)


class StrataProcess:
    """`strata-loadgen ann --interleave` in a child process."""

    def __init__(self, argv):
        print("ann_peer: starting " + " ".join(argv), file=sys.stderr, flush=True)
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.expect("ready")

    def expect(self, what):
        line = self.p.stdout.readline()
        if not line:
            code = self.p.wait()
            sys.exit(f"ann_peer: strata-loadgen exited ({code}) before answering")
        msg = json.loads(line)
        if what not in msg:
            sys.exit(f"ann_peer: strata-loadgen answered {line!r}, expected {what}")
        return msg

    def send(self, cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def run_pass(self, ef, filt, warmup):
        self.send({"cmd": "pass", "ef": ef, "filter": filt, "warmup": warmup})
        return self.expect("secs")

    def done(self):
        self.send({"cmd": "done"})
        self.expect("done")
        self.p.stdin.close()
        if self.p.wait() != 0:
            sys.exit(f"ann_peer: strata-loadgen exited with {self.p.returncode}")


def peer_build_info():
    """How the installed hnswlib was built: the wheel's tag (a
    linux_<arch> tag means pip built it here from the sdist, a manylinux tag
    a binary wheel from PyPI) and the flags recorded by bench/vectors.sh."""
    from importlib.metadata import distribution
    info = {"version": version("hnswlib")}
    try:
        wheel = distribution("hnswlib").read_text("WHEEL") or ""
        tags = [ln.split(":", 1)[1].strip() for ln in wheel.splitlines() if ln.startswith("Tag:")]
        info["wheel_tags"] = tags
        info["built"] = ("from the PyPI sdist, on this machine" if tags and all(
            "manylinux" not in t and "musllinux" not in t for t in tags)
            else "binary wheel from PyPI")
    except (OSError, FileNotFoundError):
        pass
    log = Path(sys.prefix) / "hnswlib-build.txt"
    if log.exists():
        info["build_notes"] = log.read_text().strip()
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef", default="10,12,16,24,32,64,128,256")
    ap.add_argument("--filter-ef", default="16,64,256")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--filter-queries", type=int,
                    help="queries of each filtered pass (the first N; default all)")
    ap.add_argument("--no-filters", action="store_true")
    ap.add_argument("--strata-loadgen", help="interleave with this strata-loadgen's passes")
    ap.add_argument("--strata-out", type=Path, help="where strata-loadgen writes its JSON")
    ap.add_argument("--strata-arg", action="append", default=[],
                    help="an extra argument for strata-loadgen ann (repeatable)")
    a = ap.parse_args()
    efs = [int(x) for x in a.ef.split(",") if x]
    fefs = [int(x) for x in a.filter_ef.split(",") if x]
    k = a.k
    if a.repeats < 1:
        sys.exit("ann_peer: --repeats must be at least 1")
    if a.strata_loadgen and not a.strata_out:
        sys.exit("ann_peer: --strata-loadgen needs --strata-out")

    import hnswlib

    wall = time.perf_counter()
    d = a.data
    base = read_vecs(d / "base.fvecs", "<f4")
    query = read_vecs(d / "query.fvecs", "<f4")
    gt = read_vecs(d / "groundtruth.ivecs", "<i4")
    nfq = min(len(query), a.filter_queries or len(query))
    attrs = [None] * len(base)
    with gzip.open(d / "base_attrs.jsonl.gz", "rt") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                attrs[r["id"]] = r
    if any(x is None for x in attrs):
        sys.exit("ann_peer: base_attrs.jsonl.gz misses ids")
    filters = {} if a.no_filters else json.loads((d / "filters.json").read_text())
    n, dim = base.shape

    strata = None
    if a.strata_loadgen:
        argv = [a.strata_loadgen, "ann", "--data", str(d), "--m", str(a.m),
                "--ef-construction", str(a.ef_construction), "--threads", str(a.threads),
                "--ef", a.ef, "--filter-ef", a.filter_ef, "--k", str(k),
                "--warmup", str(a.warmup), "--repeats", str(a.repeats),
                "--filter-queries", str(nfq), "--interleave", "--out", str(a.strata_out)]
        if a.no_filters:
            argv.append("--no-filters")
        strata = StrataProcess(argv + a.strata_arg)

    print(f"ann_peer: hnswlib {version('hnswlib')}: {n} base x {dim} dims, {len(query)} queries, "
          f"{len(filters)} filters; M={a.m} ef_construction={a.ef_construction} "
          f"threads={a.threads}", file=sys.stderr)
    r0 = rss_bytes()
    b0, s0 = machine_busy_s(), self_cpu_s()
    t = time.perf_counter()
    idx = hnswlib.Index(space="ip", dim=dim)
    idx.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construction, random_seed=100)
    idx.add_items(base, np.arange(n), num_threads=a.threads)
    build_s = time.perf_counter() - t
    build_cpu = (self_cpu_s() - s0) / build_s
    build_other = max(0.0, (machine_busy_s() - b0) / build_s - build_cpu)
    r1 = rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        fn = Path(tmp) / "hnswlib.bin"
        idx.save_index(str(fn))
        index_bytes = fn.stat().st_size
    idx.set_num_threads(1)
    delta = r1 - r0
    print(f"ann_peer:   build {build_s:.1f} s"
          + (f" (other processes used {build_other:.2f} cores)" if build_other > MAX_OTHER_CPU
             else "") + f", RSS +{delta / 2**20:.1f} MiB "
          f"({delta / n:.0f} B/vector), saved index {index_bytes / 2**20:.1f} MiB",
          file=sys.stderr)

    # The peer's side of each cell: (warm-up, one timed pass) functions.
    allowed = {}
    for name, spec in filters.items():
        allowed[name] = [passes(spec["conditions"], x) for x in attrs]
    fails = {}

    def peer_fns(ef, name):
        if name is None:
            def warm():
                idx.set_ef(ef)
                idx.knn_query(query[:a.warmup], k=k, num_threads=1)

            def one():
                idx.set_ef(ef)
                return list(idx.knn_query(query, k=k, num_threads=1)[0])
            return warm, one
        cb = allowed[name].__getitem__     # a Python callable, called per visited node

        def fsearch(q):
            try:
                return idx.knn_query(q, k=k, num_threads=1, filter=cb)[0][0]
            except RuntimeError:           # fewer than k results found
                fails[(name, ef)] = fails.get((name, ef), 0) + 1
                return []

        def warm():
            idx.set_ef(ef)
            for q in query[:min(a.warmup, nfq)]:
                fsearch(q)

        def one():
            idx.set_ef(ef)
            return [fsearch(q) for q in query[:nfq]]
        return warm, one

    plan = [(ef, None) for ef in efs] + [(ef, name) for name in filters for ef in fefs]
    cells = []
    for ef, name in plan:
        cell = Cell(ef, name)
        warm, one = peer_fns(ef, name)
        s_passes = []
        for i in range(a.repeats):
            order = ("peer", "strata") if i % 2 else ("strata", "peer")
            for who in order:
                if who == "strata":
                    if strata:
                        s_passes.append(strata.run_pass(ef, name, i == 0))
                    continue
                if i == 0:
                    warm()
                fails.pop((name, ef), None)
                res, secs, other = timed(one)
                cell.passes.append((secs, other))
                if cell.results is None:
                    cell.results = res
                    cell.failed = fails.get((name, ef), 0)
        nq = len(query) if name is None else nfq
        qps = nq / cell.median_secs()
        truth = gt if name is None else read_vecs(d / f"gt_filter_{name}.ivecs", "<i4")[:nq]
        rec = recall(cell.results, truth, k)
        s_qps = (nq / statistics.median(p["secs"] for p in s_passes)) if s_passes else None
        other = cell.median_other()
        print(f"ann_peer:   {name or 'unfiltered':<26} ef {ef:>4}: recall@{k} {rec:.4f}  "
              f"{qps:>9.0f} QPS (median of {len(cell.passes)})"
              + (f"  | Strata {s_qps:>9.0f} QPS" if s_qps else "")
              + (f"  (other processes used {other:.2f} cores)"
                 if other is not None and other > MAX_OTHER_CPU else ""), file=sys.stderr)
        row = {"ef": ef, "recall10": rec, "qps": qps, "queries": nq,
               "passes_s": [p[0] for p in cell.passes], "other_cpu": other,
               "other_cpu_max": max((p[1] for p in cell.passes if p[1] is not None),
                                    default=None),
               "other_cpu_passes": [p[1] for p in cell.passes]}
        if name is not None:
            matches = sum(allowed[name])
            row.update({"filter": name, "matches": matches, "selectivity": matches / n,
                        "failed_queries": cell.failed,
                        "method": "knn_query(q, filter=python callable), one call per query"})
        else:
            row["method"] = "knn_query(all queries, num_threads=1), one call per pass"
        cells.append(row)
    if strata:
        strata.done()

    out = {
        "engine": "hnswlib",
        "version": version("hnswlib"),
        "build_info": peer_build_info(),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "params": f"space=ip M={a.m} ef_construction={a.ef_construction} random_seed=100",
        "n": n, "dim": dim, "queries": len(query), "k": k,
        "threads_build": a.threads, "warmup_queries": a.warmup, "repeats": a.repeats,
        "filter_queries": nfq, "interleaved_with_strata": bool(strata),
        "timing": "median of the timed passes",
        "build_s": build_s, "build_cpu": build_cpu, "build_other_cpu": build_other,
        "rss_before_bytes": r0, "rss_after_bytes": r1,
        "rss_delta_bytes": delta, "rss_delta_per_vector": delta / n,
        "index_bytes": index_bytes,
        "memory_bytes": None,
        "sweep": [c for c in cells if "filter" not in c],
        "filtered": [c for c in cells if "filter" in c],
        "notes": ["unfiltered passes are one knn_query call over all queries on one thread "
                  "(no Python call per query)",
                  "hnswlib holds no payload; its filter is a Python callable "
                  "(list.__getitem__) called from C++ per visited node, whose cost is in the "
                  "filtered QPS"],
        "wall_s": time.perf_counter() - wall,
    }
    text = json.dumps(out, indent=2) + "\n"
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
