-- One batch of a bulk requeue: the next $3 jobs in status $1 (FAILED or
-- DEAD_LETTER, said again as a constant so that even a generic plan may walk
-- the partial status index) after enqueue position $2 (of queue $4 and job
-- type $5 unless NULL), requeued as
-- requeue.sql does each. A job that would hold its unique key while PENDING
-- (bit 1 of its states) is skipped if another job holds the key now, or if
-- an earlier job of the batch with the same key takes it (the unique index
-- would refuse it, and with it the batch). Returns how many it looked at, the
-- last position, how many it requeued and the ids it skipped.
                 WITH cand AS (
                   SELECT id, seq, unique_key, unique_states FROM __TABLE__
                   WHERE status = $1 AND status IN ('FAILED', 'DEAD_LETTER') AND seq > $2
                     AND ($4::text IS NULL OR queue_name = $4)
                     AND ($5::text IS NULL OR job_type = $5)
                   ORDER BY seq
                   LIMIT $3
                   FOR UPDATE),
                 skip AS (
                   SELECT c.id FROM cand c
                   WHERE c.unique_key IS NOT NULL AND (c.unique_states & 1) <> 0
                     AND (EXISTS (SELECT 1 FROM __TABLE__ h
                                  WHERE h.unique_key = c.unique_key AND h.id <> c.id
                                    AND __HOLDS__)
                          OR EXISTS (SELECT 1 FROM cand e
                                     WHERE e.unique_key = c.unique_key
                                       AND (e.unique_states & 1) <> 0 AND e.seq < c.seq))),
                 upd AS (
                   UPDATE __TABLE__ j SET status = 'PENDING', retry_count = 0, run_at = now(),
                                  completed_at = NULL, cancelled_at = NULL
                   FROM cand c
                   WHERE j.id = c.id AND c.id NOT IN (SELECT id FROM skip)
                   RETURNING j.id, j.queue_name),
                 woke AS (SELECT __WAKE__ AS w FROM upd
                          HAVING count(*) > 0)
                 SELECT (SELECT count(*) FROM cand) AS seen,
                        (SELECT max(seq) FROM cand) AS last,
                        (SELECT count(*) FROM upd) AS requeued,
                        (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM skip) AS skipped,
                        (SELECT count(*) FROM woke) AS woke
