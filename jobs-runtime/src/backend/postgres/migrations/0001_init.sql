-- jobs schema v1. `__SCHEMA__` is replaced by the quoted schema name at connect.

CREATE TABLE __SCHEMA__.jobs (
    id            uuid        PRIMARY KEY,
    -- Enqueue order: the last tie-breaker of the claim order, and the order of `list`.
    seq           bigint      GENERATED ALWAYS AS IDENTITY,
    queue_name    text        NOT NULL,
    job_type      text        NOT NULL,
    payload       jsonb       NOT NULL,
    status        text        NOT NULL CHECK (status IN
                  ('PENDING', 'SCHEDULED', 'RUNNING', 'COMPLETED', 'FAILED', 'RETRYING', 'DEAD_LETTER')),
    priority      integer     NOT NULL DEFAULT 0,
    retry_count   integer     NOT NULL DEFAULT 0,
    max_retries   integer     NOT NULL,
    run_at        timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    completed_at  timestamptz,
    error_message text,
    errors        jsonb       NOT NULL DEFAULT '[]',
    result_data   jsonb,
    metadata      jsonb       NOT NULL DEFAULT '{}',
    locked_by     text,
    lease_until   timestamptz,
    attempt       integer     NOT NULL DEFAULT 0
);

-- The claim path: only waiting rows are indexed, in claim order within a queue,
-- so finished and running rows never cost a claim anything however many there are.
CREATE INDEX jobs_claim_idx ON __SCHEMA__.jobs (queue_name, priority DESC, run_at, seq)
    WHERE status IN ('PENDING', 'SCHEDULED', 'RETRYING');

-- The earliest future job per queue, for the listener's wake-up timer.
CREATE INDEX jobs_due_idx ON __SCHEMA__.jobs (queue_name, run_at)
    WHERE status IN ('SCHEDULED', 'RETRYING');

-- Expired leases, for the reaper.
CREATE INDEX jobs_lease_idx ON __SCHEMA__.jobs (lease_until)
    WHERE status = 'RUNNING';

-- Finished jobs by age, for pruning.
CREATE INDEX jobs_finished_idx ON __SCHEMA__.jobs (completed_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER');

-- One NOTIFY per statement: the payload lists the queues that got claimable work,
-- and a final `!` token when a future run_at was stored (listeners re-read their timer).
-- Payloads are capped well below PostgreSQL's 8000-byte limit; `*` means "any queue".
CREATE FUNCTION __SCHEMA__.wake(queues text[], refresh boolean) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify(
        __CHANNEL__,
        CASE WHEN octet_length(p) > 7000 THEN '* !' ELSE p END)
    FROM (SELECT array_to_string(queues, ' ') || CASE WHEN refresh THEN ' !' ELSE '' END AS p) AS s
    WHERE coalesce(cardinality(queues), 0) > 0
$$;
