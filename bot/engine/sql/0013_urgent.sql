-- A reconcile whose PR has fix tasks of its round still under way waits for the last of them
-- (bot/loop/tasks.py `reconcile_pr`) unless something asked for it that must not wait: an
-- event, a person's command, the resync. Set by those requests, cleared by the reconcile
-- that saves the PR's state.
ALTER TABLE review_loop_prs ADD COLUMN urgent boolean NOT NULL DEFAULT false;
