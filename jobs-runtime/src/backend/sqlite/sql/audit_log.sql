-- Audit entries before ?1, newest first (by time, then the order appended):
-- ?2 rows from the ?3-th.
SELECT at, actor, action, target, ok, detail FROM jobs_audit
WHERE at < ?1 ORDER BY at DESC, seq DESC LIMIT ?2 OFFSET ?3
