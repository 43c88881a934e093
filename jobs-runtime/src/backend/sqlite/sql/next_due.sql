-- The earliest run_at after ?1 among waiting jobs of the queues {marks}
-- (?2, ?3, ...).
SELECT MIN(run_at) FROM jobs_queue WHERE queue IN ({marks})
    AND status IN {WAITING} AND run_at > ?1
