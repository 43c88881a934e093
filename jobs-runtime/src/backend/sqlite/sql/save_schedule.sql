-- Stores schedule ?1 (insert or replace by name).
INSERT INTO jobs_schedules (name, cron, timezone, last_tick, last_job,
    next_tick, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron,
    timezone = excluded.timezone, last_tick = excluded.last_tick,
    last_job = excluded.last_job, next_tick = excluded.next_tick,
    updated_at = excluded.updated_at
