-- A reconcile requested while one for the same PR is still queued and due takes that job
-- (bot/loop/tasks.py `BUMP_AND_QUEUE`: the queued job's generation is raised) instead of
-- queueing one more that would only exit at once. This index serves the lookup of that
-- queued job: only queued reconciles are in it.
CREATE INDEX review_loop_queued_reconciles
    ON procrastinate_jobs ((args->>'repo'), ((args->>'number')::int))
 WHERE status = 'todo' AND task_name = 'reconcile_pr';

-- Whether a fix task's job is still to run or running (bot/loop/store.py `fixes_under_way`,
-- asked by every reconcile of a PR with fix tasks): looked up by task id.
CREATE INDEX review_loop_fix_jobs_under_way
    ON procrastinate_jobs (((args->>'task_id')::bigint))
 WHERE task_name = 'run_fix_task' AND status IN ('todo', 'doing');
