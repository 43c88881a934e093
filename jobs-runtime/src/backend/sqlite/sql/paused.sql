-- The paused queues, by name.
SELECT queue FROM jobs_paused ORDER BY queue
