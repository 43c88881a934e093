-- Gives up role ?1 if holder ?2 holds it.
DELETE FROM jobs_leaders WHERE role = ?1 AND holder = ?2
