-- Deletes job ?1 unless it runs. Its unique key and its place in a sequence
-- go with its row.
DELETE FROM jobs_queue WHERE id = ?1 AND status != 'RUNNING' RETURNING seq
