-- Requeues the batch that requeue_candidates.sql lists (same ?1 to ?5) as
-- requeue.sql does each job, due at ?6; returns the ids it requeued. A job
-- that would hold its unique key while PENDING (bit 1 of its states) stays as
-- it is if another job holds the key now, or if an earlier job of the batch
-- with the same key takes it: the unique index would refuse it, and with it
-- the whole batch.
WITH cand AS (
    SELECT seq, unique_key, unique_states FROM jobs_queue
    WHERE status = ?1 AND (status = 'SCHEDULED' OR status = 'RETRYING' OR status = 'FAILED' OR status = 'DEAD_LETTER')
        AND seq > ?2 AND (?4 IS NULL OR queue = ?4) AND (?5 IS NULL OR job_type = ?5)
    ORDER BY seq LIMIT ?3)
UPDATE jobs_queue SET status = 'PENDING', retry_count = 0, run_at = ?6,
    completed_at = NULL, cancelled_at = NULL
WHERE seq IN (SELECT c.seq FROM cand c
    WHERE c.unique_key IS NULL OR (c.unique_states & 1) = 0
        OR (NOT EXISTS (SELECT 1 FROM jobs_queue h
                WHERE h.unique_key = c.unique_key AND h.seq != c.seq
                    AND (h.unique_states & (CASE h.status
                        WHEN 'PENDING' THEN 1 WHEN 'SCHEDULED' THEN 2 WHEN 'RUNNING' THEN 4
                        WHEN 'COMPLETED' THEN 8 WHEN 'FAILED' THEN 16 WHEN 'RETRYING' THEN 32
                        WHEN 'DEAD_LETTER' THEN 64 ELSE 0 END)) != 0)
            AND NOT EXISTS (SELECT 1 FROM cand e
                WHERE e.unique_key = c.unique_key AND (e.unique_states & 1) != 0
                    AND e.seq < c.seq)))
RETURNING id
