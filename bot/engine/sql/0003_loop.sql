-- One row per pull request the loop looks after.
CREATE TABLE review_loop_prs (
    repo            text NOT NULL,
    number          integer NOT NULL,
    installation_id bigint NOT NULL,
    generation      bigint NOT NULL DEFAULT 0,   -- bumped by every event about the PR
    handled         bigint NOT NULL DEFAULT 0,   -- the generation the last reconcile saw
    state           text NOT NULL DEFAULT 'new',
    reason          text,
    round           integer NOT NULL DEFAULT 0,
    audited_sha     text,
    force_audit     boolean NOT NULL DEFAULT false,
    stopped         boolean NOT NULL DEFAULT false,
    fixes_allowed   boolean NOT NULL DEFAULT false,  -- fork PRs: a writer said `fix`
    summary         jsonb NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, number)
);

-- One fix task per issue, PR head and round: the unique key makes a redelivered event or a
-- re-run reconcile harmless, while a later round may try the same issue again.
CREATE TABLE review_loop_tasks (
    id            bigserial PRIMARY KEY,
    repo          text NOT NULL,
    pr_number     integer,          -- NULL for a human-filed issue fixed against the default branch
    issue_number  integer NOT NULL,
    installation_id bigint NOT NULL,
    agent         text NOT NULL,
    round         integer NOT NULL DEFAULT 0,
    base_ref      text NOT NULL,
    base_sha      text NOT NULL,
    status        text NOT NULL DEFAULT 'queued',
    branch        text NOT NULL,
    fix_pr        integer,
    attempts      integer NOT NULL DEFAULT 0,
    error         text,
    spawn_s       double precision,
    run_s         double precision,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repo, issue_number, base_sha, round)
);
CREATE INDEX review_loop_tasks_pr ON review_loop_tasks (repo, pr_number);

-- Fingerprints the bot closed as fixed, per PR: one that comes back is an oscillation.
CREATE TABLE review_loop_fixed (
    repo        text NOT NULL,
    pr_number   integer NOT NULL,
    fingerprint text NOT NULL,
    issue_number integer NOT NULL,
    fixed_sha   text NOT NULL,
    PRIMARY KEY (repo, pr_number, fingerprint)
);
