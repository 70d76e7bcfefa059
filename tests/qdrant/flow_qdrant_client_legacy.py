"""qdrant-client 1.12 and its legacy `search` (POST /points/search) against
Strata's Qdrant listener."""
from qdrant_client import QdrantClient, models

from flowlib import API_KEY, DIM, N, URL, check, data, exact_top, recall

vecs, payloads = data()
c = QdrantClient(url=URL, api_key=API_KEY, timeout=60)
name = "legacy"
c.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
c.upsert(name, points=[models.PointStruct(id=i, vector=vecs[i].tolist(), payload=payloads[i]) for i in range(N)], wait=True)
berlin = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Berlin"))])
qs = data(seed=11)[0][:20]
rec, rec_f = [], []
for q in qs:
    got = c.search(name, query_vector=q.tolist(), limit=10)
    rec.append(recall([p.id for p in got], exact_top(vecs, q, 10)))
    got = c.search(name, query_vector=q.tolist(), query_filter=berlin, limit=10, with_payload=True)
    check(all(p.payload["city"] == "Berlin" for p in got), "legacy search with filter: only Berlin")
    rec_f.append(recall([p.id for p in got], exact_top(vecs, q, 10, lambda i: payloads[i]["city"] == "Berlin")))
check(sum(rec) / len(rec) >= 0.95, f"legacy search recall@10 {sum(rec) / len(rec):.3f}")
check(sum(rec_f) / len(rec_f) >= 0.95, f"legacy filtered recall@10 {sum(rec_f) / len(rec_f):.3f}")
top = c.search(name, query_vector=qs[0].tolist(), limit=10)
got = c.search(name, query_vector=qs[0].tolist(), limit=10, score_threshold=top[2].score - 1e-6)
check([p.id for p in got] == [p.id for p in top[:3]], "legacy search score_threshold")
got = c.search_batch(name, requests=[models.SearchRequest(vector=qs[0].tolist(), limit=2), models.SearchRequest(vector=vecs[7].tolist(), limit=1)])
check([p.id for p in got[0]] == [p.id for p in top[:2]] and got[1][0].id == 7, "search_batch")
# 1.12 sends "prefetch": [] with every query_points.
got = c.query_points(name, query=qs[0].tolist(), limit=3).points
check([p.id for p in got] == [p.id for p in top[:3]], "query_points from 1.12 (prefetch: [])")
check(c.count(name, count_filter=berlin).count == N // 4, "count")
check(c.delete_collection(name), "delete_collection")
print("flow_qdrant_client_legacy: all checks passed")
