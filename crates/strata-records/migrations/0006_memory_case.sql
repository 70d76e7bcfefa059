-- Conversation memory: `memory.enabled` compared in lower case.
--
-- 0005_memory shipped with triggers that compared the stored value as it
-- was written, so `True` or `YES` (as a config.csv row gives them) did not
-- switch memory on. 0005 was then edited in place to compare in lower case,
-- which left databases created before the edit with the old triggers and
-- databases created after it with the new ones. 0005 is back to what
-- shipped; this migration brings every database to the same state by
-- replacing the three triggers. Applied migrations are never edited again:
-- their checksums are recorded in schema_migrations and checked at open.
--
-- The queue also records when each row was queued, so the worker's state
-- (in /ready and /metrics) can say how long the oldest message has waited.
ALTER TABLE memory_queue ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER IF EXISTS memory_queue_new_message;
DROP TRIGGER IF EXISTS memory_enabled_inserted;
DROP TRIGGER IF EXISTS memory_enabled_updated;

CREATE TRIGGER memory_queue_new_message AFTER INSERT ON messages
WHEN NEW.role IN ('user', 'assistant')
 AND EXISTS (SELECT 1 FROM bot_config
             WHERE bot_id = NEW.bot_id AND name = 'memory.enabled'
               AND lower(value) IN ('true', '"true"', '1', '"1"', '"yes"', '"on"'))
BEGIN
    INSERT INTO memory_queue (bot_id, conversation_id, seq, queued_at)
    VALUES (NEW.bot_id, NEW.conversation_id, NEW.seq,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER memory_enabled_inserted AFTER INSERT ON bot_config
WHEN NEW.name = 'memory.enabled'
 AND lower(NEW.value) IN ('true', '"true"', '1', '"1"', '"yes"', '"on"')
BEGIN
    INSERT INTO memory_queue (bot_id, conversation_id, seq, queued_at)
    SELECT bot_id, conversation_id, seq,
           CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM messages
    WHERE bot_id = NEW.bot_id AND role IN ('user', 'assistant')
    ORDER BY conversation_id, seq;
END;

CREATE TRIGGER memory_enabled_updated AFTER UPDATE OF value ON bot_config
WHEN NEW.name = 'memory.enabled'
 AND lower(NEW.value) IN ('true', '"true"', '1', '"1"', '"yes"', '"on"')
 AND lower(OLD.value) NOT IN ('true', '"true"', '1', '"1"', '"yes"', '"on"')
BEGIN
    INSERT INTO memory_queue (bot_id, conversation_id, seq, queued_at)
    SELECT bot_id, conversation_id, seq,
           CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM messages
    WHERE bot_id = NEW.bot_id AND role IN ('user', 'assistant')
    ORDER BY conversation_id, seq;
END;
