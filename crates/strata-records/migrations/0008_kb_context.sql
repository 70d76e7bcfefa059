-- Contextual chunk headers (issue 14).
--
-- 1. Each chunk keeps its context head (`path > title > section`, made by
--    strata-kb's `chunk_heads`): embedded with the chunk's text and indexed
--    in the bot's keyword table as a second column, `head`, which BM25
--    weighs apart from the body. Chunks written before this have none.
ALTER TABLE kb_chunks ADD COLUMN head TEXT NOT NULL DEFAULT '';

-- 2. The version of what is stored per chunk (strata-kb's CHUNKER_VERSION)
--    each document was indexed with. Documents from before this migration
--    are version 1; at start the knowledge base re-queues every indexed
--    document whose version is older than the current one, so a change to
--    what is stored per chunk re-indexes existing knowledge bases by itself.
ALTER TABLE kb_documents ADD COLUMN chunker INTEGER NOT NULL DEFAULT 1;
