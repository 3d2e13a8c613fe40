-- A reconcile requested while one for the same PR is still queued and due takes that job
-- (bot/loop/tasks.py `BUMP_AND_QUEUE`: the queued job's generation is raised) instead of
-- queueing one more that would only exit at once. This index serves the lookup of that
-- queued job: only queued reconciles are in it.
CREATE INDEX review_loop_queued_reconciles
    ON procrastinate_jobs ((args->>'repo'), ((args->>'number')::int))
 WHERE status = 'todo' AND task_name = 'reconcile_pr';
