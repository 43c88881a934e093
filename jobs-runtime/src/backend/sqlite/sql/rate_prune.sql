-- Forgets the starts of rate key ?1 at or before ?2 (out of every window).
DELETE FROM jobs_rate_log WHERE key = ?1 AND at <= ?2
