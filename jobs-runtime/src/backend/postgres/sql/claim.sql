-- The fast path, for jobs without limits. Per queue in request order (paused
-- queues skipped), the first due rows in claim order, from the queue's hint
-- on (see `Hints`); the outer LIMIT stops the nested loop once enough rows
-- are locked. `id = ANY(ARRAY(..))` keeps the update on the primary key even
-- under a generic plan (a join there lets the planner pick a hash join over
-- the whole table). `SKIP LOCKED`: a claim never waits for a row lock, so it
-- can't deadlock. `take` is a queue's cap for this claim (a manager's local
-- cap; NULL: none). If a candidate has limits of its own, nothing is claimed
-- and the one row says `slow`: the claim goes the limited way instead.
                 WITH cand AS MATERIALIZED (
                   SELECT c.id, c.lim
                   FROM unnest($1::text[], $5::int8[], $6::timestamptz[], $7::int8[], $9::int8[])
                        AS q(name, hp, hr, hs, take)
                   CROSS JOIN LATERAL (
                     SELECT w.id, (w.conc_key IS NOT NULL OR w.rate_key IS NOT NULL
                                   OR w.seq_key IS NOT NULL) AS lim
                     FROM __TABLE__ w
                     WHERE w.queue_name = q.name AND w.status IN __WAITING__ AND w.run_at <= now()
                       AND (-w.priority::int8, w.run_at, w.seq)
                           >= (coalesce(q.hp, __MIN__), coalesce(q.hr, '-infinity'), coalesce(q.hs, __MIN__))
                       AND NOT EXISTS (SELECT 1 FROM __PAUSED__ p WHERE p.queue = q.name)
                     ORDER BY -w.priority::int8, w.run_at, w.seq
                     LIMIT least($2, coalesce(q.take, $2))
                     FOR UPDATE SKIP LOCKED) c
                   LIMIT $2),
                 slow AS (SELECT EXISTS (SELECT 1 FROM cand WHERE lim) AS slow),
                 upd AS (
                   UPDATE __TABLE__ j
                   SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(),
                       locked_by = $3, lease_until = now() + $4 * interval '1 microsecond',
                       lease_token = $8
                   WHERE j.id = ANY(ARRAY(SELECT id FROM cand)) AND NOT (SELECT slow FROM slow)
                   RETURNING __COLS__)
                 SELECT upd.*, slow.slow FROM slow LEFT JOIN upd ON true
