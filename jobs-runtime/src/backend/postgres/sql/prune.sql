                 DELETE FROM __TABLE__ WHERE id IN (
                   SELECT id FROM __TABLE__
                   WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER') AND completed_at < $1
                   ORDER BY completed_at
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)
