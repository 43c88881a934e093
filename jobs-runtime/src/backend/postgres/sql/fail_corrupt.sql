-- Fails a job a claim just leased whose row could not be read (a value
-- written past this backend): FAILED for good under that claim's lease, the
-- reason its error message and the last entry of its error history (the
-- history kept if it is an array, else started afresh).
-- $1 id, $2 lease token, $3 message, $4 worker.
UPDATE __TABLE__ SET
                   status = 'FAILED',
                   completed_at = now(),
                   error_message = $3,
                   errors = jsonb_path_query_array(
                     CASE WHEN jsonb_typeof(errors) = 'array' THEN errors ELSE '[]'::jsonb END
                     || jsonb_build_array(jsonb_build_object(
                       'attempt', attempt, 'retry_count', retry_count, 'at', now(),
                       'message', $3::text, 'retryable', false, 'worker', $4::text)),
                     __KEEP_ERRORS__),
                   error_count = error_count + 1,
                   locked_by = NULL, lease_until = NULL, lease_token = NULL
                 WHERE id = $1 AND lease_token = $2 AND status = 'RUNNING'
