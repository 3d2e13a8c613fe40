-- The creates of the bot's own GitHub objects it began (bot/github/intents.py): a row is
-- committed before its POST is sent, and given the object's id once GitHub answers. Kept for
-- as long as the database, unlike the cache's rows: a key without a row means the bot never
-- tried to make that object since this migration, so the object cannot exist and is made
-- without a lookup. This migration's `applied_at` is when that began.
CREATE TABLE review_loop_github_intents (
    key        text PRIMARY KEY,
    object_id  bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The App's identity, asked of GitHub (`GET /app`) once per deployment, not by every process.
CREATE TABLE review_loop_app_identity (
    app_id     bigint PRIMARY KEY,
    slug       text NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now()
);
