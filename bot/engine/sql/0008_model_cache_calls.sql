-- Model reviews of unchanged files are not asked again: the validated reply, keyed by a
-- sha256 over the reviewer (catalog name, kind, model, endpoint), the whole prompt, the
-- file's content and the PR's base commit.
CREATE TABLE review_loop_review_cache (
    key        text PRIMARY KEY,
    agent      text NOT NULL,
    model      text NOT NULL,
    reply      text NOT NULL,
    hits       integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz NOT NULL DEFAULT now()
);

-- Every model call the bot made (a repair request is a call of its own; retries of one
-- call are its attempts): what it cost, for budgets.
CREATE TABLE review_loop_model_calls (
    id         bigserial PRIMARY KEY,
    repo       text NOT NULL,
    pr_number  integer,
    task_id    bigint,
    agent      text NOT NULL,
    model      text NOT NULL,
    purpose    text NOT NULL,      -- review, fix, verify
    tokens_in  integer NOT NULL,
    tokens_out integer NOT NULL,
    cost_usd   double precision,   -- NULL: the catalog gives the model no price
    duration_s double precision NOT NULL,
    attempts   integer NOT NULL,
    repair     boolean NOT NULL,
    error      text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_loop_model_calls_pr ON review_loop_model_calls (repo, pr_number);
