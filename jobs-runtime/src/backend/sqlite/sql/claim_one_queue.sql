-- The first ?4 jobs due at ?1 of one queue, ?6, in claim order, unless the
-- queue is paused; `limited` says the job has limits of its own.
SELECT seq, {LIMITED} AS limited FROM jobs_queue
WHERE queue = ?6 AND {WAITING} AND run_at <= ?1
    AND NOT EXISTS (SELECT 1 FROM jobs_paused WHERE queue = ?6)
ORDER BY priority DESC, run_at, seq LIMIT ?4
