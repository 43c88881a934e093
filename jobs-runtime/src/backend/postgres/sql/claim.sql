-- Per queue in request order, the first due rows in claim order, from the
-- queue's hint on (see `Hints`); the outer LIMIT stops the nested loop once
-- enough rows are locked. `id = ANY(ARRAY(..))`
-- keeps the update on the primary key even under a generic plan (a join
-- there lets the planner pick a hash join over the whole table). `SKIP
-- LOCKED`: a claim never waits for a row lock, so it can't deadlock.
                 UPDATE __TABLE__ j
                 SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(),
                     locked_by = $3, lease_until = now() + $4 * interval '1 microsecond',
                     lease_token = $8
                 WHERE j.id = ANY(ARRAY(
                   SELECT c.id
                   FROM unnest($1::text[], $5::int8[], $6::timestamptz[], $7::int8[])
                        AS q(name, hp, hr, hs)
                   CROSS JOIN LATERAL (
                     SELECT w.id FROM __TABLE__ w
                     WHERE w.queue_name = q.name AND w.status IN __WAITING__ AND w.run_at <= now()
                       AND (-w.priority::int8, w.run_at, w.seq)
                           >= (coalesce(q.hp, __MIN__), coalesce(q.hr, '-infinity'), coalesce(q.hs, __MIN__))
                     ORDER BY -w.priority::int8, w.run_at, w.seq
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED) c
                   LIMIT $2))
                 RETURNING __COLS__
