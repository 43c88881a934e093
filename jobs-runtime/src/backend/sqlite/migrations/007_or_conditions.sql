-- jobs schema, version 7: conditions SQLite checks per row written as ORs.
--
-- A partial index's condition is checked for every row a statement writes,
-- and a trigger's WHEN for every row it fires on. Written `status IN (a, b,
-- c)`, with three values or more, SQLite builds a temporary table of the
-- values for each check: measured with callgrind, about 70,000 instructions
-- per row and condition against about 5,000 for the same test written
-- `status = a OR status = b OR status = c` — most of what SQLite did per job
-- in a drain. So every such index is built again with its condition as ORs
-- (the statements that use an index repeat its condition word for word: that
-- is how SQLite sees that it may), and so is the throughput trigger.
--
-- The full index on status (version 6) goes too: a job that is enqueued,
-- runs and completes no longer touches a status index at all. What
-- `list_page` filtered with it: the statuses off that path (scheduled,
-- retrying, failed, dead) have a partial index; RUNNING jobs are walked
-- through the lease index (they are few); PENDING and COMPLETED are filters
-- within the page's scan window.
--
-- Rebuilding the indexes holds the database for about a second per million
-- jobs, once, when a process of this version first opens it.
DROP INDEX jobs_queue_status;
CREATE INDEX jobs_queue_off_path ON jobs_queue (status)
WHERE (status = 'SCHEDULED' OR status = 'RETRYING' OR status = 'FAILED'
    OR status = 'DEAD_LETTER');

DROP INDEX jobs_queue_ready;
CREATE INDEX jobs_queue_ready ON jobs_queue (queue, priority DESC, run_at)
WHERE (status = 'PENDING' OR status = 'SCHEDULED' OR status = 'RETRYING');

DROP INDEX jobs_queue_due;
CREATE INDEX jobs_queue_due ON jobs_queue (run_at, seq)
WHERE (status = 'PENDING' OR status = 'SCHEDULED' OR status = 'RETRYING');

DROP INDEX jobs_queue_done;
CREATE INDEX jobs_queue_done ON jobs_queue (completed_at, id)
WHERE (status = 'COMPLETED' OR status = 'FAILED' OR status = 'DEAD_LETTER');

DROP INDEX jobs_queue_sequences;
CREATE INDEX jobs_queue_sequences ON jobs_queue (sequence_key, created_at, seq)
WHERE sequence_key IS NOT NULL
    AND (status = 'PENDING' OR status = 'SCHEDULED' OR status = 'RUNNING'
        OR status = 'RETRYING');

-- A finished job's bucket comes from its own completion time (set by the same
-- statement, in microseconds), a retry's from unixepoch(): version 5's
-- strftime('%s', 'now') formatted a date as text and parsed it back per row.
DROP TRIGGER jobs_throughput_update;
CREATE TRIGGER jobs_throughput_update AFTER UPDATE OF status ON jobs_queue
WHEN old.status IS NOT new.status
    AND (new.status = 'COMPLETED' OR new.status = 'FAILED'
        OR new.status = 'DEAD_LETTER' OR new.status = 'RETRYING')
BEGIN
    INSERT INTO jobs_throughput (minute, queue, completed, failed, dead, retried)
    VALUES (coalesce(new.completed_at, unixepoch() * 1000000) / 60000000 * 60000000,
        new.queue, new.status = 'COMPLETED', new.status = 'FAILED',
        new.status = 'DEAD_LETTER', new.status = 'RETRYING')
    ON CONFLICT (minute, queue) DO UPDATE SET
        completed = completed + excluded.completed,
        failed = failed + excluded.failed,
        dead = dead + excluded.dead,
        retried = retried + excluded.retried;
END;
