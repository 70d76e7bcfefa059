-- The drive layer (strata-drive). One row per stored version of a file;
-- the body lives in the object store under `body` (bots/<bot>/<uuid v7>),
-- never under the user's key. `current` is 1 for the version a plain GET
-- reads; replaced and deleted versions keep their row (current = 0) until
-- retention purges them; `retired_at` is when a version stopped being current
-- (replaced or deleted), `deleted_at` is set when a DELETE ended it.
CREATE TABLE drive_objects (
    bot_id       TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    version      INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    etag         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    current      INTEGER NOT NULL DEFAULT 1,
    retired_at   INTEGER,
    deleted_at   INTEGER,
    PRIMARY KEY (bot_id, key, version)
) WITHOUT ROWID;

-- Listing current objects of a bot in key order.
CREATE INDEX drive_objects_current ON drive_objects (bot_id, key) WHERE current = 1;
-- Retention: non-current versions by the time they stopped being current.
CREATE INDEX drive_objects_retired ON drive_objects (retired_at) WHERE current = 0;
