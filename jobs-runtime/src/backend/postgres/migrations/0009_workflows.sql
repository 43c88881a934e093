-- jobs schema v9: workflow edges.
--
-- A workflow step with parents waits, held, until all of them settled. An
-- edge from a parent to a child settles once: `job_edges` holds each settled
-- (child, parent) pair, the idempotency record, and `job_waits` how many
-- edges of each child settled so far. A settle is one statement: the edges it
-- inserts (a conflict inserts nothing) add one each to their child's count,
-- an upsert whose row lock serializes concurrent settles of one child.
CREATE TABLE __SCHEMA__.job_edges (
    child  uuid NOT NULL,
    parent uuid NOT NULL,
    PRIMARY KEY (child, parent)
);

CREATE TABLE __SCHEMA__.job_waits (
    child   uuid    PRIMARY KEY,
    settled integer NOT NULL
);

-- Deleted jobs (by an operator, by pruning, on completion, by hand) take
-- their counts and settled edges with them, in the deleting statement.
CREATE FUNCTION __SCHEMA__.jobs_forget_edges() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM __SCHEMA__.job_waits w USING old_rows o WHERE w.child = o.id;
    DELETE FROM __SCHEMA__.job_edges e USING old_rows o WHERE e.child = o.id;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION __SCHEMA__.jobs_forget_all_edges() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM __SCHEMA__.job_waits;
    DELETE FROM __SCHEMA__.job_edges;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER jobs_forget_edges AFTER DELETE ON __SCHEMA__.jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.jobs_forget_edges();
CREATE TRIGGER jobs_forget_all_edges AFTER TRUNCATE ON __SCHEMA__.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.jobs_forget_all_edges();
