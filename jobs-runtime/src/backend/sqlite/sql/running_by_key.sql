-- How many jobs of concurrency key ?1 run.
SELECT COUNT(*) FROM jobs_queue
WHERE concurrency_key = ?1 AND status = 'RUNNING'
