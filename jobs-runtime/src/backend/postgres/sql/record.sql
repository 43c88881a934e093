-- `locked` takes the row locks first, in `id` order, as every statement that
-- updates several jobs does (see heartbeat.sql): recording and heartbeats can
-- then never deadlock. A fence matches only the lease it came from: RUNNING
-- under the same token (and attempt).
                 WITH locked AS MATERIALIZED (
                   SELECT u.* FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::jsonb[], $5::int8[],
                               $6::text[], $7::bool[], $9::int4[])
                        AS u(id, token, status, result, delay, message, retryable, attempt)
                   JOIN __TABLE__ w ON w.id = u.id
                   ORDER BY u.id
                   FOR NO KEY UPDATE OF w),
                 upd AS (
                   UPDATE __TABLE__ j SET
                     status = u.status,
                     result_data = CASE WHEN u.status IN ('COMPLETED', 'FAILED') THEN u.result
                                        ELSE j.result_data END,
                     completed_at = CASE WHEN u.status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER')
                                         THEN now() ELSE j.completed_at END,
                     retry_count = j.retry_count + CASE WHEN u.status = 'RETRYING' THEN 1 ELSE 0 END,
                     run_at = CASE WHEN u.status = 'RETRYING' THEN now() + u.delay * interval '1 microsecond'
                                   WHEN u.status = 'PENDING' THEN now() ELSE j.run_at END,
                     error_message = coalesce(u.message, j.error_message),
                     errors = CASE WHEN u.message IS NULL THEN j.errors
                                   ELSE jsonb_path_query_array(j.errors || jsonb_build_array(jsonb_build_object(
                                     'attempt', j.attempt, 'retry_count', j.retry_count,
                                     'at', now(), 'message', u.message,
                                     'retryable', u.retryable, 'worker', $8::text)), __KEEP_ERRORS__) END,
                     error_count = j.error_count + CASE WHEN u.message IS NULL THEN 0 ELSE 1 END,
                     locked_by = NULL,
                     lease_until = NULL,
                     lease_token = NULL
                   FROM locked u
                   WHERE j.id = u.id
                     AND __RUNNING__ AND j.lease_token = u.token AND j.attempt = u.attempt
                   RETURNING j.id, j.queue_name, j.status, j.run_at),
                 woke AS (
                   SELECT __WAKE__ AS w
                   FROM upd WHERE status IN ('PENDING', 'RETRYING')
                   HAVING count(*) > 0)
                 SELECT id FROM upd
                 UNION ALL SELECT NULL FROM woke
