"""Shared by the Qdrant client flows: the data, an exact search to check
recall against, and a check that fails loudly."""
import os
import sys

import numpy as np

URL = os.environ["QDRANT_URL"]
PREFIX_URL = os.environ.get("QDRANT_PREFIX_URL")
API_KEY = os.environ["QDRANT_API_KEY"]
DIM = 32
N = 1000
CITIES = ["London", "Berlin", "Moscow", "Paris"]


def data(seed=7):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((N, DIM)).astype(np.float32)
    payloads = [{"city": CITIES[i % 4], "n": i, "tags": ["odd"] if i % 2 else []} for i in range(N)]
    return vecs, payloads


def exact_top(vecs, q, k, keep=None):
    """Ids of the exact top k under cosine among rows passing keep."""
    nv = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    s = nv @ (q / np.linalg.norm(q))
    order = np.argsort(-s)
    out = [int(i) for i in order if keep is None or keep(int(i))]
    return out[:k]


def recall(got_ids, want_ids):
    return len(set(got_ids) & set(want_ids)) / max(len(want_ids), 1)


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")
