-- Debounce: waiting job ?1 takes a new job's payload ?2, metadata ?3,
-- priority ?4, max_retries ?5, timeout_ms ?6 and due time ?7 (?8 now). A
-- RETRYING job stays RETRYING; the others are PENDING or SCHEDULED by the
-- new due time.
UPDATE jobs_queue SET payload = ?2, metadata = ?3, priority = ?4,
    max_retries = ?5, timeout_ms = ?6, run_at = ?7,
    status = CASE WHEN status = 'RETRYING' THEN status
        WHEN ?7 > ?8 THEN 'SCHEDULED' ELSE 'PENDING' END
WHERE id = ?1 AND status IN ('PENDING', 'SCHEDULED', 'RETRYING')
