-- A reconcile whose PR has fix tasks under way waits for the last of them
-- (bot/loop/tasks.py `reconcile_pr`) unless something asked for it that must not wait: an
-- event, a person's command, the resync. The generation of the latest such request: it is
-- pending while it is above `handled` (a reconcile that saw it finished).
ALTER TABLE review_loop_prs ADD COLUMN urgent_generation bigint NOT NULL DEFAULT 0;
