-- What the bot read from GitHub and may read again without asking: a repository's metadata
-- and its config files (the repository's own and its owner's `.github` one, present or not).
-- Shared by every process; a push that changes a config file deletes its rows, and a row
-- older than the settings' `github_cache_ttl_s` is read again.
CREATE TABLE review_loop_github_cache (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now()
);
