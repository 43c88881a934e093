-- Makes failed or dead-lettered job ?2 due again at ?1, its retries reset and
-- its cancelled mark cleared.
UPDATE jobs_queue SET status = 'PENDING', retry_count = 0, run_at = ?1,
    completed_at = NULL, cancelled_at = NULL
WHERE id = ?2 AND status IN ('FAILED', 'DEAD_LETTER')
RETURNING {JOB_COLS}
