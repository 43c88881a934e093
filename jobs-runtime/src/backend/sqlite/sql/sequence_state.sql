-- Sequence ?1: its oldest unfinished job (by created_at, then seq), the only
-- one that may start, and whether one of its jobs runs.
SELECT (SELECT seq FROM jobs_queue
        WHERE sequence_key = ?1 AND status IN {UNFINISHED}
        ORDER BY created_at, seq LIMIT 1),
    EXISTS (SELECT 1 FROM jobs_queue
        WHERE sequence_key = ?1 AND status IN {UNFINISHED}
            AND status = 'RUNNING')
