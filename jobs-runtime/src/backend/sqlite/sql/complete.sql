-- Completes the listed attempts that still hold their lease: ? is
-- completed_at, {values} rows of (id, attempt, result_data).
UPDATE jobs_queue SET status = 'COMPLETED', result_data = v.column3,
    completed_at = ?, locked_by = NULL, lease_until = NULL
FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2
    AND jobs_queue.status = 'RUNNING'
