#!/usr/bin/env python3
"""How busy the machine was while a benchmark ran (stdlib only, Linux).

    python3 bench/loadmon.py record --root PID --out FILE.json [--interval 5] [--also PID ...]
    python3 bench/loadmon.py summary FILE.json

`record` samples every --interval seconds until SIGTERM/SIGINT, then writes
FILE.json: per sample the load average (/proc/loadavg), the machine's busy
CPU time (/proc/stat) and the CPU time of the benchmark's own processes —
the process tree under --root (the benchmark script; children that exited
and were waited for are counted through their parent's cutime/cstime) plus
any --also process (e.g. the Redis server the benchmark drives). The
difference is the CPU that *other* processes (builds, tests, neighbours)
took while the benchmark ran. It also lists the other processes that used
the most CPU between the first and the last sample.

`summary` prints `name=value` lines for a report's machine section (the
bench scripts pass them on as `--meta`), and a `banner=...` line when the
machine was busy enough that the figures should be read with care.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Mean cores used by other processes above which the run is flagged, and the
# same for the worst single interval.
BUSY_MEAN = 0.15
BUSY_INTERVAL = 0.5


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def processes():
    """{pid: (ppid, comm, own cpu s, own + waited-for children's cpu s)}."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        try:
            comm = s[s.index("(") + 1:s.rindex(")")]
            rest = s[s.rindex(")") + 2:].split()
            ppid = int(rest[1])
            own = (int(rest[11]) + int(rest[12])) / CLK_TCK
            kids = (int(rest[13]) + int(rest[14])) / CLK_TCK
        except (ValueError, IndexError):
            continue
        out[int(name)] = (ppid, comm, own, own + kids)
    return out


def tree(procs, roots):
    children = {}
    for pid, (ppid, *_rest) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, stack = set(), [r for r in roots if r in procs]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(children.get(p, []))
    return seen


def sample(roots):
    procs = processes()
    mine = tree(procs, roots)
    return {
        "t": time.time(),
        "loadavg": loadavg(),
        "busy_s": machine_busy_s(),
        "bench_s": sum(procs[p][3] for p in mine),
        "bench_procs": len(mine),
    }, procs, mine


def record(a):
    roots = [a.root] + list(a.also or [])
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    first, procs0, _ = sample(roots)
    samples = [first]
    reason = "signal"
    while not stop["now"]:
        deadline = time.time() + a.interval
        while not stop["now"] and time.time() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.time())))
        s, procs1, mine1 = sample(roots)
        samples.append(s)
        if not os.path.exists(f"/proc/{a.root}"):
            reason = "the benchmark's process ended"
            break
    print(f"loadmon: {len(samples)} samples over {samples[-1]['t'] - samples[0]['t']:.0f} s, "
          f"stopped by {reason}", file=sys.stderr)
    # Other processes alive at both ends, by CPU used in between.
    span = max(1e-9, samples[-1]["t"] - samples[0]["t"])
    others = []
    for pid, (_ppid, comm, own, _) in procs1.items():
        if pid in mine1 or pid not in procs0 or procs0[pid][1] != comm:
            continue
        used = own - procs0[pid][2]
        if used / span >= 0.01:
            others.append({"pid": pid, "comm": comm, "cores": round(used / span, 3)})
    others.sort(key=lambda o: -o["cores"])
    out = {"interval_s": a.interval, "roots": roots, "samples": samples,
           "top_other_processes": others[:5]}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


def summarize(path):
    with open(path) as f:
        d = json.load(f)
    s = d["samples"]
    lines = []
    la = [x["loadavg"] for x in s if x.get("loadavg")]
    if la:
        during = [x[0] for x in la]
        lines.append("load average at the start (1/5/15 min)="
                     + " ".join(f"{v:.2f}" for v in la[0]))
        lines.append(f"load average during the run (1 min, {len(during)} samples every "
                     f"{d['interval_s']:g} s)=min {min(during):.2f}, median "
                     f"{statistics.median(during):.2f}, max {max(during):.2f} (the benchmark's "
                     f"own processes count in it)")
        lines.append("load average at the end (1/5/15 min)=" + " ".join(f"{v:.2f}" for v in la[-1]))
    per = []
    for a, b in zip(s, s[1:]):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        per.append(max(0.0, ((b["busy_s"] - a["busy_s"]) - (b["bench_s"] - a["bench_s"])) / dt))
    banner = None
    if per:
        span = s[-1]["t"] - s[0]["t"]
        total = max(0.0, (s[-1]["busy_s"] - s[0]["busy_s"]) - (s[-1]["bench_s"] - s[0]["bench_s"]))
        mean = total / span if span > 0 else 0.0
        worst = max(per)
        busy_intervals = sum(1 for x in per if x > BUSY_INTERVAL)
        top = ", ".join(f"{o['comm']} {o['cores']:.2f}" for o in d.get("top_other_processes", []))
        lines.append(f"CPU used by other processes during the run (cores; /proc/stat minus this "
                     f"benchmark's process tree)=mean {mean:.2f} over {span:.0f} s, worst "
                     f"{d['interval_s']:g}-s interval {worst:.2f}, {busy_intervals} of {len(per)} "
                     f"intervals above {BUSY_INTERVAL}"
                     + (f"; top other processes: {top}" if top else ""))
        if mean > BUSY_MEAN or busy_intervals > max(1, len(per) // 10):
            banner = (f"⚠ **Busy machine**: other processes used {mean:.2f} cores on average "
                      f"during this run (worst {d['interval_s']:g}-s interval {worst:.2f}); "
                      f"compare ratios measured in the same run rather than absolute figures, "
                      f"and re-run on a quiet machine before quoting them.")
    for ln in lines:
        print(ln)
    if banner:
        print("banner=" + banner)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--root", type=int, required=True)
    r.add_argument("--also", type=int, action="append")
    r.add_argument("--interval", type=float, default=5.0)
    r.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("file")
    a = ap.parse_args()
    if a.cmd == "record":
        record(a)
    else:
        summarize(a.file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
