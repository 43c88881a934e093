-- Due at the given run_at, else now + delay (the database's clock, so a
-- producer's clock never decides), else now. Columns that no job of the
-- batch uses are sent as empty arrays: `unnest` pads them with NULLs.
-- Batches with unique jobs use `enqueue_unique.sql`.
                 WITH ins AS (
                   INSERT INTO __TABLE__ (id, queue_name, job_type, payload, status, priority,
                                    max_retries, run_at, created_at, metadata, timeout_ms,
                                    conc_key, conc_max, rate_key, rate_max, rate_per_us, seq_key)
                   SELECT u.id, u.queue_name, u.job_type, u.payload,
                          CASE WHEN d.due > now() THEN 'SCHEDULED' ELSE 'PENDING' END,
                          u.priority, u.max_retries, d.due, now(), u.metadata, u.timeout_ms,
                          u.conc_key, u.conc_max, u.rate_key, u.rate_max, u.rate_per_us, u.seq_key
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int4[],
                               $6::int4[], $7::timestamptz[], $8::jsonb[], $9::int8[], $10::int8[],
                               $11::text[], $12::int4[], $13::text[], $14::int4[], $15::int8[],
                               $16::text[])
                        WITH ORDINALITY AS u(id, queue_name, job_type, payload, priority,
                                             max_retries, run_at, metadata, delay, timeout_ms,
                                             conc_key, conc_max, rate_key, rate_max, rate_per_us,
                                             seq_key, ord)
                   CROSS JOIN LATERAL (
                     SELECT coalesce(u.run_at, now() + u.delay * interval '1 microsecond', now()) AS due) d
                   ORDER BY u.ord
                   RETURNING queue_name, status)
                 SELECT count(*) AS n,
                        __WAKE__::text AS w
                 FROM ins
