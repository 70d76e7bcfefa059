-- The vectors layer (strata-vectors). Rows are the truth; the in-memory HNSW
-- index is derived from them: a snapshot on disk records the last change it
-- contains (vector_log.seq) and later changes are replayed at start.
CREATE TABLE vector_collections (
    id              INTEGER PRIMARY KEY,
    bot_id          TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    dimension       INTEGER NOT NULL,
    metric          TEXT NOT NULL,
    m               INTEGER NOT NULL,
    ef_construction INTEGER NOT NULL,
    ef_search       INTEGER NOT NULL,
    quantization    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (bot_id, name)
);

CREATE TABLE vector_indexes (
    collection_id INTEGER NOT NULL REFERENCES vector_collections(id) ON DELETE CASCADE,
    field         TEXT NOT NULL,
    type          TEXT NOT NULL,
    PRIMARY KEY (collection_id, field)
) WITHOUT ROWID;

-- pid is PointId::storage_key (numbers first, then strings, in order);
-- vector is little-endian f32 as the client sent it.
CREATE TABLE vector_points (
    collection_id INTEGER NOT NULL REFERENCES vector_collections(id) ON DELETE CASCADE,
    pid           TEXT NOT NULL,
    vector        BLOB NOT NULL,
    payload       TEXT,
    ingested_at   INTEGER NOT NULL,
    expires_at    INTEGER,
    UNIQUE (collection_id, pid)
);
CREATE INDEX vector_points_by_expiry ON vector_points(expires_at) WHERE expires_at IS NOT NULL;

-- One row per changed point, in commit order; truncated up to a collection's
-- snapshot once that is on disk.
CREATE TABLE vector_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL,
    pid           TEXT NOT NULL
);
CREATE INDEX vector_log_by_collection ON vector_log(collection_id, seq);
