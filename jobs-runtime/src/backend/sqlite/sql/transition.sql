-- Fails, retries or releases the listed attempts that still hold their lease,
-- appending an entry stamped ? to the error history when there is a message.
-- v: 1 id, 2 attempt, 3 status, 4 retry_inc, 5 run_at, 6 completed_at,
--    7 message, 8 retryable ('true'/'false'), 9 worker.
UPDATE jobs_queue SET status = v.column3,
    retry_count = jobs_queue.retry_count + v.column4,
    run_at = COALESCE(v.column5, jobs_queue.run_at),
    completed_at = v.column6,
    error_message = COALESCE(v.column7, jobs_queue.error_message),
    errors = CASE WHEN v.column7 IS NULL THEN jobs_queue.errors ELSE
        json_insert(COALESCE(jobs_queue.errors, '[]'), '$[#]',
            json_object('attempt', jobs_queue.attempt, 'retry_count', jobs_queue.retry_count,
                'at', ?, 'message', v.column7, 'retryable', json(v.column8),
                'worker', v.column9)) END,
    locked_by = NULL, lease_until = NULL
FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2
    AND jobs_queue.status = 'RUNNING' RETURNING jobs_queue.id
