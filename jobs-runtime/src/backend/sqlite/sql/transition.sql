-- Fails, retries, releases or snoozes the listed attempts that still hold
-- their lease (matched with IS, so recovery can also take back a lease that a
-- worker of schema version 1 took without a token), ending the lease. A
-- failure (a row with a message) appends an entry stamped ? to the error
-- history, keeping the last {MAX_ERROR_HISTORY}, and counts in error_count.
-- The stamp is bound twice, once per branch below: big statements use
-- anonymous parameters only.
-- v: 1 id, 2 lease_token, 3 status, 4 retry_inc, 5 run_at, 6 completed_at,
--    7 message, 8 retryable ('true'/'false'), 9 worker,
--    10 whether to set result_data (0/1), 11 result_data, 12 snooze_inc,
--    13 when the job ends cancelled instead (NULL: never; else the time),
--    14 whether it ends cancelled whatever its mark (a Cancel outcome; else
--    only if its cancellation was requested).
-- A job that ends cancelled is FAILED for good: no retry, no snooze, its
-- error still the requested cancellation's message if there was one.
UPDATE jobs_queue SET
    status = CASE WHEN {CANCELLED} THEN 'FAILED' ELSE v.column3 END,
    retry_count = jobs_queue.retry_count
        + CASE WHEN {CANCELLED} THEN 0 ELSE v.column4 END,
    run_at = CASE WHEN {CANCELLED} THEN jobs_queue.run_at
        ELSE COALESCE(v.column5, jobs_queue.run_at) END,
    completed_at = CASE WHEN {CANCELLED} THEN v.column13 ELSE v.column6 END,
    error_message = CASE
        WHEN {CANCELLED} AND jobs_queue.cancelled_at IS NOT NULL
            THEN jobs_queue.error_message
        ELSE COALESCE(v.column7, jobs_queue.error_message) END,
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
    snoozes = jobs_queue.snoozes + CASE WHEN {CANCELLED} THEN 0 ELSE v.column12 END,
    cancelled_at = CASE WHEN {CANCELLED}
        THEN COALESCE(jobs_queue.cancelled_at, v.column13)
        ELSE jobs_queue.cancelled_at END,
    locked_by = NULL, lease_until = NULL, lease_token = NULL
FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.lease_token IS v.column2
    AND jobs_queue.status = 'RUNNING' RETURNING jobs_queue.id
