-- jobs schema, version 1.
--
-- One row per job. `seq` (the rowid) is the enqueue order; timestamps are
-- integer microseconds since the Unix epoch (UTC), so they sort and compare as
-- numbers; JSON columns are text.
CREATE TABLE jobs_queue (
    seq           INTEGER PRIMARY KEY,
    id            BLOB    NOT NULL UNIQUE,
    queue         TEXT    NOT NULL,
    job_type      TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    retry_count   INTEGER NOT NULL DEFAULT 0,
    max_retries   INTEGER NOT NULL,
    run_at        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    completed_at  INTEGER,
    error_message TEXT,
    errors        TEXT,
    result_data   TEXT,
    metadata      TEXT,
    locked_by     TEXT,
    lease_until   INTEGER,
    attempt       INTEGER NOT NULL DEFAULT 0
);

-- The claim path: waiting jobs only, in claim order within a queue. Finished
-- and running rows are not in it, so claim cost does not grow with history.
CREATE INDEX jobs_queue_ready
    ON jobs_queue (queue, priority DESC, run_at)
    WHERE status IN ('PENDING', 'SCHEDULED', 'RETRYING');

-- Lease recovery: running jobs by lease end.
CREATE INDEX jobs_queue_leases
    ON jobs_queue (lease_until)
    WHERE status = 'RUNNING';

-- Pruning: finished jobs by completion time.
CREATE INDEX jobs_queue_finished
    ON jobs_queue (completed_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER');
