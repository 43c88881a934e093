-- Deletes up to ?2 finished jobs in the statuses {statuses} completed before
-- ?1 ({queue}: of queue ?3 only, or of any), oldest first.
DELETE FROM jobs_queue WHERE seq IN (SELECT seq FROM jobs_queue
    WHERE (status = 'COMPLETED' OR status = 'FAILED' OR status = 'DEAD_LETTER')
        AND status IN ({statuses}) AND completed_at < ?1{queue}
    ORDER BY completed_at LIMIT ?2)
