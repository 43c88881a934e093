-- The jobs whose ids (hex) the JSON array ?1 lists, in no particular order.
SELECT {JOB_COLS} FROM jobs_queue
WHERE id IN (SELECT unhex(value) FROM json_each(?1))
