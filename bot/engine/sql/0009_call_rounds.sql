-- The loop round a model call belongs to (the summary shows "this round"; budgets per round):
-- an audit's calls take the PR's round at the time, a fix task's calls take the task's round.
ALTER TABLE review_loop_model_calls ADD COLUMN round integer;
