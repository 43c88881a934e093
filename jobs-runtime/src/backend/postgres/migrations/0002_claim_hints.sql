-- jobs schema v2: claims start from a row-comparison position, and NOTIFY is inline.

-- Statements now build their NOTIFY inline: a function call cost more than the insert.
DROP FUNCTION IF EXISTS __SCHEMA__.wake(text[], boolean);

-- Priority negated so that every column ascends: a claim can then start from a
-- row-comparison position, past the dead entries of jobs claimed before it
-- (they stay in the index until vacuum).
DROP INDEX IF EXISTS __SCHEMA__.jobs_claim_idx;
CREATE INDEX jobs_claim_idx ON __SCHEMA__.jobs (queue_name, (-priority::bigint), run_at, seq)
    WHERE status IN ('PENDING', 'SCHEDULED', 'RETRYING');
