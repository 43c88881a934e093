-- `locked` takes the row locks first, in `id` order, as every statement that
-- updates several jobs does (see heartbeat.sql): recording and heartbeats can
-- then never deadlock. A fence matches only the lease it came from: RUNNING
-- under the same token (and attempt). `$3` is the outcome's kind; `st` the
-- status it leads to: a job whose cancellation was requested never waits
-- again (a retry, release or snooze ends it FAILED, its error still saying
-- who cancelled it and why). `woke` wakes workers, `fin` handles awaiting
-- the jobs it finished: one NOTIFY each per call at most, none if not needed.
-- A completion to drop (`DROP`, the retention keeps none) is not updated
-- but deleted under the same fence, in `__DROPPING__` (empty when the call
-- drops nothing; `__DONE__` is then `upd`, and `__NOT_DROPPED__` empty):
-- see `sql.rs`.
                 WITH locked AS MATERIALIZED (
                   SELECT u.*,
                          CASE WHEN u.kind IN ('COMPLETE', 'DROP') THEN 'COMPLETED'
                               WHEN u.kind IN ('FAIL', 'CANCEL') THEN 'FAILED'
                               WHEN u.kind = 'DEAD' THEN 'DEAD_LETTER'
                               WHEN w.cancelled_at IS NOT NULL THEN 'FAILED'
                               WHEN u.kind = 'RETRY' THEN 'RETRYING'
                               WHEN u.kind = 'SNOOZE' AND u.delay > 0 THEN 'SCHEDULED'
                               ELSE 'PENDING' END AS st,
                          (w.cancelled_at IS NOT NULL
                           AND u.kind IN ('CANCEL', 'RETRY', 'RELEASE', 'SNOOZE')) AS keep_message
                   FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::jsonb[], $5::int8[],
                               $6::text[], $7::bool[], $9::int4[])
                        AS u(id, token, kind, result, delay, message, retryable, attempt)
                   JOIN __TABLE__ w ON w.id = u.id
                   ORDER BY u.id
                   FOR NO KEY UPDATE OF w),
                 upd AS (
                   UPDATE __TABLE__ j SET
                     status = u.st,
                     result_data = CASE WHEN u.kind IN ('COMPLETE', 'FAIL') THEN u.result
                                        ELSE j.result_data END,
                     completed_at = CASE WHEN u.st IN ('COMPLETED', 'FAILED', 'DEAD_LETTER')
                                         THEN now() ELSE j.completed_at END,
                     retry_count = j.retry_count + CASE WHEN u.st = 'RETRYING' THEN 1 ELSE 0 END,
                     run_at = CASE WHEN u.st IN ('RETRYING', 'SCHEDULED')
                                   THEN now() + u.delay * interval '1 microsecond'
                                   WHEN u.st = 'PENDING' THEN now() ELSE j.run_at END,
                     snoozes = j.snoozes + CASE WHEN u.kind = 'SNOOZE' AND u.st <> 'FAILED' THEN 1 ELSE 0 END,
                     error_message = CASE WHEN u.keep_message THEN coalesce(j.error_message, u.message)
                                          ELSE coalesce(u.message, j.error_message) END,
                     errors = CASE WHEN u.message IS NULL THEN j.errors
                                   ELSE jsonb_path_query_array(j.errors || jsonb_build_array(jsonb_build_object(
                                     'attempt', j.attempt, 'retry_count', j.retry_count,
                                     'at', now(), 'message', u.message,
                                     'retryable', u.retryable, 'worker', $8::text)), __KEEP_ERRORS__) END,
                     error_count = j.error_count + CASE WHEN u.message IS NULL THEN 0 ELSE 1 END,
                     cancelled_at = CASE WHEN u.kind = 'COMPLETE' THEN NULL
                                         WHEN u.kind = 'CANCEL' THEN coalesce(j.cancelled_at, now())
                                         ELSE j.cancelled_at END,
                     locked_by = NULL,
                     lease_until = NULL,
                     lease_token = NULL
                   FROM locked u
                   WHERE j.id = u.id __NOT_DROPPED__
                     AND __RUNNING__ AND j.lease_token = u.token AND j.attempt = u.attempt
                   RETURNING j.id, j.queue_name, j.status, j.run_at, j.conc_key, j.seq_key),
                 __DROPPING__
                 woke AS (
                   SELECT __WAKE__ AS w
                   FROM __DONE__ WHERE status IN ('PENDING', 'RETRYING', 'SCHEDULED')
                                  OR conc_key IS NOT NULL OR seq_key IS NOT NULL
                   HAVING count(*) > 0),
                 fin AS (
                   SELECT __FINISHED__ AS f
                   FROM __DONE__ WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER')
                   HAVING count(*) > 0)
                 SELECT id FROM __DONE__
                 UNION ALL SELECT NULL FROM woke
                 UNION ALL SELECT NULL FROM fin
