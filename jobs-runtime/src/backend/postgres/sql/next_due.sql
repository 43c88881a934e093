-- Seconds from the database's now until the earliest scheduled job of the
-- queues is due (negative once due; NULL: none): the listener's timer runs on
-- the database's clock, never on a comparison with the worker's.
                 SELECT extract(epoch FROM min(d.run_at) - now())::float8
                 FROM unnest($1::text[]) AS q(name)
                 CROSS JOIN LATERAL (
                   SELECT run_at FROM __TABLE__
                   WHERE queue_name = q.name AND status IN ('SCHEDULED', 'RETRYING')
                   ORDER BY run_at LIMIT 1) d
