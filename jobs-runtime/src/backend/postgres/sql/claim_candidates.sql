-- The limited way, step 1: per queue in request order (paused queues
-- skipped), up to $2 due jobs in claim order, with their limits. Read
-- without locks: the claim locks the limit keys next, and the update
-- takes only rows that are still waiting.
                 SELECT q.ord::int4 AS ord, c.*
                 FROM unnest($1::text[]) WITH ORDINALITY AS q(name, ord)
                 CROSS JOIN LATERAL (
                   SELECT w.id, w.priority, w.run_at, w.seq, w.conc_key, w.conc_max,
                          w.rate_key, w.rate_max, w.rate_per_us, w.seq_key
                   FROM __TABLE__ w
                   WHERE w.queue_name = q.name AND w.status IN __WAITING__ AND w.run_at <= now()
                     AND NOT EXISTS (SELECT 1 FROM __PAUSED__ p WHERE p.queue = q.name)
                   ORDER BY -w.priority::int8, w.run_at, w.seq
                   LIMIT $2) c
                 ORDER BY q.ord, -c.priority::int8, c.run_at, c.seq
