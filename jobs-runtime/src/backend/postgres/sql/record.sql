                 WITH upd AS (
                   UPDATE __TABLE__ j SET
                     status = u.status,
                     result_data = CASE WHEN u.status = 'COMPLETED' THEN u.result ELSE j.result_data END,
                     completed_at = CASE WHEN u.status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER')
                                         THEN now() ELSE j.completed_at END,
                     retry_count = j.retry_count + CASE WHEN u.status = 'RETRYING' THEN 1 ELSE 0 END,
                     run_at = CASE WHEN u.status = 'RETRYING' THEN now() + u.delay * interval '1 microsecond'
                                   WHEN u.status = 'PENDING' THEN now() ELSE j.run_at END,
                     error_message = coalesce(u.message, j.error_message),
                     errors = CASE WHEN u.message IS NULL THEN j.errors
                                   ELSE j.errors || jsonb_build_array(jsonb_build_object(
                                     'attempt', j.attempt, 'retry_count', j.retry_count,
                                     'at', now(), 'message', u.message,
                                     'retryable', u.retryable, 'worker', $8::text)) END,
                     locked_by = NULL,
                     lease_until = NULL
                   FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::jsonb[], $5::int8[],
                               $6::text[], $7::bool[])
                        AS u(id, attempt, status, result, delay, message, retryable)
                   WHERE j.id = u.id AND __RUNNING__ AND j.attempt = u.attempt
                   RETURNING j.id, j.queue_name, j.status, j.run_at),
                 woke AS (
                   SELECT __WAKE__ AS w
                   FROM upd WHERE status IN ('PENDING', 'RETRYING')
                   HAVING count(*) > 0)
                 SELECT id FROM upd
                 UNION ALL SELECT NULL FROM woke
