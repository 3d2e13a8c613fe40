-- Per-installation caps (server settings, per UTC day and month): each model call records its
-- installation; a run about to start reserves its expected cost under a lock row per
-- installation, so workers on one database never admit more than the cap between them.
ALTER TABLE review_loop_model_calls ADD COLUMN installation_id bigint;
CREATE INDEX review_loop_model_calls_installation
    ON review_loop_model_calls (installation_id, created_at);
CREATE TABLE review_loop_installation_budgets (
    installation_id bigint PRIMARY KEY  -- locked (SELECT ... FOR UPDATE) while admitting a run
);
CREATE TABLE review_loop_cost_reservations (
    id              bigserial PRIMARY KEY,
    installation_id bigint NOT NULL,
    expected_usd    double precision NOT NULL,
    purpose         text NOT NULL,      -- what the run is for, e.g. "fix task 12"
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL  -- a crashed worker's reservation stops counting
);
CREATE INDEX review_loop_cost_reservations_installation
    ON review_loop_cost_reservations (installation_id, expires_at);
