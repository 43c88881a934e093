-- The oldest expired leases, locked in `id` order like every statement that
-- updates several jobs (see heartbeat.sql), skipping rows another statement
-- holds: those belong to a live outcome or heartbeat. The update joins the
-- locked ids by primary key (`__RUNNING__` keeps the planner off the lease
-- index, which would be scanned once per expired row). A job whose
-- cancellation was requested ends FAILED, its error still saying who
-- cancelled it and why. `fin` tells handles awaiting the jobs it ended
-- (one NOTIFY per call at most).
                     WITH candidates AS MATERIALIZED (
                       SELECT id FROM __TABLE__
                       WHERE status = 'RUNNING' AND lease_until < now()
                       ORDER BY lease_until
                       LIMIT 1000),
                     expired AS MATERIALIZED (
                       SELECT j.id FROM candidates c JOIN __TABLE__ j ON j.id = c.id
                       WHERE j.status = 'RUNNING' AND j.lease_until < now()
                       ORDER BY j.id
                       FOR NO KEY UPDATE OF j SKIP LOCKED),
                     before AS (SELECT __COLS__ FROM __TABLE__ WHERE id = ANY(ARRAY(SELECT id FROM expired))),
                     upd AS (
                       UPDATE __TABLE__ j SET
                         status = CASE WHEN j.cancelled_at IS NOT NULL THEN 'FAILED'
                                       WHEN j.retry_count < j.max_retries
                                       THEN 'RETRYING' ELSE 'DEAD_LETTER' END,
                         retry_count = j.retry_count
                                       + CASE WHEN j.cancelled_at IS NULL
                                               AND j.retry_count < j.max_retries THEN 1 ELSE 0 END,
                         run_at = CASE WHEN j.cancelled_at IS NULL AND j.retry_count < j.max_retries
                                       THEN now() ELSE j.run_at END,
                         completed_at = CASE WHEN j.cancelled_at IS NULL AND j.retry_count < j.max_retries
                                             THEN j.completed_at ELSE now() END,
                         error_message = CASE WHEN j.cancelled_at IS NOT NULL
                                              THEN coalesce(j.error_message, __LEASE_EXPIRED__)
                                              ELSE __LEASE_EXPIRED__ END,
                         errors = jsonb_path_query_array(j.errors || jsonb_build_array(jsonb_build_object(
                           'attempt', j.attempt, 'retry_count', j.retry_count, 'at', now(),
                           'message', __LEASE_EXPIRED__, 'retryable', true, 'worker', j.locked_by)),
                           __KEEP_ERRORS__),
                         error_count = j.error_count + 1,
                         locked_by = NULL,
                         lease_until = NULL,
                         lease_token = NULL
                       FROM expired e
                       WHERE j.id = e.id AND __RUNNING__ AND j.lease_until < now()
                       RETURNING j.id, j.queue_name, j.status, j.conc_key, j.seq_key),
                     woke AS (
                       SELECT __WAKE__ AS w
                       FROM upd WHERE status = 'RETRYING' OR conc_key IS NOT NULL OR seq_key IS NOT NULL
                       HAVING count(*) > 0),
                     fin AS (
                       SELECT __FINISHED__ AS f
                       FROM upd WHERE status IN ('FAILED', 'DEAD_LETTER')
                       HAVING count(*) > 0)
                     SELECT b.*, u.status AS new_status
                     FROM before b JOIN upd u ON u.id = b.id
                     LEFT JOIN woke ON true
                     LEFT JOIN fin ON true
