-- The first ?2 jobs whose lease ran out before ?1, earliest first.
SELECT {JOB_COLS} FROM jobs_queue WHERE status = 'RUNNING' AND lease_until < ?1
ORDER BY lease_until LIMIT ?2
