-- The unique key of job ?1, if it has one.
SELECT unique_key FROM jobs_queue WHERE id = ?1
