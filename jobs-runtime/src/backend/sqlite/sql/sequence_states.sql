-- For each sequence key of the JSON array ?1: its oldest unfinished job (by
-- created_at, then seq), the only one that may start, and whether one of its
-- jobs runs.
SELECT k.value,
    (SELECT seq FROM jobs_queue
        WHERE sequence_key = k.value AND {UNFINISHED}
        ORDER BY created_at, seq LIMIT 1),
    EXISTS (SELECT 1 FROM jobs_queue
        WHERE sequence_key = k.value AND status = 'RUNNING')
FROM json_each(?1) AS k
