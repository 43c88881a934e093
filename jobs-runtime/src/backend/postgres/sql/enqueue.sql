-- Due at the given run_at, else now + delay (the database's clock, so a
-- producer's clock never decides), else now.
                 WITH ins AS (
                   INSERT INTO __TABLE__ (id, queue_name, job_type, payload, status, priority,
                                    max_retries, run_at, created_at, metadata, timeout_ms)
                   SELECT u.id, u.queue_name, u.job_type, u.payload,
                          CASE WHEN d.due > now() THEN 'SCHEDULED' ELSE 'PENDING' END,
                          u.priority, u.max_retries, d.due, now(), u.metadata, u.timeout_ms
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int4[],
                               $6::int4[], $7::timestamptz[], $8::jsonb[], $9::int8[], $10::int8[])
                        WITH ORDINALITY AS u(id, queue_name, job_type, payload, priority,
                                             max_retries, run_at, metadata, delay, timeout_ms, ord)
                   CROSS JOIN LATERAL (
                     SELECT coalesce(u.run_at, now() + u.delay * interval '1 microsecond', now()) AS due) d
                   ORDER BY u.ord
                   RETURNING queue_name, status)
                 SELECT count(*) AS n,
                        __WAKE__::text AS w
                 FROM ins
