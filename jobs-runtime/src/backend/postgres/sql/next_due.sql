-- Seconds from the database's now until the earliest scheduled job of the
-- queues is due (negative once due; NULL: none): the listener's timer runs on
-- the database's clock, never on a comparison with the worker's. Paused
-- queues are left out, and so are due jobs with limits of their own (a
-- limit may hold them back: the manager polls for those, since its claim
-- says `limited`), so a job that cannot be claimed never makes the listener
-- return at once, again and again.
                 SELECT extract(epoch FROM min(d.run_at) - now())::float8
                 FROM unnest($1::text[]) AS q(name)
                 CROSS JOIN LATERAL (
                   SELECT run_at FROM __TABLE__
                   WHERE queue_name = q.name AND status IN ('SCHEDULED', 'RETRYING')
                     AND (run_at > now()
                          OR (conc_key IS NULL AND rate_key IS NULL AND seq_key IS NULL))
                     AND NOT EXISTS (SELECT 1 FROM __PAUSED__ p WHERE p.queue = q.name)
                   ORDER BY run_at LIMIT 1) d
