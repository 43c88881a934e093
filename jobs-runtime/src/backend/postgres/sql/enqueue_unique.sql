-- `enqueue.sql` for a batch with unique jobs. A unique job's key gets its
-- period's bucket by the database's clock; the partial unique index decides
-- which jobs are stored (`ON CONFLICT DO NOTHING`, also against an earlier
-- row of the same batch). `missing_*` lists the unique jobs that
-- were not stored, with their keys, for the holder lookup (empty unless a
-- unique job was refused).
                 WITH u AS MATERIALIZED (
                   SELECT u.*,
                          coalesce(u.run_at, now() + u.delay * interval '1 microsecond', now()) AS due,
                          CASE WHEN u.ukey IS NULL OR u.uperiod IS NULL THEN u.ukey
                               ELSE u.ukey || ':' || floor(extract(epoch FROM now()) / u.uperiod)::int8
                          END AS skey
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int4[],
                               $6::int4[], $7::timestamptz[], $8::jsonb[], $9::int8[], $10::int8[],
                               $11::text[], $12::int4[], $13::text[], $14::int4[], $15::int8[],
                               $16::text[], $17::text[], $18::int8[], $19::int2[])
                        WITH ORDINALITY AS u(id, queue_name, job_type, payload, priority,
                                             max_retries, run_at, metadata, delay, timeout_ms,
                                             conc_key, conc_max, rate_key, rate_max, rate_per_us,
                                             seq_key, ukey, uperiod, ustates, ord)),
                 ins AS (
                   INSERT INTO __TABLE__ (id, queue_name, job_type, payload, status, priority,
                                    max_retries, run_at, created_at, metadata, timeout_ms,
                                    unique_key, unique_states, conc_key, conc_max,
                                    rate_key, rate_max, rate_per_us, seq_key)
                   SELECT u.id, u.queue_name, u.job_type, u.payload,
                          CASE WHEN u.due > now() THEN 'SCHEDULED' ELSE 'PENDING' END,
                          u.priority, u.max_retries, u.due, now(), u.metadata, u.timeout_ms,
                          u.skey, u.ustates, u.conc_key, u.conc_max,
                          u.rate_key, u.rate_max, u.rate_per_us, u.seq_key
                   FROM u
                   ORDER BY u.ord
                   ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND __HOLDS__ DO NOTHING
                   RETURNING id, queue_name, status)
                 SELECT count(*) AS n,
                        __WAKE__::text AS w,
                        ARRAY(SELECT u.ord::int4 FROM u
                              WHERE u.skey IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = u.id)
                              ORDER BY u.ord) AS missing_ord,
                        ARRAY(SELECT u.skey FROM u
                              WHERE u.skey IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = u.id)
                              ORDER BY u.ord) AS missing_key
                 FROM ins
