-- Resumes queue ?1.
DELETE FROM jobs_paused WHERE queue = ?1
