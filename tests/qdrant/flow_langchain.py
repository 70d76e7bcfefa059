"""LangChain's QdrantVectorStore against Strata's Qdrant listener, with a
deterministic fake embedding."""
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore
from qdrant_client import QdrantClient, models
import numpy as np

from flowlib import API_KEY, URL, check, exact_top, recall

emb = DeterministicFakeEmbedding(size=64)
texts = [f"document number {i} about topic {i % 5}" for i in range(100)]
metas = [{"source": f"s{i % 3}", "i": i} for i in range(100)]
ids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(100)]
store = QdrantVectorStore.from_texts(texts, emb, metadatas=metas, ids=ids, url=URL, api_key=API_KEY, collection_name="lc")
client = QdrantClient(url=URL, api_key=API_KEY)
check(client.count("lc").count == 100, "from_texts wrote 100 points (64 + 36)")

vecs = np.array(emb.embed_documents(texts), dtype=np.float32)
query = "document number 42 about topic 2"
qv = np.array(emb.embed_query(query), dtype=np.float32)
got = store.similarity_search_with_score(query, k=10)
want = exact_top(vecs, qv, 10)
check(recall([int(d.metadata["i"]) for d, _ in got], want) >= 0.9, "similarity_search_with_score recall@10")
check(got[0][0].page_content == texts[want[0]], "the best match's text")
flt = models.Filter(must=[models.FieldCondition(key="metadata.source", match=models.MatchValue(value="s2"))])
got = store.similarity_search_with_score(query, k=5, filter=flt)
check(len(got) == 5 and all(d.metadata["source"] == "s2" for d, _ in got), "filtered search: only s2")
want = exact_top(vecs, qv, 5, lambda i: metas[i]["source"] == "s2")
check(recall([int(d.metadata["i"]) for d, _ in got], want) >= 0.8, "filtered recall@5")
got = store.similarity_search_with_score(query, k=100, score_threshold=0.0)
check(all(s >= 0.0 for _, s in got), "score_threshold")

docs = store.get_by_ids([ids[3], ids[4]])
check(sorted(d.page_content for d in docs) == sorted([texts[3], texts[4]]), "get_by_ids")
check(store.delete(ids=ids[:10]) is True, "delete(ids) returns True (status completed)")
check(client.count("lc").count == 90, "90 left after delete")

again = QdrantVectorStore.from_existing_collection(embedding=emb, url=URL, api_key=API_KEY, collection_name="lc")
check(len(again.similarity_search(query, k=3)) == 3, "from_existing_collection searches")
client.delete_collection("lc")
print("flow_langchain: all checks passed")
