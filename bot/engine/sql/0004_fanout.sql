-- Measured costs per repository and agent (moving averages), for the fan-out planner.
CREATE TABLE review_loop_costs (
    repo       text NOT NULL,
    agent      text NOT NULL,
    spawn_s    double precision NOT NULL,   -- mirror fetch + worktree + setup + agent start
    run_s      double precision NOT NULL,   -- one issue's agent run
    samples    integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, agent)
);

-- Every fan-out decision, with its numbers.
CREATE TABLE review_loop_plans (
    repo       text NOT NULL,
    pr_number  integer NOT NULL,
    round      integer NOT NULL,
    agent      text NOT NULL,
    n          integer NOT NULL,
    t          double precision NOT NULL,
    s          double precision NOT NULL,
    width      integer NOT NULL,
    explain    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, pr_number, round, agent)
);

-- A task fixes one issue, or a batch of them inline (one branch, one PR, a commit each).
ALTER TABLE review_loop_tasks ADD COLUMN batch integer[] NOT NULL DEFAULT '{}';
ALTER TABLE review_loop_tasks ADD COLUMN fixed integer[] NOT NULL DEFAULT '{}';
ALTER TABLE review_loop_tasks ADD COLUMN failed integer[] NOT NULL DEFAULT '{}';
ALTER TABLE review_loop_tasks ADD COLUMN warm boolean NOT NULL DEFAULT false;
