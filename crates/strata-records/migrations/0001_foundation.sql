-- Foundation schema: every tenant row carries bot_id, and children cascade
-- from their parents so deleting a bot, user or conversation is one statement.
-- Timestamps are Unix milliseconds; JSON columns hold serialised objects.

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE bots (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    bot_id      TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'writer', 'reader')),
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_bot ON api_keys(bot_id, id);

CREATE TABLE users (
    bot_id      TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    external_id TEXT,
    name        TEXT,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (bot_id, id)
);
CREATE UNIQUE INDEX users_by_external_id ON users(bot_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE groups (
    bot_id     TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (bot_id, id)
);

CREATE TABLE sessions (
    bot_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL DEFAULT '{}',
    ttl_seconds  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    PRIMARY KEY (bot_id, id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users(bot_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions(bot_id, user_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);

CREATE TABLE conversations (
    bot_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    title      TEXT,
    metadata   TEXT NOT NULL DEFAULT '{}',
    last_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (bot_id, id),
    FOREIGN KEY (bot_id, user_id) REFERENCES users(bot_id, id) ON DELETE CASCADE
);
CREATE INDEX conversations_by_user ON conversations(bot_id, user_id, id);

-- seq is assigned from conversations.last_seq inside the append transaction,
-- so it is gap-free; the primary key makes a duplicate seq impossible.
CREATE TABLE messages (
    bot_id          TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (bot_id, conversation_id, seq),
    FOREIGN KEY (bot_id, conversation_id) REFERENCES conversations(bot_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_idempotency_key
    ON messages(bot_id, conversation_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE presets (
    bot_id        TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    system_prompt TEXT,
    model         TEXT,
    params        TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (bot_id, id)
);

CREATE TABLE tool_logs (
    bot_id          TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    conversation_id TEXT,
    tool            TEXT NOT NULL,
    input           TEXT NOT NULL,
    output          TEXT,
    status          TEXT NOT NULL,
    duration_ms     INTEGER,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (bot_id, id)
);
CREATE INDEX tool_logs_by_conversation ON tool_logs(bot_id, conversation_id, id);

CREATE TABLE bot_config (
    bot_id     TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (bot_id, name)
) WITHOUT ROWID;

-- Audit events outlive the bot they name (no cascade): they are the record
-- of who deleted what.
CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    bot_id     TEXT,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_events_by_bot ON audit_events(bot_id, id);

-- The kv layer's SQLite backend shares this database (STRATA_RECORDS_URL).
CREATE TABLE kv (
    ns         TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX kv_by_expiry ON kv(expires_at) WHERE expires_at IS NOT NULL;
