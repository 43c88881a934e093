-- Forgets up to ?2 starts whose window passed by ?1, whatever their key (so
-- keys no claim looks at any more do not keep their starts for ever).
DELETE FROM jobs_rate_log WHERE rowid IN (SELECT rowid FROM jobs_rate_log
    WHERE expires_at <= ?1 LIMIT ?2)
