-- Fails a job a claim just leased, or whose lease ran out, whose row could
-- not be read (a value written past this backend): FAILED for good, under
-- that lease (matched with IS: a lease of schema version 1 has no token), the
-- reason its error message and an entry of its error history — appended if
-- the history is a readable array with room left, else the history's only
-- entry (a history that cannot be read cannot be kept either).
-- ?1 seq, ?2 lease token, ?3 now (microseconds), ?4 now (RFC 3339),
-- ?5 message, ?6 worker.
UPDATE jobs_queue SET
    status = 'FAILED',
    completed_at = ?3,
    error_message = ?5,
    errors = json_insert(
        CASE WHEN json_valid(errors) AND json_type(errors) = 'array'
            AND json_array_length(errors) < {MAX_ERROR_HISTORY}
            THEN errors ELSE '[]' END,
        '$[#]', json_object('attempt', attempt, 'retry_count', retry_count,
            'at', ?4, 'message', ?5, 'retryable', json('false'), 'worker', ?6)),
    error_count = error_count + 1,
    locked_by = NULL, lease_until = NULL, lease_token = NULL
WHERE seq = ?1 AND lease_token IS ?2 AND status = 'RUNNING'
