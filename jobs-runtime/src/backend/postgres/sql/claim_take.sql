-- The limited way, step 4: the chosen jobs that are still waiting and due
-- (another claim may have taken one meanwhile) become RUNNING; their starts
-- are logged for their rate keys and their queues' (`$5` names the queues
-- with a rate, `$6` their keys), and the rate log forgets what no window
-- looks at any more (`$7` keys, `$8` their longest window).
                 WITH pick AS MATERIALIZED (
                   SELECT w.id FROM __TABLE__ w
                   WHERE w.id = ANY($1::uuid[]) AND w.status IN __WAITING__ AND w.run_at <= now()
                   ORDER BY w.id
                   FOR UPDATE SKIP LOCKED),
                 upd AS (
                   UPDATE __TABLE__ j
                   SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(),
                       locked_by = $2, lease_until = now() + $3 * interval '1 microsecond',
                       lease_token = $4
                   WHERE j.id = ANY(ARRAY(SELECT id FROM pick))
                   RETURNING __COLS__),
                 logged AS (
                   INSERT INTO __RATE_LOG__ (key, at)
                   SELECT upd.rate_key, now() FROM upd WHERE upd.rate_key IS NOT NULL
                   UNION ALL
                   SELECT rq.key, now() FROM upd JOIN unnest($5::text[], $6::text[]) AS rq(name, key)
                     ON rq.name = upd.queue_name),
                 pruned AS (
                   DELETE FROM __RATE_LOG__ r
                   USING unnest($7::text[], $8::int8[]) AS k(key, per)
                   WHERE r.key = k.key AND r.at <= now() - k.per * interval '1 microsecond')
                 SELECT upd.* FROM upd
