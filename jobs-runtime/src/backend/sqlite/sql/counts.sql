-- How many jobs each queue has in each status: the counters the triggers of
-- migration 4 keep in step with every change of `jobs_queue`, not a scan of it.
SELECT queue, status, n FROM jobs_counts WHERE n > 0
ORDER BY queue, status
