                 WITH ins AS (
                   INSERT INTO __TABLE__ (id, queue_name, job_type, payload, status, priority,
                                    max_retries, run_at, created_at, metadata)
                   SELECT u.id, u.queue_name, u.job_type, u.payload,
                          CASE WHEN u.run_at > now() THEN 'SCHEDULED' ELSE 'PENDING' END,
                          u.priority, u.max_retries, coalesce(u.run_at, now()), now(), u.metadata
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int4[],
                               $6::int4[], $7::timestamptz[], $8::jsonb[])
                        WITH ORDINALITY AS u(id, queue_name, job_type, payload, priority,
                                             max_retries, run_at, metadata, ord)
                   ORDER BY u.ord
                   RETURNING queue_name, status)
                 SELECT count(*) AS n,
                        __WAKE__::text AS w
                 FROM ins
