                 SELECT min(d.run_at) FROM unnest($1::text[]) AS q(name)
                 CROSS JOIN LATERAL (
                   SELECT run_at FROM __TABLE__
                   WHERE queue_name = q.name AND status IN ('SCHEDULED', 'RETRYING')
                   ORDER BY run_at LIMIT 1) d
