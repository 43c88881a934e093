-- One batch of a bulk requeue: the next ?3 jobs in status ?1 after enqueue
-- position ?2 (of queue ?4 and job type ?5 unless NULL), in enqueue order.
SELECT seq, id FROM jobs_queue
WHERE status = ?1 AND seq > ?2 AND (?4 IS NULL OR queue = ?4)
    AND (?5 IS NULL OR job_type = ?5)
ORDER BY seq LIMIT ?3
