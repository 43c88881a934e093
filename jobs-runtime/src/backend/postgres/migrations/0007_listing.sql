-- jobs schema v7: the orders of `list_page`, each one walk of an index from
-- the cursor on, so a deep page costs what the first one does.
--
-- Built in the migration's transaction (not CONCURRENTLY): on a big table the
-- upgrade holds writes back while they are built (about 1-2 s per million jobs).

-- Oldest / newest first (enqueue order), and the same within one status.
CREATE INDEX jobs_seq_idx ON __SCHEMA__.jobs (seq);
CREATE INDEX jobs_status_seq_idx ON __SCHEMA__.jobs (status, seq);

-- Due soonest: waiting jobs by run_at, then enqueue order.
CREATE INDEX jobs_due_order_idx ON __SCHEMA__.jobs (run_at, seq)
    WHERE status IN ('PENDING', 'SCHEDULED', 'RETRYING');

-- Recently finished: finished jobs by completion time, then id. Pruning (by
-- completion time) uses it too, so the older index on completion time alone goes.
CREATE INDEX jobs_done_idx ON __SCHEMA__.jobs (completed_at, id)
    WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER');
DROP INDEX __SCHEMA__.jobs_finished_idx;
