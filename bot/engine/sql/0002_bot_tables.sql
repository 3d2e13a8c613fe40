-- Webhook deliveries: one row per X-GitHub-Delivery, stored with its dispatch job.
CREATE TABLE review_loop_deliveries (
    id              text PRIMARY KEY,
    event           text NOT NULL,
    action          text,
    installation_id bigint,
    repository      text,
    sender          text,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'done', 'ignored', 'failed')),
    outcome         jsonb,
    dispatched_at   timestamptz,
    attempts        integer NOT NULL DEFAULT 0
);
CREATE INDEX review_loop_deliveries_received ON review_loop_deliveries (received_at DESC);
CREATE INDEX review_loop_deliveries_status ON review_loop_deliveries (status);

-- Leases: who is in charge of a key (a PR, an issue). The token only ever grows.
CREATE SEQUENCE review_loop_lease_tokens;
CREATE TABLE review_loop_leases (
    key        text PRIMARY KEY,
    holder     text NOT NULL,
    token      bigint NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
