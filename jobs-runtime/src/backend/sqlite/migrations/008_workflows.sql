-- jobs schema, version 8: workflow edges.
--
-- A workflow step with parents waits, held, until all of them settled. An
-- edge from a parent to a child settles once: `jobs_edges` holds each settled
-- (child, parent) pair, the idempotency record, and `jobs_waits` how many
-- edges of each child settled so far, so a settle reads one row instead of
-- counting. A settle writes both in one transaction: a new edge adds one to
-- its child's count, an edge settled before changes nothing.
CREATE TABLE jobs_edges (
    child  BLOB NOT NULL,
    parent BLOB NOT NULL,
    PRIMARY KEY (child, parent)
) WITHOUT ROWID;

CREATE TABLE jobs_waits (
    child   BLOB    PRIMARY KEY,
    settled INTEGER NOT NULL
) WITHOUT ROWID;

-- A job deleted (by an operator, by pruning, on completion) takes its count
-- and its settled edges with it, in the statement that deletes it, whichever
-- that is. A job with no count (most) costs one lookup in `jobs_waits`.
CREATE TRIGGER jobs_waits_forget AFTER DELETE ON jobs_queue
BEGIN
    DELETE FROM jobs_waits WHERE child = old.id;
END;

CREATE TRIGGER jobs_edges_forget AFTER DELETE ON jobs_waits
BEGIN
    DELETE FROM jobs_edges WHERE child = old.child;
END;
