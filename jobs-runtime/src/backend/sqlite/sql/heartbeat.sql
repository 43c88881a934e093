-- Extends to ? the leases that worker ? still holds, of {values} rows of
-- (id, lease_token); says of each whether its cancellation was requested.
UPDATE jobs_queue SET lease_until = ? FROM (VALUES {values}) AS v
WHERE jobs_queue.id = v.column1 AND jobs_queue.lease_token = v.column2
    AND jobs_queue.status = 'RUNNING' AND jobs_queue.locked_by = ?
RETURNING jobs_queue.id, jobs_queue.cancelled_at IS NOT NULL
