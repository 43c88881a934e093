-- A page of the jobs due at ?2 of queue ?1 in claim order (?3 rows from the
-- ?4-th), with their limits, for the limited claim path.
SELECT seq, concurrency_key, concurrency_max, rate_key, rate_max, rate_per_ms,
    sequence_key
FROM jobs_queue
WHERE queue = ?1 AND {WAITING} AND run_at <= ?2
ORDER BY priority DESC, run_at, seq LIMIT ?3 OFFSET ?4
