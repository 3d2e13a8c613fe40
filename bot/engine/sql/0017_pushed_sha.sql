-- Where each fix task last pushed its branch: a task that ends with its fix PR closed by the
-- bot (or never opened) deletes the branch, only if it is still there (a person's later push
-- keeps it), also from the reconcile of a closed PR, which has no worktree to ask.
ALTER TABLE review_loop_tasks ADD COLUMN pushed_sha text;
