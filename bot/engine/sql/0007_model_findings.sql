-- The findings of the model reviewers, per pull request: a fix task reads its finding here
-- (the model is not asked again), and when a reviewer fails, the findings it reported last
-- time stay in the ledger instead of being taken for fixed.
CREATE TABLE review_loop_model_findings (
    repo        text NOT NULL,
    pr_number   integer NOT NULL,
    fingerprint text NOT NULL,
    analyzer    text NOT NULL,       -- the reviewer's catalog name
    finding     jsonb NOT NULL,      -- Finding.to_dict()
    head_sha    text NOT NULL,       -- the commit it was found at
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, pr_number, fingerprint)
);
