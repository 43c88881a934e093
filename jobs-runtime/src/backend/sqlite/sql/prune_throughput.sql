-- Drops the throughput buckets of minutes before ?1.
DELETE FROM jobs_throughput WHERE minute < ?1
