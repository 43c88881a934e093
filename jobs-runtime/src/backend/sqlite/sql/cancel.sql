-- Cancels job ?2 at ?1 with message ?3. A waiting one becomes FAILED at once,
-- marked by cancelled_at. A RUNNING one stays RUNNING, marked (once: a second
-- request keeps the first one's time and message); its worker stops it.
UPDATE jobs_queue SET
    status = CASE WHEN status = 'RUNNING' THEN status ELSE 'FAILED' END,
    completed_at = CASE WHEN status = 'RUNNING' THEN completed_at ELSE ?1 END,
    error_message = CASE WHEN cancelled_at IS NOT NULL THEN error_message ELSE ?3 END,
    cancelled_at = COALESCE(cancelled_at, ?1)
WHERE id = ?2 AND {UNFINISHED} RETURNING {JOB_COLS}
