-- The first ?4 jobs due at ?1 of one queue, ?6, in claim order.
SELECT seq FROM jobs_queue
WHERE queue = ?6 AND status IN {WAITING} AND run_at <= ?1
ORDER BY priority DESC, run_at, seq LIMIT ?4
