-- Pauses queue ?1 (at ?2; pausing again keeps the first time).
INSERT INTO jobs_paused (queue, paused_at) VALUES (?1, ?2)
ON CONFLICT (queue) DO NOTHING
