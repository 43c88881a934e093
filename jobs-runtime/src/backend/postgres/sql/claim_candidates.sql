-- The limited way, step 1: per queue in request order (paused queues
-- skipped), up to $2 due jobs in claim order from the queue's hint on
-- ($3-$5, as in claim.sql; NULL: from the start), with their limits. Read
-- without locks: the claim locks the limit keys next, and the update
-- takes only rows that are still waiting.
                 SELECT q.ord::int4 AS ord, c.*
                 FROM unnest($1::text[], $3::int8[], $4::timestamptz[], $5::int8[])
                      WITH ORDINALITY AS q(name, hp, hr, hs, ord)
                 CROSS JOIN LATERAL (
                   SELECT w.id, w.priority, w.run_at, w.seq, w.conc_key, w.conc_max,
                          w.rate_key, w.rate_max, w.rate_per_us, w.seq_key
                   FROM __TABLE__ w
                   WHERE w.queue_name = q.name AND w.status IN __WAITING__ AND w.run_at <= now()
                     AND (-w.priority::int8, w.run_at, w.seq)
                         >= (coalesce(q.hp, __MIN__), coalesce(q.hr, '-infinity'), coalesce(q.hs, __MIN__))
                     AND NOT EXISTS (SELECT 1 FROM __PAUSED__ p WHERE p.queue = q.name)
                   ORDER BY -w.priority::int8, w.run_at, w.seq
                   LIMIT $2) c
                 ORDER BY q.ord, -c.priority::int8, c.run_at, c.seq
