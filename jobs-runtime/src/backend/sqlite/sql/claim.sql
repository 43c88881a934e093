-- The fast path: leases the waiting jobs {selection} picks
-- (claim_one_queue.sql or claim_queues.sql) if none of them has limits of
-- its own; otherwise leases nothing, and the claim takes the limited path
-- (limits.rs). ?1 now, ?2 worker, ?3 lease_until, ?5 the lease token.
WITH candidates AS MATERIALIZED ({selection})
UPDATE jobs_queue
SET status = 'RUNNING', attempt = attempt + 1, started_at = ?1,
    locked_by = ?2, lease_until = ?3, lease_token = ?5
WHERE seq IN (SELECT seq FROM candidates)
    AND NOT EXISTS (SELECT 1 FROM candidates WHERE limited)
RETURNING {JOB_COLS}
