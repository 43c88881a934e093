-- One job by id, ?1.
SELECT {JOB_COLS} FROM jobs_queue WHERE id = ?1
