"""LlamaIndex's QdrantVectorStore against Strata's Qdrant listener: nodes
with their own embeddings, queries with metadata filters, get_nodes,
delete, delete_nodes and clear."""
import numpy as np
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery,
)
from llama_index.vector_stores.qdrant import QdrantVectorStore
from qdrant_client import QdrantClient

from flowlib import API_KEY, URL, check, exact_top, recall

rng = np.random.default_rng(3)
vecs = rng.standard_normal((200, 16)).astype(np.float32)
nodes = [
    TextNode(text=f"node {i}", id_=f"{i:08x}-1111-4111-8111-{i:012x}", embedding=vecs[i].tolist(),
             metadata={"color": ["red", "green", "blue"][i % 3], "rank": i},
             relationships={})
    for i in range(200)
]
for i, n in enumerate(nodes):
    n.metadata["doc"] = f"doc{i % 10}"
client = QdrantClient(url=URL, api_key=API_KEY)
store = QdrantVectorStore(client=client, collection_name="li")
ids = store.add(nodes)
check(len(ids) == 200 and client.count("li").count == 200, "add 200 nodes")

q = rng.standard_normal(16).astype(np.float32)
res = store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=10))
want = exact_top(vecs, q, 10)
got = [int(n.metadata["rank"]) for n in res.nodes]
check(recall(got, want) >= 0.9, f"query recall@10 {recall(got, want)}")
flt = MetadataFilters(filters=[MetadataFilter(key="color", value="red", operator=FilterOperator.EQ)])
res = store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=5, filters=flt))
check(len(res.nodes) == 5 and all(n.metadata["color"] == "red" for n in res.nodes), "EQ filter")
want = exact_top(vecs, q, 5, lambda i: i % 3 == 0)
check(recall([int(n.metadata["rank"]) for n in res.nodes], want) >= 0.8, "EQ filter recall@5")
flt = MetadataFilters(filters=[MetadataFilter(key="color", value=["green", "blue"], operator=FilterOperator.NIN)])
res = store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=5, filters=flt))
check(all(n.metadata["color"] == "red" for n in res.nodes), "NIN filter (except)")
flt = MetadataFilters(filters=[MetadataFilter(key="rank", value=150, operator=FilterOperator.GTE)])
res = store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=100, filters=flt))
check(len(res.nodes) == 50 and all(n.metadata["rank"] >= 150 for n in res.nodes), "GTE filter")

got = store.get_nodes(node_ids=[nodes[5].node_id, nodes[6].node_id])
check(sorted(n.text for n in got) == ["node 5", "node 6"], "get_nodes by ids")
got = store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="color", value="blue")]))
check(len(got) == 66, f"get_nodes by filter: {len(got)}")

store.delete_nodes(node_ids=[nodes[0].node_id, nodes[1].node_id])
check(client.count("li").count == 198, "delete_nodes by ids")
# With filters only, LlamaIndex also sends `should: []`, which matches
# nothing in Qdrant (COMPAT.md): nothing is deleted, as on a real server.
green = MetadataFilters(filters=[MetadataFilter(key="color", value="green")])
store.delete_nodes(filters=green)
check(client.count("li").count == 198, "delete_nodes(filters) alone deletes nothing, as Qdrant does")
# Ids and filters together: the green ones among the ids (node 4; node 5 is blue).
store.delete_nodes(node_ids=[nodes[4].node_id, nodes[5].node_id], filters=green)
check(client.count("li").count == 197, f"delete_nodes by ids and filter: {client.count('li').count} left")
check(len(store.get_nodes(node_ids=[nodes[5].node_id])) == 1, "the blue node stays")
store.clear()
check(not client.collection_exists("li"), "clear drops the collection")
print("flow_llamaindex: all checks passed")
