                 WITH upd AS (
                   UPDATE __TABLE__ SET status = 'PENDING', retry_count = 0, run_at = now(),
                                  completed_at = NULL, cancelled_at = NULL
                   WHERE id = $1 AND status IN ('FAILED', 'DEAD_LETTER')
                   RETURNING __COLS__),
                 woke AS (SELECT __WAKE__ AS w FROM upd
                          HAVING count(*) > 0)
                 SELECT upd.* FROM upd LEFT JOIN woke ON true
