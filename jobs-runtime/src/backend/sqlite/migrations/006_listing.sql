-- jobs schema, version 6: the orders of `list_page`, each one walk of an
-- index from the cursor on (so a deep page costs what the first one does).
--
-- Oldest / newest first: `seq` is the rowid. With a status filter, this one
-- (every SQLite index ends with the rowid, so it is (status, seq)):
CREATE INDEX jobs_queue_status ON jobs_queue (status);

-- Due soonest: waiting jobs by run_at, then enqueue order.
CREATE INDEX jobs_queue_due ON jobs_queue (run_at, seq)
WHERE status IN ('PENDING', 'SCHEDULED', 'RETRYING');

-- Recently finished: finished jobs by completion time, then id. It also
-- serves pruning (completion time first), so the older index of finished
-- jobs by completion time alone goes.
CREATE INDEX jobs_queue_done ON jobs_queue (completed_at, id)
WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER');
DROP INDEX jobs_queue_finished;
