"""qdrant-client (newest) against Strata's Qdrant listener: the whole
plain-client flow, with results checked."""
import uuid

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from flowlib import API_KEY, CITIES, DIM, N, PREFIX_URL, URL, check, data, exact_top, recall

vecs, payloads = data()
c = QdrantClient(url=URL, api_key=API_KEY, timeout=60)
name = "plain"

check(not c.collection_exists(name), "collection_exists is false before create")
c.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
check(c.collection_exists(name), "collection_exists after create")
try:
    c.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    check(False, "duplicate create raises")
except UnexpectedResponse as e:
    check(e.status_code == 409 and "already exists" in str(e), f"duplicate create: 409 already exists ({e.status_code})")

# Upsert in both forms: a list of points, then a columnar batch.
half = N // 2
c.upsert(name, points=[models.PointStruct(id=i, vector=vecs[i].tolist(), payload=payloads[i]) for i in range(half)], wait=True)
c.upsert(name, points=models.Batch(ids=list(range(half, N)), vectors=vecs[half:].tolist(), payloads=payloads[half:]), wait=True)
u = uuid.uuid4()
c.upsert(name, points=[models.PointStruct(id=u.hex, vector=(-vecs[0]).tolist(), payload={"kind": "uuid"})], wait=True)
check(c.count(name, exact=True).count == N + 1, "count after both upsert forms")

info = c.get_collection(name)
check(info.points_count == N + 1 and info.config.params.vectors.size == DIM, "get_collection: points and size")
check(name in [x.name for x in c.get_collections().collections], "get_collections lists it")

# Query with and without a filter, with a score threshold, against exact search.
rng_q = data(seed=11)[0][:20]
london = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="London"))])
rec, rec_f = [], []
for q in rng_q:
    got = c.query_points(name, query=q.tolist(), limit=10).points
    rec.append(recall([p.id for p in got], exact_top(vecs, q, 10)))
    got = c.query_points(name, query=q.tolist(), query_filter=london, limit=10, with_payload=True).points
    check(all(p.payload["city"] == "London" for p in got), "filtered query returns only London")
    rec_f.append(recall([p.id for p in got], exact_top(vecs, q, 10, lambda i: payloads[i]["city"] == "London")))
check(sum(rec) / len(rec) >= 0.95, f"recall@10 {sum(rec) / len(rec):.3f} >= 0.95")
check(sum(rec_f) / len(rec_f) >= 0.95, f"filtered recall@10 {sum(rec_f) / len(rec_f):.3f} >= 0.95")
q = rng_q[0]
top = c.query_points(name, query=q.tolist(), limit=10).points
thr = top[4].score - 1e-6
got = c.query_points(name, query=q.tolist(), limit=10, score_threshold=thr).points
check([p.id for p in got] == [p.id for p in top[:5]], "score_threshold keeps the 5 best")

# Retrieve: the UUID comes back hyphenated, missing ids are left out.
got = c.retrieve(name, ids=[3, str(u), 10**9], with_payload=True)
check([p.id for p in got] == [3, str(u)], "retrieve ids, hyphenated UUID, missing left out")
check(got[0].payload == payloads[3], "retrieve payload")

# Scroll through every page.
seen, offset = [], None
while True:
    pts, offset = c.scroll(name, limit=77, offset=offset, with_payload=False)
    seen += [p.id for p in pts]
    if offset is None:
        break
check(seen == list(range(N)) + [str(u)], "scroll visits every point once, in id order")
pts, _ = c.scroll(name, scroll_filter=models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=10, lt=20)), models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))]), limit=100)
check([p.id for p in pts] == [10, 12, 14, 16, 18], "scroll with range and is_empty")

# Count with filters.
check(c.count(name, count_filter=london, exact=True).count == N // 4, "count London")
check(c.count(name, count_filter=models.Filter(must_not=[models.FieldCondition(key="city", match=models.MatchAny(any=["London", "Paris"]))]), exact=True).count == N // 2 + 1, "count must_not any")
check(c.count(name, count_filter=models.Filter(must=[models.HasIdCondition(has_id=[1, 2, 3, str(u)])]), exact=True).count == 4, "count has_id")

# Payload: set merges, overwrite replaces.
c.set_payload(name, payload={"extra": 1}, points=[5, 6], wait=True)
c.overwrite_payload(name, payload={"only": True}, points=[6], wait=True)
got = c.retrieve(name, ids=[5, 6])
check(got[0].payload == {**payloads[5], "extra": 1}, "set_payload merges")
check(got[1].payload == {"only": True}, "overwrite_payload replaces")
c.set_payload(name, payload={"flag": "x"}, points=models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=N - 10))]), wait=True)
check(c.count(name, count_filter=models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value="x"))])).count == 10, "set_payload by filter")

# Payload index.
c.create_payload_index(name, field_name="city", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
info = c.get_collection(name)
check("city" in info.payload_schema, "payload index in payload_schema")
check(c.count(name, count_filter=london).count == N // 4, "count with the index agrees")

# Delete by ids, then by filter.
c.delete(name, points_selector=models.PointIdsList(points=[0, 1, str(u)]), wait=True)
check(c.count(name).count == N - 2, "delete by ids")
moscow = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Moscow"))])
c.delete(name, points_selector=models.FilterSelector(filter=moscow), wait=True)
# Point 6 (Moscow) lost its city to the overwrite above.
left = N - 2 - (N // 4 - 1)
check(c.count(name).count == left and c.count(name, count_filter=moscow).count == 0, "delete by filter")

# The same API under /qdrant of the main listener.
if PREFIX_URL:
    p = QdrantClient(url=PREFIX_URL, api_key=API_KEY, timeout=60)
    check(p.count(name).count == left, "the /qdrant prefix serves the same collection")

check(c.delete_collection(name) is True, "delete_collection")
check(not c.collection_exists(name), "gone after delete")
print("flow_qdrant_client: all checks passed")
