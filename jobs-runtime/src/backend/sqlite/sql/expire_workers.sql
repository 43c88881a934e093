-- Forgets the workers whose entry expired at or before ?1.
DELETE FROM jobs_workers WHERE expires_at <= ?1
