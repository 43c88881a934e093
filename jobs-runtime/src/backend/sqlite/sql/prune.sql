-- Deletes up to ?2 finished jobs completed before ?1, oldest first.
DELETE FROM jobs_queue WHERE seq IN (SELECT seq FROM jobs_queue
    WHERE status IN {TERMINAL} AND completed_at < ?1 ORDER BY completed_at LIMIT ?2)
