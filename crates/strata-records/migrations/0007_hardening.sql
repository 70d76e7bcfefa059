-- Hardening (issue 10).
--
-- 1. The knowledge base's and conversation memory's vector collections are
--    Strata's own: they move from `kb` and `memory` (names a client could
--    also create, and then lose to the worker) to `_kb` and `_memory`, which
--    no client name can take. A `kb`/`memory` collection is renamed only
--    where the worker made it (the bot has knowledge-base documents, or a
--    memory setting); a client's own collection of that name stays.
UPDATE vector_collections SET name = '_kb'
 WHERE name = 'kb'
   AND EXISTS (SELECT 1 FROM kb_documents d WHERE d.bot_id = vector_collections.bot_id);
UPDATE vector_collections SET name = '_memory'
 WHERE name = 'memory'
   AND EXISTS (SELECT 1 FROM bot_config c
               WHERE c.bot_id = vector_collections.bot_id AND c.name = 'memory.enabled');

-- 2. When a knowledge-base job was first queued (the worker's state reports
--    the age of the oldest pending job).
ALTER TABLE kb_jobs ADD COLUMN enqueued_at INTEGER;

-- 3. Keyword search is scoped per bot: each bot gets its own FTS5 table
--    (`kb_fts_<hex of the bot id>`, contentless, made by the knowledge base
--    on demand and filled from kb_chunks at the first start after this
--    migration), so one bot's documents neither slow another bot's keyword
--    search nor change its BM25 statistics. The shared table goes.
DROP TRIGGER IF EXISTS kb_chunks_ai;
DROP TRIGGER IF EXISTS kb_chunks_ad;
DROP TABLE IF EXISTS kb_chunks_fts;

-- 4. Deleting a bot is a tombstone plus a durable purge: the bot disappears
--    at once (its keys are revoked in the same transaction, its id cannot be
--    reused) and a background job removes its data from every layer; the
--    final delete of the bots row cascades to what is left, this row
--    included. A purge can run any number of times.
ALTER TABLE bots ADD COLUMN deleted_at INTEGER;
CREATE TABLE bot_purges (
    bot_id     TEXT PRIMARY KEY REFERENCES bots(id) ON DELETE CASCADE,
    queued_at  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
