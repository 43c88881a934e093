-- A page of jobs in enqueue order: ?1 limit, ?2 offset; {filters} holds the
-- conditions on ?3 queue, ?4 status and ?5 job type that are set.
SELECT {JOB_COLS} FROM jobs_queue WHERE 1 = 1{filters}
ORDER BY seq LIMIT ?1 OFFSET ?2
