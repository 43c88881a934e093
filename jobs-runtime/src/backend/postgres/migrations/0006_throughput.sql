-- jobs schema v6: throughput history. Per minute and per queue, how many
-- jobs became COMPLETED, FAILED (cancellations too), DEAD_LETTER and
-- RETRYING.
--
-- Kept by the statement-level update trigger of v5, which already computes
-- what each statement moved per (queue, status): from the same figures it
-- appends the moves into those four statuses to `job_throughput_deltas`, in
-- the same trigger call — the hot path gains one INSERT of a few rows inside
-- the statement, no round trip and no shared row. A move counts in the
-- minute of the transaction's `now()`. No statement moves jobs both into
-- and out of one of these statuses, so the net figure per status is the
-- number of moves into it. `fold_job_counts()` (the reaper's tick,
-- `counts()`, `throughput()`) also folds these deltas into `job_throughput`
-- and drops minutes older than a day.

CREATE TABLE __SCHEMA__.job_throughput (
    minute     timestamptz NOT NULL,
    queue_name text        NOT NULL,
    completed  bigint      NOT NULL,
    failed     bigint      NOT NULL,
    dead       bigint      NOT NULL,
    retried    bigint      NOT NULL,
    PRIMARY KEY (minute, queue_name)
);

CREATE TABLE __SCHEMA__.job_throughput_deltas (
    minute     timestamptz NOT NULL,
    queue_name text        NOT NULL,
    completed  bigint      NOT NULL,
    failed     bigint      NOT NULL,
    dead       bigint      NOT NULL,
    retried    bigint      NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0);

CREATE OR REPLACE FUNCTION __SCHEMA__.jobs_counted_update() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    WITH d AS (
        SELECT queue_name, status, sum(n) AS n FROM (
            SELECT queue_name, status, 1 AS n FROM new_rows
            UNION ALL
            SELECT queue_name, status, -1 AS n FROM old_rows) AS x
        GROUP BY queue_name, status
        HAVING sum(n) <> 0),
    counted AS (
        INSERT INTO __SCHEMA__.job_count_deltas (queue_name, status, n)
        SELECT queue_name, status, n FROM d)
    INSERT INTO __SCHEMA__.job_throughput_deltas
        (minute, queue_name, completed, failed, dead, retried)
    SELECT to_timestamp(floor(extract(epoch FROM now()) / 60) * 60), queue_name,
        coalesce(sum(n) FILTER (WHERE status = 'COMPLETED'), 0),
        coalesce(sum(n) FILTER (WHERE status = 'FAILED'), 0),
        coalesce(sum(n) FILTER (WHERE status = 'DEAD_LETTER'), 0),
        coalesce(sum(n) FILTER (WHERE status = 'RETRYING'), 0)
    FROM d
    WHERE n > 0 AND status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER', 'RETRYING')
    GROUP BY queue_name;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION __SCHEMA__.fold_job_counts() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    BEGIN
        LOCK TABLE __SCHEMA__.job_counts IN SHARE ROW EXCLUSIVE MODE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN;
    END;
    WITH moved AS (DELETE FROM __SCHEMA__.job_count_deltas RETURNING queue_name, status, n)
    INSERT INTO __SCHEMA__.job_counts AS c (queue_name, status, n)
    SELECT queue_name, status, sum(n) FROM moved
    GROUP BY queue_name, status
    ORDER BY queue_name, status
    ON CONFLICT (queue_name, status) DO UPDATE SET n = c.n + excluded.n;
    DELETE FROM __SCHEMA__.job_counts WHERE n = 0;
    -- The same lock makes this the only folder of the throughput too.
    WITH moved AS (DELETE FROM __SCHEMA__.job_throughput_deltas
                   RETURNING minute, queue_name, completed, failed, dead, retried)
    INSERT INTO __SCHEMA__.job_throughput AS t
        (minute, queue_name, completed, failed, dead, retried)
    SELECT minute, queue_name, sum(completed), sum(failed), sum(dead), sum(retried)
    FROM moved
    GROUP BY minute, queue_name
    ORDER BY minute, queue_name
    ON CONFLICT (minute, queue_name) DO UPDATE SET
        completed = t.completed + excluded.completed, failed = t.failed + excluded.failed,
        dead = t.dead + excluded.dead, retried = t.retried + excluded.retried;
    DELETE FROM __SCHEMA__.job_throughput WHERE minute < now() - interval '24 hours';
END
$fn$;

-- What `throughput()` returns: the buckets from `since` on, folded and
-- pending deltas summed (exact, as for `count_jobs()`).
CREATE FUNCTION __SCHEMA__.throughput_since(since timestamptz)
RETURNS TABLE (minute timestamptz, queue_name text, completed bigint, failed bigint,
               dead bigint, retried bigint)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM __SCHEMA__.fold_job_counts();
    RETURN QUERY
    SELECT x.minute, x.queue_name, sum(x.completed)::bigint, sum(x.failed)::bigint,
           sum(x.dead)::bigint, sum(x.retried)::bigint
    FROM (
        SELECT t.minute, t.queue_name, t.completed, t.failed, t.dead, t.retried
        FROM __SCHEMA__.job_throughput t WHERE t.minute >= since
        UNION ALL
        SELECT d.minute, d.queue_name, d.completed, d.failed, d.dead, d.retried
        FROM __SCHEMA__.job_throughput_deltas d WHERE d.minute >= since) AS x
    GROUP BY x.minute, x.queue_name;
END
$fn$;
