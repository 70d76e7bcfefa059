"""Schemathesis hooks for scripts/schemathesis.sh.

They teach schemathesis two things the API document states but JSON Schema
cannot generate from:

- `format: cursor` strings are opaque positions the server issued. Made-up
  ones are rightly `invalid_cursor`, so valid cursors are built the way the
  server builds them: URL-safe base64 (no padding) of a sort key. "0"
  followed by 20 digits is at once a point id's sort key (scroll), a
  sequence number (messages) and a key (every other listing).
- A vector must have its collection's dimension (`dimension_mismatch`
  otherwise) and, under the cosine metric, not be all zeros. The run's
  vector operations target the fixture collection `st-vec` (cosine,
  dimension STRATA_ST_DIMENSION); schema-valid (positive) cases get their
  vectors (and an import's header) fitted to it. Negative cases are sent as
  generated.

It also sends `application/x-ndjson` bodies (a vector import), which the API
document describes as the array of its lines: one JSON value a line.
"""

import base64
import json
import os

import schemathesis
from hypothesis import strategies as st

DIMENSION = int(os.environ.get("STRATA_ST_DIMENSION", "4"))


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


schemathesis.openapi.format(
    "cursor", st.integers(min_value=0, max_value=10**18).map(lambda n: _cursor(f"0{n:020d}"))
)


def _fit(vector):
    if not isinstance(vector, list):
        return vector
    v = [x for x in vector if isinstance(x, (int, float)) and not isinstance(x, bool)]
    v = (v + [0.5] * DIMENSION)[:DIMENSION]
    if all(x == 0 for x in v):
        v[0] = 1.0
    return v


def _fit_body(body):
    if not isinstance(body, dict):
        return
    if "vector" in body:
        body["vector"] = _fit(body["vector"])
    for key in ("points", "searches"):
        items = body.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and "vector" in item:
                    item["vector"] = _fit(item["vector"])


def _fit_import(lines):
    if not isinstance(lines, list) or not lines:
        return
    header = lines[0]
    if isinstance(header, dict) and isinstance(header.get("collection"), dict):
        header["collection"]["dimension"] = DIMENSION
        header["collection"]["metric"] = "cosine"
    for line in lines[1:]:
        if isinstance(line, dict) and "vector" in line:
            line["vector"] = _fit(line["vector"])


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, list):
        return "".join(json.dumps(line) + "\n" for line in value).encode()
    return json.dumps(value).encode()


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and "/collections/{name}/points" in case.operation.path:
        _fit_body(case.body)
    if positive and case.operation.path.endswith("/import"):
        _fit_import(case.body)
    return case
