-- jobs schema, version 3: unique jobs, limits, snoozes, progress, paused
-- queues, the worker registry, leadership, schedules, the rate log and the
-- audit log.
--
-- `snoozes`: how many times a handler said "not now".
ALTER TABLE jobs_queue ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0;

-- `progress`: the latest progress its handler reported (JSON), kept after it
-- finished.
ALTER TABLE jobs_queue ADD COLUMN progress TEXT;

-- Unique jobs: `unique_key` is the key as stored (with its period's bucket),
-- `unique_states` the bit set of the statuses in which the job holds it (bit
-- n = the n-th status: PENDING 1, SCHEDULED 2, RUNNING 4, COMPLETED 8,
-- FAILED 16, RETRYING 32, DEAD_LETTER 64).
ALTER TABLE jobs_queue ADD COLUMN unique_key TEXT;
ALTER TABLE jobs_queue ADD COLUMN unique_states INTEGER;

-- The store enforces uniqueness: at most one row per key among the rows whose
-- status is in their own bit set. The WHERE is deterministic, so SQLite keeps
-- the index in step with every change of status: an insert or an update (a
-- requeue) that would make a second holder fails with a constraint error.
CREATE UNIQUE INDEX jobs_queue_unique ON jobs_queue (unique_key)
WHERE unique_key IS NOT NULL
    AND (unique_states & (CASE status
        WHEN 'PENDING' THEN 1 WHEN 'SCHEDULED' THEN 2 WHEN 'RUNNING' THEN 4
        WHEN 'COMPLETED' THEN 8 WHEN 'FAILED' THEN 16 WHEN 'RETRYING' THEN 32
        WHEN 'DEAD_LETTER' THEN 64 ELSE 0 END)) != 0;

-- A job's own limits, one column per field (NULL: none).
ALTER TABLE jobs_queue ADD COLUMN concurrency_key TEXT;
ALTER TABLE jobs_queue ADD COLUMN concurrency_max INTEGER;
ALTER TABLE jobs_queue ADD COLUMN rate_key TEXT;
ALTER TABLE jobs_queue ADD COLUMN rate_max INTEGER;
ALTER TABLE jobs_queue ADD COLUMN rate_per_ms INTEGER;
ALTER TABLE jobs_queue ADD COLUMN sequence_key TEXT;

-- What runs per concurrency key.
CREATE INDEX jobs_queue_running_keys ON jobs_queue (concurrency_key)
WHERE status = 'RUNNING' AND concurrency_key IS NOT NULL;

-- The unfinished jobs of each sequence, in enqueue order (the first one is
-- the only one that may be claimed).
CREATE INDEX jobs_queue_sequences ON jobs_queue (sequence_key, created_at, seq)
WHERE sequence_key IS NOT NULL
    AND status IN ('PENDING', 'SCHEDULED', 'RUNNING', 'RETRYING');

-- What runs per queue (for a queue's global cap).
CREATE INDEX jobs_queue_running_queues ON jobs_queue (queue)
WHERE status = 'RUNNING';

-- Start times per rate key (a job's key, or `queue:<name>`), at claim time,
-- each kept until its window has passed (`expires_at`): claims forget the
-- expired starts of the keys they look at, and sweep a few others' too.
CREATE TABLE jobs_rate_log (
    key        TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX jobs_rate_log_key ON jobs_rate_log (key, at);
CREATE INDEX jobs_rate_log_expiry ON jobs_rate_log (expires_at);

-- Paused queues: not claimed until resumed.
CREATE TABLE jobs_paused (
    queue     TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL
);

-- Running workers (a `WorkerInfo` as JSON), each until `expires_at`.
CREATE TABLE jobs_workers (
    id         TEXT PRIMARY KEY,
    info       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Who holds a role, until when.
CREATE TABLE jobs_leaders (
    role   TEXT PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
);

-- Periodic schedules' stored state.
CREATE TABLE jobs_schedules (
    name       TEXT PRIMARY KEY,
    cron       TEXT    NOT NULL,
    timezone   TEXT    NOT NULL,
    last_tick  INTEGER,
    last_job   BLOB,
    next_tick  INTEGER,
    updated_at INTEGER NOT NULL
);

-- The audit log, in the order appended (`seq`).
CREATE TABLE jobs_audit (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    ok     INTEGER NOT NULL,
    detail TEXT    NOT NULL
);
CREATE INDEX jobs_audit_at ON jobs_audit (at, seq);
