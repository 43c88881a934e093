-- Whether any lease ran out before ?1.
SELECT 1 FROM jobs_queue WHERE status = 'RUNNING' AND lease_until < ?1 LIMIT 1
