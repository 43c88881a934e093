-- The first ?4 jobs due at ?1 of the queue at position {pos} (from 0) of the
-- request, bound as ?{param}, unless it is paused.
SELECT * FROM (SELECT {pos} AS qp, priority, run_at, seq, {LIMITED} AS limited
    FROM jobs_queue
    WHERE queue = ?{param} AND {WAITING} AND run_at <= ?1
        AND NOT EXISTS (SELECT 1 FROM jobs_paused WHERE queue = ?{param})
    ORDER BY priority DESC, run_at, seq LIMIT ?4)
