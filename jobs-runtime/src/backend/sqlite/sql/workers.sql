-- The workers whose entry lives after ?1, by id.
SELECT info FROM jobs_workers WHERE expires_at > ?1 ORDER BY id
