-- Leases the waiting jobs whose seq is in the JSON array ?5: ?1 now,
-- ?2 worker, ?3 lease_until, ?4 the lease token.
UPDATE jobs_queue
SET status = 'RUNNING', attempt = attempt + 1, started_at = ?1,
    locked_by = ?2, lease_until = ?3, lease_token = ?4
WHERE seq IN (SELECT value FROM json_each(?5)) AND {WAITING}
RETURNING {JOB_COLS}
