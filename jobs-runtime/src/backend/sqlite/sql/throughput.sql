-- The throughput buckets whose minute starts at or after ?1.
SELECT minute, queue, completed, failed, dead, retried FROM jobs_throughput
WHERE minute >= ?1 ORDER BY minute, queue
