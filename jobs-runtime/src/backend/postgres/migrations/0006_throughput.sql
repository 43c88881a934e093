-- jobs schema v6: throughput history. Per minute and per queue, how many
-- jobs became COMPLETED, FAILED (cancellations too), DEAD_LETTER and
-- RETRYING.
--
-- It costs the hot path nothing new: the count deltas of v5 already say, per
-- statement, how many jobs it moved into each (queue, status); each delta
-- row now also carries when it was written (`at`, the transaction's
-- `now()`, a column default — no extra statement in the trigger). The fold
-- turns the positive deltas of those four statuses into per-minute buckets
-- of `job_throughput` while it moves the deltas into the totals, and drops
-- minutes older than a day. No statement moves jobs both into and out of one
-- of these statuses, so a statement's positive net figure for one is the
-- number of jobs it moved into it.

-- Writers take this lock mode, so no delta is written while the column is added.
LOCK TABLE __SCHEMA__.jobs IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE __SCHEMA__.job_count_deltas ADD COLUMN at timestamptz NOT NULL DEFAULT now();

CREATE TABLE __SCHEMA__.job_throughput (
    minute     timestamptz NOT NULL,
    queue_name text        NOT NULL,
    completed  bigint      NOT NULL,
    failed     bigint      NOT NULL,
    dead       bigint      NOT NULL,
    retried    bigint      NOT NULL,
    PRIMARY KEY (minute, queue_name)
);

CREATE OR REPLACE FUNCTION __SCHEMA__.fold_job_counts() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    BEGIN
        LOCK TABLE __SCHEMA__.job_counts IN SHARE ROW EXCLUSIVE MODE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN;
    END;
    WITH moved AS (
        DELETE FROM __SCHEMA__.job_count_deltas RETURNING queue_name, status, n, at),
    ended AS (
        INSERT INTO __SCHEMA__.job_throughput AS t
            (minute, queue_name, completed, failed, dead, retried)
        SELECT to_timestamp(floor(extract(epoch FROM at) / 60) * 60), queue_name,
            coalesce(sum(n) FILTER (WHERE status = 'COMPLETED'), 0),
            coalesce(sum(n) FILTER (WHERE status = 'FAILED'), 0),
            coalesce(sum(n) FILTER (WHERE status = 'DEAD_LETTER'), 0),
            coalesce(sum(n) FILTER (WHERE status = 'RETRYING'), 0)
        FROM moved
        WHERE n > 0 AND status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER', 'RETRYING')
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (minute, queue_name) DO UPDATE SET
            completed = t.completed + excluded.completed, failed = t.failed + excluded.failed,
            dead = t.dead + excluded.dead, retried = t.retried + excluded.retried)
    INSERT INTO __SCHEMA__.job_counts AS c (queue_name, status, n)
    SELECT queue_name, status, sum(n) FROM moved
    GROUP BY queue_name, status
    ORDER BY queue_name, status
    ON CONFLICT (queue_name, status) DO UPDATE SET n = c.n + excluded.n;
    DELETE FROM __SCHEMA__.job_counts WHERE n = 0;
    DELETE FROM __SCHEMA__.job_throughput WHERE minute < now() - interval '24 hours';
END
$fn$;

-- What `throughput()` returns: the buckets from `since` on, folded and from
-- the deltas not folded yet (exact, as for `count_jobs()`).
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
        SELECT to_timestamp(floor(extract(epoch FROM d.at) / 60) * 60), d.queue_name,
            CASE WHEN d.status = 'COMPLETED' THEN d.n ELSE 0 END,
            CASE WHEN d.status = 'FAILED' THEN d.n ELSE 0 END,
            CASE WHEN d.status = 'DEAD_LETTER' THEN d.n ELSE 0 END,
            CASE WHEN d.status = 'RETRYING' THEN d.n ELSE 0 END
        FROM __SCHEMA__.job_count_deltas d
        WHERE d.n > 0 AND d.status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER', 'RETRYING')
          AND to_timestamp(floor(extract(epoch FROM d.at) / 60) * 60) >= since) AS x
    GROUP BY x.minute, x.queue_name;
END
$fn$;
