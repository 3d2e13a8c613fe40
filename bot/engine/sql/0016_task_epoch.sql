-- A reconcile only fix tasks' ends ask for (not urgent: bot/loop/tasks.py `reconcile_pr`) has
-- nothing to look at when no fix task of its PR has changed since the last reconcile that
-- finished began: that one saw every task's end, and GitHub as those ends left it. Two
-- sibling tasks' ends can both come after the first of their reconciles began to run (one
-- task recorded `merged`, its job not yet ended when the other's end reconciles); the second
-- reconcile read the PR and its issues again for nothing.
--
-- `task_epoch` counts the changes of the PR's fix tasks, in the transaction of each change
-- (the PR's row is locked until it commits, so a reconcile that read the epoch before a
-- change commits reads it lower); `handled_epoch` is the epoch the last finished reconcile
-- read as it began.
ALTER TABLE review_loop_prs
    ADD COLUMN task_epoch bigint NOT NULL DEFAULT 0,
    ADD COLUMN handled_epoch bigint;

CREATE FUNCTION review_loop_count_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE review_loop_prs SET task_epoch = task_epoch + 1
     WHERE repo = NEW.repo AND number = NEW.pr_number;
    RETURN NULL;
END
$$;

CREATE TRIGGER review_loop_task_changed
    AFTER INSERT OR UPDATE ON review_loop_tasks
    FOR EACH ROW WHEN (NEW.pr_number IS NOT NULL)
    EXECUTE FUNCTION review_loop_count_task_change();
