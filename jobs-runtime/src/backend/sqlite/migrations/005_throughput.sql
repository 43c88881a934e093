-- jobs schema, version 5: throughput history. Per minute (its start, integer
-- microseconds since the Unix epoch) and per queue, how many jobs became
-- COMPLETED, FAILED (cancellations too), DEAD_LETTER and RETRYING.
--
-- Kept by a row trigger like the counts of version 4, inside the statement
-- that changes a job, so every writer of the file is counted and a counter
-- commits or rolls back with its change. Only a move into one of the four
-- statuses writes, one upsert of a row per (minute, queue): a batch of
-- outcomes touches the same row again and again, in pages already cached.
-- The minute is SQLite's 'now' (the system clock, which this backend's clock
-- is), fixed for the statement. Rows older than a day go when jobs are pruned.
CREATE TABLE jobs_throughput (
    minute    INTEGER NOT NULL,
    queue     TEXT    NOT NULL,
    completed INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    dead      INTEGER NOT NULL,
    retried   INTEGER NOT NULL,
    PRIMARY KEY (minute, queue)
) WITHOUT ROWID;

CREATE TRIGGER jobs_throughput_update AFTER UPDATE OF status ON jobs_queue
WHEN old.status IS NOT new.status
    AND new.status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER', 'RETRYING')
BEGIN
    INSERT INTO jobs_throughput (minute, queue, completed, failed, dead, retried)
    VALUES (CAST(strftime('%s', 'now') AS INTEGER) / 60 * 60000000, new.queue,
        new.status = 'COMPLETED', new.status = 'FAILED', new.status = 'DEAD_LETTER',
        new.status = 'RETRYING')
    ON CONFLICT (minute, queue) DO UPDATE SET
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        dead = dead + excluded.dead,
        retried = retried + excluded.retried;
END;
