-- Leases the waiting jobs {selection} picks (claim_one_queue.sql or
-- claim_queues.sql): ?1 now, ?2 worker, ?3 lease_until, ?5 the lease token.
UPDATE jobs_queue
SET status = 'RUNNING', attempt = attempt + 1, started_at = ?1,
    locked_by = ?2, lease_until = ?3, lease_token = ?5
WHERE seq IN ({selection})
RETURNING {JOB_COLS}
