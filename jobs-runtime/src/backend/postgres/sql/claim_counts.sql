-- The limited way, step 3 (after the keys' locks are held, so this snapshot
-- sees every claim made under them): what runs per concurrency key, per
-- sequence key (and each sequence's head: its oldest unfinished job), and per
-- queue; how many started per rate key within its window. Keys' counts use
-- the partial indexes on running limited jobs and on unfinished sequence
-- members; a queue's count reads its running rows (bounded by the workers'
-- concurrency, through the partial lease index), less the claimer's jobs
-- whose outcomes are being recorded ($6 ids, $7 lease tokens) that still
-- hold their leases: in this same snapshot, so the two counts agree.
                 SELECT 'c' AS kind, k.key, 0::int8 AS per,
                        (SELECT count(*) FROM __TABLE__ j
                         WHERE j.conc_key = k.key AND j.status = 'RUNNING') AS n,
                        NULL::uuid AS head
                 FROM unnest($1::text[]) AS k(key)
                 UNION ALL
                 SELECT 's', k.key, 0,
                        (SELECT count(*) FROM __TABLE__ j
                         WHERE j.seq_key = k.key AND j.status = 'RUNNING'),
                        (SELECT j.id FROM __TABLE__ j
                         WHERE j.seq_key = k.key
                           AND j.status IN ('PENDING', 'SCHEDULED', 'RUNNING', 'RETRYING')
                         ORDER BY j.created_at, j.seq LIMIT 1)
                 FROM unnest($2::text[]) AS k(key)
                 UNION ALL
                 SELECT 'r', k.key, k.per,
                        (SELECT count(*) FROM __RATE_LOG__ r
                         WHERE r.key = k.key AND r.at > now() - k.per * interval '1 microsecond'),
                        NULL
                 FROM unnest($3::text[], $4::int8[]) AS k(key, per)
                 UNION ALL
                 SELECT 'q', k.key, 0,
                        (SELECT count(*) FROM __TABLE__ j
                         WHERE j.queue_name = k.key AND j.status = 'RUNNING')
                        - (SELECT count(*) FROM __TABLE__ j
                           JOIN unnest($6::uuid[], $7::int8[]) AS f(id, token)
                             ON j.id = f.id AND j.lease_token = f.token
                           WHERE j.queue_name = k.key AND j.status = 'RUNNING'),
                        NULL
                 FROM unnest($5::text[]) AS k(key)
