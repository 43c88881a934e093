-- Releases the held steps among the jobs $1: each SCHEDULED with its run_at
-- at or after $2 (held) becomes PENDING, due now (the database's clock), and
-- their queues are notified, as an enqueue does.
                 WITH upd AS (
                   UPDATE __TABLE__ SET status = 'PENDING', run_at = now()
                   WHERE id = ANY($1::uuid[]) AND status = 'SCHEDULED' AND run_at >= $2
                   RETURNING id, queue_name),
                 woke AS (SELECT __WAKE__ AS w FROM upd
                          HAVING count(*) > 0)
                 SELECT upd.id FROM upd LEFT JOIN woke ON true
