-- Finished jobs of the given statuses (and queue, if any), oldest first.
                 DELETE FROM __TABLE__ WHERE id IN (
                   SELECT id FROM __TABLE__
                   WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER') AND completed_at < $1
                     AND status = ANY($3::text[]) AND ($4::text IS NULL OR queue_name = $4)
                   ORDER BY completed_at
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)
