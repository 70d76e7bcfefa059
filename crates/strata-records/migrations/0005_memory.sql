-- Conversation memory (strata-kb, memory.rs). A bot whose config has
-- `memory.enabled` set to true gets its user and assistant messages embedded
-- into its `memory` vector collection, so it can search past conversations
-- by meaning.
--
-- memory_queue is the durable queue between the message store and the
-- embedder. Triggers fill it in the transaction that stores the message, so
-- no acknowledged message of an enabled bot can be missed by a crash, and no
-- code path that writes messages or config can forget it. Enabling memory
-- (the setting inserted, or changed from not-true to true) queues the bot's
-- earlier messages too. The worker embeds a batch, upserts the points (ids
-- are message ids, so doing it twice is harmless) and then deletes the rows:
-- a crash in between only repeats work. Rows whose message is gone
-- (conversation or bot deleted) are dropped by the worker.
CREATE TABLE memory_queue (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id          TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_run_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX memory_queue_runnable ON memory_queue (next_run_at, id);
CREATE INDEX memory_queue_by_bot ON memory_queue (bot_id);

-- The values of `memory.enabled` (stored as JSON text) that mean "on".
CREATE TRIGGER memory_queue_new_message AFTER INSERT ON messages
WHEN NEW.role IN ('user', 'assistant')
 AND EXISTS (SELECT 1 FROM bot_config
             WHERE bot_id = NEW.bot_id AND name = 'memory.enabled'
               AND value IN ('true', '"true"', '1', '"1"', '"yes"', '"on"'))
BEGIN
    INSERT INTO memory_queue (bot_id, conversation_id, seq)
    VALUES (NEW.bot_id, NEW.conversation_id, NEW.seq);
END;

CREATE TRIGGER memory_enabled_inserted AFTER INSERT ON bot_config
WHEN NEW.name = 'memory.enabled'
 AND NEW.value IN ('true', '"true"', '1', '"1"', '"yes"', '"on"')
BEGIN
    INSERT INTO memory_queue (bot_id, conversation_id, seq)
    SELECT bot_id, conversation_id, seq FROM messages
    WHERE bot_id = NEW.bot_id AND role IN ('user', 'assistant')
    ORDER BY conversation_id, seq;
END;

CREATE TRIGGER memory_enabled_updated AFTER UPDATE OF value ON bot_config
WHEN NEW.name = 'memory.enabled'
 AND NEW.value IN ('true', '"true"', '1', '"1"', '"yes"', '"on"')
 AND OLD.value NOT IN ('true', '"true"', '1', '"1"', '"yes"', '"on"')
BEGIN
    INSERT INTO memory_queue (bot_id, conversation_id, seq)
    SELECT bot_id, conversation_id, seq FROM messages
    WHERE bot_id = NEW.bot_id AND role IN ('user', 'assistant')
    ORDER BY conversation_id, seq;
END;
