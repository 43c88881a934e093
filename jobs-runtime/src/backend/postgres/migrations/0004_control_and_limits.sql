-- jobs schema v4: unique jobs, snoozes, progress, per-job limits; paused
-- queues, the worker registry, leadership, periodic schedules, the rate
-- log and the audit log.

ALTER TABLE __SCHEMA__.jobs
    -- How many times a handler snoozed the job.
    ADD COLUMN snoozes        integer  NOT NULL DEFAULT 0,
    -- The latest progress its handler reported (a serialized `Progress`).
    ADD COLUMN progress       jsonb,
    -- The unique key as stored (with its period's bucket), and the bit set
    -- of the statuses in which the job holds it (bit n: `JobStatus` n, in
    -- declaration order: PENDING 0 … DEAD_LETTER 6).
    ADD COLUMN unique_key     text,
    ADD COLUMN unique_states  smallint,
    -- The job's own limits (NULL: none of that kind).
    ADD COLUMN conc_key       text,
    ADD COLUMN conc_max       integer,
    ADD COLUMN rate_key       text,
    ADD COLUMN rate_max       integer,
    ADD COLUMN rate_per_us    bigint,
    ADD COLUMN seq_key        text;

-- At most one job holds a key while its status is in the job's own bit set:
-- the store enforces it, whatever the writers do. The predicate is an
-- immutable expression of the row, so a status change moves the row in or
-- out of the index (a finished job frees its key unless its set says not).
CREATE UNIQUE INDEX jobs_unique_idx ON __SCHEMA__.jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND (unique_states & (CASE status WHEN 'PENDING' THEN 1 WHEN 'SCHEDULED' THEN 2
                                        WHEN 'RUNNING' THEN 4 WHEN 'COMPLETED' THEN 8
                                        WHEN 'FAILED' THEN 16 WHEN 'RETRYING' THEN 32
                                        ELSE 64 END)::smallint) <> 0;

-- Running jobs per concurrency key and per sequence key (limited jobs only:
-- the others never enter these indexes).
CREATE INDEX jobs_running_conc_idx ON __SCHEMA__.jobs (conc_key)
    WHERE conc_key IS NOT NULL AND status = 'RUNNING';
CREATE INDEX jobs_running_seq_idx ON __SCHEMA__.jobs (seq_key)
    WHERE seq_key IS NOT NULL AND status = 'RUNNING';
-- The unfinished jobs of each sequence in enqueue order: the first is its head.
CREATE INDEX jobs_sequence_idx ON __SCHEMA__.jobs (seq_key, created_at, seq)
    WHERE seq_key IS NOT NULL AND status IN ('PENDING', 'SCHEDULED', 'RUNNING', 'RETRYING');

-- Queues no worker claims from until resumed.
CREATE TABLE __SCHEMA__.paused_queues (
    queue     text        PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);

-- Start times per rate key (jobs' keys and `queue:<name>`), logged at claim.
CREATE TABLE __SCHEMA__.rate_log (
    key text        NOT NULL,
    at  timestamptz NOT NULL
);
CREATE INDEX rate_log_idx ON __SCHEMA__.rate_log (key, at);

-- Running workers; an entry expires unless refreshed.
CREATE TABLE __SCHEMA__.workers (
    id         text        PRIMARY KEY,
    info       jsonb       NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Who holds a role, until when.
CREATE TABLE __SCHEMA__.leaders (
    role   text        PRIMARY KEY,
    holder text        NOT NULL,
    until  timestamptz NOT NULL
);

-- What the managers remember of periodic schedules.
CREATE TABLE __SCHEMA__.schedules (
    name       text        PRIMARY KEY,
    cron       text        NOT NULL,
    timezone   text        NOT NULL,
    last_tick  timestamptz,
    last_job   uuid,
    next_tick  timestamptz,
    updated_at timestamptz NOT NULL
);

-- Operator actions, in the order appended.
CREATE TABLE __SCHEMA__.audit_log (
    seq    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL,
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text        NOT NULL,
    ok     boolean     NOT NULL,
    detail text        NOT NULL
);
CREATE INDEX audit_log_at_idx ON __SCHEMA__.audit_log (at, seq);
