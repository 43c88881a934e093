-- Fails, retries or releases the listed attempts that still hold their lease
-- (matched with IS, so recovery can also take back a lease that a worker of
-- schema version 1 took without a token), ending the lease. A failure (a row
-- with a message) appends an entry stamped ? to the error history, keeping
-- the last {MAX_ERROR_HISTORY}, and counts in error_count. The stamp is bound
-- twice, once per branch below: big statements use anonymous parameters only.
-- v: 1 id, 2 lease_token, 3 status, 4 retry_inc, 5 run_at, 6 completed_at,
--    7 message, 8 retryable ('true'/'false'), 9 worker,
--    10 whether to set result_data (0/1), 11 result_data.
UPDATE jobs_queue SET status = v.column3,
    retry_count = jobs_queue.retry_count + v.column4,
    run_at = COALESCE(v.column5, jobs_queue.run_at),
    completed_at = v.column6,
    error_message = COALESCE(v.column7, jobs_queue.error_message),
    errors = CASE
        WHEN v.column7 IS NULL THEN jobs_queue.errors
        -- The usual case: room left, append.
        WHEN COALESCE(json_array_length(jobs_queue.errors), 0) < {MAX_ERROR_HISTORY} THEN
            json_insert(COALESCE(jobs_queue.errors, '[]'), '$[#]',
                json_object('attempt', jobs_queue.attempt,
                    'retry_count', jobs_queue.retry_count, 'at', ?,
                    'message', v.column7, 'retryable', json(v.column8),
                    'worker', v.column9))
        -- Full: append, then keep the last entries.
        ELSE (SELECT json_group_array(json(e.value) ORDER BY e.key)
            FROM json_each(json_insert(jobs_queue.errors, '$[#]',
                json_object('attempt', jobs_queue.attempt,
                    'retry_count', jobs_queue.retry_count, 'at', ?,
                    'message', v.column7, 'retryable', json(v.column8),
                    'worker', v.column9))) AS e
            WHERE e.key > json_array_length(jobs_queue.errors) - {MAX_ERROR_HISTORY})
        END,
    error_count = jobs_queue.error_count + (v.column7 IS NOT NULL),
    result_data = CASE WHEN v.column10 THEN v.column11 ELSE jobs_queue.result_data END,
    locked_by = NULL, lease_until = NULL, lease_token = NULL
FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.lease_token IS v.column2
    AND jobs_queue.status = 'RUNNING' RETURNING jobs_queue.id
