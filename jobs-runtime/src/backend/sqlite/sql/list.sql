-- A page of jobs in enqueue order: ?1 limit, ?2 offset; {filters} holds the
-- conditions that are set: on ?3 queue, ?4 status, ?5 job type, and whether
-- the job was cancelled.
SELECT {JOB_COLS} FROM jobs_queue WHERE 1 = 1{filters}
ORDER BY seq LIMIT ?1 OFFSET ?2
