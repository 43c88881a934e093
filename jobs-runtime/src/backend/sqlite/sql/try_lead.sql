-- Takes or renews role ?1 for holder ?2 until ?3, if it is free at ?4 (no
-- holder, or one whose lease ran out) or ?2 holds it already. Returns a row
-- if ?2 holds it now.
INSERT INTO jobs_leaders (role, holder, until) VALUES (?1, ?2, ?3)
ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE jobs_leaders.holder = excluded.holder OR jobs_leaders.until <= ?4
RETURNING holder
