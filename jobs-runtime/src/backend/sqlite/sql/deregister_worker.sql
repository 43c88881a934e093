-- Forgets worker ?1.
DELETE FROM jobs_workers WHERE id = ?1
