-- The stored schedules, by name.
SELECT name, cron, timezone, last_tick, last_job, next_tick, updated_at
FROM jobs_schedules ORDER BY name
