"""The engine: PostgreSQL, migrations, procrastinate jobs, leases, the stalled-job reaper."""
