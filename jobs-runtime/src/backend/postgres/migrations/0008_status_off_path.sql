-- jobs schema, version 8: the (status, seq) index holds only the statuses off
-- a job's usual path (scheduled, retrying, failed, dead). Every change of a
-- job's status is a new row version with an entry in every index whose
-- condition it meets, so a full index on status cost each claim and each
-- completion one more index insert (W1 0.91x against version 6). `list_page`
-- filters on the statuses of the usual path without it: RUNNING through the
-- lease index (few rows), PENDING and COMPLETED within the page's scan window.
DROP INDEX __SCHEMA__.jobs_status_seq_idx;

CREATE INDEX jobs_off_path_idx ON __SCHEMA__.jobs (status, seq)
    WHERE status IN ('SCHEDULED', 'RETRYING', 'FAILED', 'DEAD_LETTER');
