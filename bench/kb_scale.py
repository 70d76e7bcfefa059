#!/usr/bin/env python3
"""Knowledge-base ingest at scale, through `strata serve` (stdlib only):

    python3 bench/kb_scale.py --strata target/release/strata --book BOOK.md \
        --model DIR --data DIR --docs 10000 --out FILE.json

1. Large document, no embedder: a server with STRATA_EMBEDDER=none takes
   --book (a deterministic Markdown file, `examples/markdown_book.rs`) in
   one `PUT`; the clock runs from the end of the upload to the poll (every
   100 ms) that sees it `indexed`: extraction, chunking and full-text
   indexing. Reported: bytes, chunks, seconds, MB/s, the server's peak RSS
   (VmHWM) and its RSS before the upload, and the progress the document's
   status showed meanwhile (chunks_done/chunks_found samples).
2. Many documents, local embedder: --docs Markdown files, one per base text
   of base.jsonl.gz (ids 0..docs-1, `# <source>` then the text), ingested
   with `strata kb ingest` (upload, then wait) against a server with
   STRATA_EMBEDDER=local:<model>; the CLI's stderr is captured (without a
   terminal it prints a progress line every 2 s). Reported: wall time,
   documents, chunks, chunks/s and the captured progress lines.
"""

import argparse
import gzip
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vectors_http import Server, wait_healthy  # noqa: E402
from kb_http import Client, list_documents  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def start(strata, work, name, embedder):
    os.environ["STRATA_EMBEDDER"] = embedder
    admin = secrets.token_hex(16)
    srv = Server(strata, work / name, admin, work / f"{name}.log")
    srv.start()
    if not wait_healthy(srv.port, srv.proc):
        raise SystemExit(f"!!! strata serve ({name}) did not start; see {work / name}.log")
    c = Client(srv.port, admin)
    c.ok("POST", "/v1/bots", {"id": "scale", "name": "scale"})
    return srv, admin, c


def large_document(strata, work, book):
    srv, admin, c = start(strata, work, "large", "none")
    try:
        body = Path(book).read_bytes()
        rss_before = vm_rss(srv.proc.pid)
        key = "scale.gbai/scale.gbkb/book.md"
        t0 = time.perf_counter()
        c.ok("PUT", f"/v1/bots/scale/files/{key}", body, content_type="text/markdown")
        t_up = time.perf_counter()
        samples = []
        while True:
            docs = list_documents(c, "scale")
            d = docs[0] if docs else {}
            if d.get("status") == "indexing" and d.get("chunks_found") is not None:
                s = f"{d['chunks_done']}/{d['chunks_found']}"
                if not samples or samples[-1][1] != s:
                    samples.append((round(time.perf_counter() - t_up, 2), s))
            if d.get("status") in ("indexed", "failed"):
                break
            if time.perf_counter() - t_up > 1800:
                raise SystemExit("!!! the large document was not indexed in 30 minutes")
            time.sleep(0.1)
        secs = time.perf_counter() - t_up
        return {
            "bytes": len(body),
            "status": d.get("status"),
            "error": d.get("error"),
            "chunks": d.get("chunks"),
            "upload_s": t_up - t0,
            "index_s": secs,
            "mb_per_s": len(body) / 1e6 / secs,
            "peak_rss_bytes": vm_hwm(srv.proc.pid),
            "rss_before_bytes": rss_before,
            "progress_samples": samples[:40],
        }
    finally:
        c.close()
        srv.stop()


def many_documents(strata, work, model, data, n_docs):
    folder = work / "docs"
    folder.mkdir()
    n = 0
    with gzip.open(Path(data) / "base.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["id"] >= n_docs:
                continue
            (folder / f"doc-{r['id']:05d}.md").write_text(f"# {r['source']}\n\n{r['text']}\n")
            n += 1
    srv, admin, c = start(strata, work, "many", f"local:{model}")
    try:
        t0 = time.perf_counter()
        p = subprocess.run(
            [str(strata), "kb", "ingest", "scale", str(folder), "--url",
             f"http://127.0.0.1:{srv.port}", "--key", admin, "--timeout", "7200"],
            capture_output=True, text=True)
        secs = time.perf_counter() - t0
        docs = list_documents(c, "scale")
        chunks = sum(d.get("chunks") or 0 for d in docs)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        return {
            "documents": n,
            "indexed": sum(1 for d in docs if d.get("status") == "indexed"),
            "chunks": chunks,
            "seconds": secs,
            "chunks_per_s": chunks / secs,
            "exit": p.returncode,
            "cli_stdout": p.stdout.strip()[-2000:],
            "cli_progress": lines if len(lines) <= 20 else lines[:10] + ["…"] + lines[-10:],
        }
    finally:
        c.close()
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--book", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory(prefix="strata-kb-scale.") as tmp:
        work = Path(tmp)
        log("==> kb_scale: a large Markdown document, no embedder")
        out["large"] = large_document(Path(a.strata), work, a.book)
        log(json.dumps({k: v for k, v in out["large"].items() if k != "progress_samples"}))
        if a.docs > 0:
            log(f"==> kb_scale: {a.docs} documents with strata kb ingest (local embedder)")
            out["many"] = many_documents(Path(a.strata), work, a.model, a.data, a.docs)
            log(json.dumps({k: v for k, v in out["many"].items() if k != "cli_progress"}))
    Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
