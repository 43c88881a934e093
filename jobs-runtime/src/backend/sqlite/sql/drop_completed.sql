-- Deletes the listed attempts that still hold their lease, as completed and
-- not kept (a retention that keeps no completed jobs): {values} rows of
-- (id, lease_token). The counts' delete trigger takes them out of RUNNING;
-- the caller adds them to the throughput history as completed
-- (count_dropped.sql), from the queues returned.
DELETE FROM jobs_queue
WHERE (id, lease_token, status) IN (
    SELECT column1, column2, 'RUNNING' FROM (VALUES {values}))
RETURNING id, queue
