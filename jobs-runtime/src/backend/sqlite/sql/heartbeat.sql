-- Extends to ? the leases that worker ? still holds, of {values} rows of
-- (id, attempt).
UPDATE jobs_queue SET lease_until = ? FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2
    AND jobs_queue.status = 'RUNNING' AND jobs_queue.locked_by = ?
RETURNING jobs_queue.id
