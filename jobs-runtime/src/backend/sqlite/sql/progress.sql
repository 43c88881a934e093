-- Stores progress ?3 (JSON) of job ?1 if it is still RUNNING under lease
-- token ?2.
UPDATE jobs_queue SET progress = ?3
WHERE id = ?1 AND lease_token = ?2 AND status = 'RUNNING'
