-- Cancels job ?2 at ?1 if it is still waiting: FAILED, its error
-- `cancelled`, marked by cancelled_at.
UPDATE jobs_queue SET status = 'FAILED', error_message = 'cancelled',
    completed_at = ?1, cancelled_at = ?1
WHERE id = ?2 AND status IN {WAITING} RETURNING {JOB_COLS}
