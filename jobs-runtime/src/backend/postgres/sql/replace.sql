-- Debounce: a waiting holder of a unique key takes the new job's payload,
-- options and due time (a RETRYING one stays RETRYING). A holder that is no
-- longer waiting is left alone (no row: the new job is its duplicate).
                 WITH upd AS (
                   UPDATE __TABLE__ j SET
                     payload = $2, metadata = $3, priority = $4, max_retries = $5, timeout_ms = $6,
                     run_at = d.due,
                     status = CASE WHEN j.status = 'RETRYING' THEN 'RETRYING'
                                   WHEN d.due > now() THEN 'SCHEDULED' ELSE 'PENDING' END
                   FROM (SELECT coalesce($7::timestamptz, now() + $8::int8 * interval '1 microsecond', now()) AS due) d
                   WHERE j.id = $1 AND j.status IN __WAITING__
                   RETURNING j.id, j.queue_name, j.status),
                 woke AS (SELECT __WAKE__ AS w FROM upd HAVING count(*) > 0)
                 SELECT upd.id FROM upd LEFT JOIN woke ON true
