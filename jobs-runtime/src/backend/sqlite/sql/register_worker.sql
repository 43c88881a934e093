-- Registers or refreshes worker ?1 (?2 its WorkerInfo as JSON) until ?3.
INSERT INTO jobs_workers (id, info, expires_at) VALUES (?1, ?2, ?3)
ON CONFLICT (id) DO UPDATE SET info = excluded.info, expires_at = excluded.expires_at
