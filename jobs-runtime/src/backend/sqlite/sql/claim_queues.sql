-- The first ?4 jobs due over several queues, an earlier queue's first:
-- {arms} is one claim_queue_arm.sql per queue, joined by UNION ALL.
SELECT seq, limited FROM ({arms})
ORDER BY qp, priority DESC, run_at, seq LIMIT ?4
