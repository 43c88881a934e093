-- The earliest run_at after ?1 among waiting jobs of the queues {marks}
-- (?2, ?3, ...) that are not paused.
SELECT MIN(run_at) FROM jobs_queue WHERE queue IN ({marks})
    AND {WAITING} AND run_at > ?1
    AND queue NOT IN (SELECT queue FROM jobs_paused)
