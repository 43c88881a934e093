-- Appends an audit entry: ?1 at, ?2 actor, ?3 action, ?4 target, ?5 ok,
-- ?6 detail.
INSERT INTO jobs_audit (at, actor, action, target, ok, detail)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
