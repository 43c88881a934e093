-- jobs schema v3: lease tokens fence outcomes and heartbeats; the error
-- history is capped and counted; cancelled jobs are marked; jobs carry their
-- own time limit.

-- The random token of the current lease (NULL unless RUNNING): an outcome or
-- heartbeat applies only under it, so a claim a database crash undid and
-- re-made under the same attempt number is never mistaken for the old one.
ALTER TABLE __SCHEMA__.jobs
    ADD COLUMN lease_token  bigint,
    -- Every failed attempt, also those dropped from the capped `errors` history.
    ADD COLUMN error_count  integer NOT NULL DEFAULT 0,
    -- When an operator cancelled the job (it is FAILED with error `cancelled`).
    ADD COLUMN cancelled_at timestamptz,
    -- The job's own time limit per attempt in milliseconds, 0 for none; NULL:
    -- its handler's or the manager's.
    ADD COLUMN timeout_ms   bigint;

-- Jobs stored before: their history holds every failure so far, and a FAILED
-- job whose error is exactly `cancelled` was cancelled when it completed.
UPDATE __SCHEMA__.jobs SET error_count = jsonb_array_length(errors)
    WHERE jsonb_array_length(errors) > 0;
UPDATE __SCHEMA__.jobs SET cancelled_at = completed_at
    WHERE status = 'FAILED' AND error_message = 'cancelled';
