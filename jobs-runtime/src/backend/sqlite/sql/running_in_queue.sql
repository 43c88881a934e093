-- How many jobs of queue ?1 run.
SELECT COUNT(*) FROM jobs_queue WHERE queue = ?1 AND status = 'RUNNING'
