-- Releases the held steps among the jobs (hex) of the JSON array ?2: each
-- that is SCHEDULED with its run_at at or after ?3 (held) becomes PENDING,
-- due at ?1, as if enqueued then. Returns their ids.
UPDATE jobs_queue SET status = 'PENDING', run_at = ?1
WHERE id IN (SELECT unhex(value) FROM json_each(?2))
    AND status = 'SCHEDULED' AND run_at >= ?3
RETURNING id
