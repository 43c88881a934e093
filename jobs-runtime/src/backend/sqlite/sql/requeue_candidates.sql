-- One batch of a bulk requeue: the next ?3 jobs in status ?1 (FAILED or
-- DEAD_LETTER) after enqueue position ?2, of queue ?4 and job type ?5
-- unless NULL, in enqueue order. The OR term repeats the condition of the
-- partial status index word for word, so SQLite walks that index.
SELECT seq, id FROM jobs_queue
WHERE status = ?1 AND (status = 'SCHEDULED' OR status = 'RETRYING' OR status = 'FAILED' OR status = 'DEAD_LETTER')
    AND seq > ?2 AND (?4 IS NULL OR queue = ?4) AND (?5 IS NULL OR job_type = ?5)
ORDER BY seq LIMIT ?3
