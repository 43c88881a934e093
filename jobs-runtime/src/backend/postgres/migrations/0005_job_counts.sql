-- jobs schema v5: `counts()` without scanning the jobs table.
--
-- Every statement that inserts, updates or deletes jobs appends what it
-- changed per (queue, status) to `job_count_deltas`, from statement-level
-- triggers with transition tables: one row per (queue, status) a statement
-- touched, in the statement's own transaction, whoever wrote it (this
-- backend, a caller's transaction, hand-written SQL). Writers only ever
-- INSERT there, into a heap without indexes: no row is shared, so claimers
-- and recorders neither wait on a hot counter row nor can deadlock over one.
-- `count_jobs()` folds the committed deltas into `job_counts` (one compactor
-- at a time; the others skip) and returns the sums: exact under MVCC, since
-- a delta commits or rolls back with the change it describes and a fold
-- moves deltas into totals in one transaction.

-- Writers take this lock mode, so no job changes while the totals are filled.
LOCK TABLE __SCHEMA__.jobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE __SCHEMA__.job_counts (
    queue_name text   NOT NULL,
    status     text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (queue_name, status)
);

-- Appended to by every statement that changes jobs, emptied by each fold;
-- vacuumed eagerly so that reading it stays a scan of a few pages.
CREATE TABLE __SCHEMA__.job_count_deltas (
    queue_name text   NOT NULL,
    status     text   NOT NULL,
    n          bigint NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0);

CREATE FUNCTION __SCHEMA__.jobs_counted_insert() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO __SCHEMA__.job_count_deltas (queue_name, status, n)
    SELECT queue_name, status, count(*) FROM new_rows GROUP BY queue_name, status;
    RETURN NULL;
END
$fn$;

-- Rows whose status did not change (heartbeats, progress) cancel out.
CREATE FUNCTION __SCHEMA__.jobs_counted_update() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO __SCHEMA__.job_count_deltas (queue_name, status, n)
    SELECT queue_name, status, sum(n) FROM (
        SELECT queue_name, status, 1 AS n FROM new_rows
        UNION ALL
        SELECT queue_name, status, -1 AS n FROM old_rows) AS d
    GROUP BY queue_name, status
    HAVING sum(n) <> 0;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION __SCHEMA__.jobs_counted_delete() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO __SCHEMA__.job_count_deltas (queue_name, status, n)
    SELECT queue_name, status, -count(*) FROM old_rows GROUP BY queue_name, status;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION __SCHEMA__.jobs_counted_truncate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- The fold's lock first, as `count_jobs()` takes it.
    LOCK TABLE __SCHEMA__.job_counts IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM __SCHEMA__.job_counts;
    DELETE FROM __SCHEMA__.job_count_deltas;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER jobs_counted_insert AFTER INSERT ON __SCHEMA__.jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.jobs_counted_insert();
CREATE TRIGGER jobs_counted_update AFTER UPDATE ON __SCHEMA__.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.jobs_counted_update();
CREATE TRIGGER jobs_counted_delete AFTER DELETE ON __SCHEMA__.jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.jobs_counted_delete();
CREATE TRIGGER jobs_counted_truncate AFTER TRUNCATE ON __SCHEMA__.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.jobs_counted_truncate();

-- Folds the committed deltas into the totals, unless another session is
-- folding right now (then they stay for the next fold; reading is exact
-- either way). The lock conflicts with itself, not with readers.
CREATE FUNCTION __SCHEMA__.fold_job_counts() RETURNS void
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
END
$fn$;

-- What `counts()` returns: the jobs per (queue, status) that has any. Each
-- statement of a function reads a snapshot of its own (READ COMMITTED): the
-- sums see the fold just made, and every delta committed since.
CREATE FUNCTION __SCHEMA__.count_jobs() RETURNS TABLE (queue_name text, status text, n bigint)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM __SCHEMA__.fold_job_counts();
    RETURN QUERY
    SELECT x.queue_name, x.status, sum(x.n)::bigint FROM (
        SELECT c.queue_name, c.status, c.n FROM __SCHEMA__.job_counts c
        UNION ALL
        SELECT d.queue_name, d.status, d.n FROM __SCHEMA__.job_count_deltas d) AS x
    GROUP BY x.queue_name, x.status
    HAVING sum(x.n) > 0;
END
$fn$;

-- The jobs stored so far (under the lock above, so nothing moves meanwhile).
INSERT INTO __SCHEMA__.job_counts (queue_name, status, n)
SELECT queue_name, status, count(*) FROM __SCHEMA__.jobs GROUP BY queue_name, status;
