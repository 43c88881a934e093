-- The job holding unique key ?1 (in one of its own unique states: the
-- condition of the jobs_queue_unique index), and its status.
SELECT id, status FROM jobs_queue
WHERE unique_key = ?1
    AND (unique_states & (CASE status
        WHEN 'PENDING' THEN 1 WHEN 'SCHEDULED' THEN 2 WHEN 'RUNNING' THEN 4
        WHEN 'COMPLETED' THEN 8 WHEN 'FAILED' THEN 16 WHEN 'RETRYING' THEN 32
        WHEN 'DEAD_LETTER' THEN 64 ELSE 0 END)) != 0
    AND id IS NOT ?2
