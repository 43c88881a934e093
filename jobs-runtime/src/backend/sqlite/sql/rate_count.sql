-- How many jobs of rate key ?1 started after ?2.
SELECT COUNT(*) FROM jobs_rate_log WHERE key = ?1 AND at > ?2
