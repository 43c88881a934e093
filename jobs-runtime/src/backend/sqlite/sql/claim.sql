-- The fast path: leases the waiting jobs {selection} picks
-- (claim_one_queue.sql or claim_queues.sql) if none of them has limits of
-- its own. If one has, it leases none of them: it returns them unchanged
-- (still waiting), which tells the claim to take the limited path
-- (limits.rs) — so an empty answer means "nothing due", with no second
-- statement. ?1 now, ?2 worker, ?3 lease_until, ?5 the lease token.
WITH candidates AS MATERIALIZED ({selection}),
    held AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM candidates WHERE limited) AS back)
UPDATE jobs_queue
SET status = iif(held.back, status, 'RUNNING'),
    attempt = attempt + NOT held.back,
    started_at = iif(held.back, started_at, ?1),
    locked_by = iif(held.back, locked_by, ?2),
    lease_until = iif(held.back, lease_until, ?3),
    lease_token = iif(held.back, lease_token, ?5)
FROM held
WHERE seq IN (SELECT seq FROM candidates)
RETURNING {JOB_COLS}
