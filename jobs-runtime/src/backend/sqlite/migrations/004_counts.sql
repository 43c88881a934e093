-- jobs schema, version 4: how many jobs each queue has in each status, kept
-- by triggers, so `counts()` reads a handful of rows instead of scanning every
-- job ever kept.
--
-- The triggers run inside the statement that changes a job, so the counter
-- commits (or rolls back) with the change itself and is always exact. Every
-- change of a job's row goes through an INSERT, an UPDATE of its status or
-- queue, or a DELETE: none of the statements uses REPLACE conflict resolution
-- (whose implicit deletes fire no trigger), and ON CONFLICT DO NOTHING
-- inserts nothing. A (queue, status) whose count fell to 0 keeps its row;
-- `counts()` leaves such rows out.
CREATE TABLE jobs_counts (
    queue  TEXT    NOT NULL,
    status TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, status)
) WITHOUT ROWID;

-- Filled from the jobs already there (one scan, at upgrade time).
INSERT INTO jobs_counts (queue, status, n)
SELECT queue, status, COUNT(*) FROM jobs_queue GROUP BY queue, status;

CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs_queue
BEGIN
    INSERT INTO jobs_counts (queue, status, n) VALUES (new.queue, new.status, 1)
    ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_counts_update AFTER UPDATE OF queue, status ON jobs_queue
WHEN old.queue IS NOT new.queue OR old.status IS NOT new.status
BEGIN
    UPDATE jobs_counts SET n = n - 1 WHERE queue = old.queue AND status = old.status;
    INSERT INTO jobs_counts (queue, status, n) VALUES (new.queue, new.status, 1)
    ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs_queue
BEGIN
    UPDATE jobs_counts SET n = n - 1 WHERE queue = old.queue AND status = old.status;
END;
