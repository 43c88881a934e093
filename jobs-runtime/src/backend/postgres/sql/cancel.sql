-- A waiting job becomes FAILED at once, marked, and handles awaiting it are
-- told (`fin`); a RUNNING one is only marked (its worker stops it and
-- records `Cancel`), and keeps the first request's message if asked twice.
                 WITH upd AS (
                   UPDATE __TABLE__ SET
                     status = CASE WHEN status = 'RUNNING' THEN status ELSE 'FAILED' END,
                     error_message = CASE WHEN status = 'RUNNING' AND cancelled_at IS NOT NULL
                                          THEN error_message ELSE $2 END,
                     completed_at = CASE WHEN status = 'RUNNING' THEN completed_at ELSE now() END,
                     cancelled_at = coalesce(cancelled_at, now())
                   WHERE id = $1 AND status IN ('PENDING', 'SCHEDULED', 'RETRYING', 'RUNNING')
                   RETURNING __COLS__),
                 fin AS (
                   SELECT __FINISHED__ AS f
                   FROM upd WHERE status = 'FAILED'
                   HAVING count(*) > 0)
                 SELECT upd.* FROM upd LEFT JOIN fin ON true
