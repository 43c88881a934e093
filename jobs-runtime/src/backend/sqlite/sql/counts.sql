-- How many jobs each queue has in each status.
SELECT queue, status, COUNT(*) FROM jobs_queue GROUP BY queue, status
ORDER BY queue, status
