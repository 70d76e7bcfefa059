-- The knowledge base (strata-kb). Files under `<bot>.gbai/<bot>.gbkb/` in the
-- drive are the truth; these tables are what indexing derived from them.
--
-- kb_jobs is the durable queue. A job means "make the index of (bot, key)
-- match the drive's current version of key" (a deleted key is removed), so
-- jobs are idempotent and at most one queued job exists per key. A worker
-- claims a job by setting state = 'running' with a lease; a running job
-- whose lease has expired (the process died) is claimed again. `attempts`
-- counts claims; after the last allowed one the document is `failed`.
CREATE TABLE kb_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id      TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    version     INTEGER,
    force       INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    next_run_at INTEGER NOT NULL,
    lease_until INTEGER,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX kb_jobs_one_queued ON kb_jobs (bot_id, key) WHERE state = 'queued';
CREATE INDEX kb_jobs_runnable ON kb_jobs (state, next_run_at);

-- One row per indexed (or failed, or pending) document: its current version,
-- what its chunks were made from (content sha256, embedder, chunking), and
-- its status. `meta` is the JSON the search filters look at.
CREATE TABLE kb_documents (
    bot_id         TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    version        INTEGER,
    content_sha256 TEXT,
    content_type   TEXT,
    fingerprint    TEXT,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'indexing', 'indexed', 'failed')),
    chunks         INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    error_code     TEXT,
    embedder       TEXT,
    meta           TEXT NOT NULL DEFAULT '{}',
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (bot_id, key)
) WITHOUT ROWID;

-- The chunks of each document's current indexed version. `start` is the
-- byte offset of the chunk in the extracted text.
CREATE TABLE kb_chunks (
    id      INTEGER PRIMARY KEY,
    bot_id  TEXT NOT NULL,
    key     TEXT NOT NULL,
    version INTEGER NOT NULL,
    chunk   INTEGER NOT NULL,
    start   INTEGER NOT NULL,
    text    TEXT NOT NULL,
    FOREIGN KEY (bot_id, key) REFERENCES kb_documents(bot_id, key) ON DELETE CASCADE,
    UNIQUE (bot_id, key, chunk)
);

-- Full-text index over chunk text (external content: the text is stored
-- once, in kb_chunks), kept in step by triggers inside the same transaction.
CREATE VIRTUAL TABLE kb_chunks_fts USING fts5(
    text,
    content = 'kb_chunks',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER kb_chunks_ai AFTER INSERT ON kb_chunks BEGIN
    INSERT INTO kb_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER kb_chunks_ad AFTER DELETE ON kb_chunks BEGIN
    INSERT INTO kb_chunks_fts (kb_chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
