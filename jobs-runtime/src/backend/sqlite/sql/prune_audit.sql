-- Deletes up to ?2 audit entries older than ?1, oldest first.
DELETE FROM jobs_audit WHERE seq IN (SELECT seq FROM jobs_audit
    WHERE at < ?1 ORDER BY at, seq LIMIT ?2)
