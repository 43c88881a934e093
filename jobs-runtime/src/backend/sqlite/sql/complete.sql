-- Completes the listed attempts that still hold their lease: ? is
-- completed_at, {values} rows of (id, lease_token, result_data). A job that
-- finished before its cancellation reached it is completed, unmarked.
UPDATE jobs_queue SET status = 'COMPLETED', result_data = v.column3,
    completed_at = ?, locked_by = NULL, lease_until = NULL, lease_token = NULL,
    cancelled_at = NULL
FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.lease_token = v.column2
    AND jobs_queue.status = 'RUNNING'
