-- Which of the listed attempts, {values} rows of (id, attempt), one
-- complete.sql call completed: those stamped with its completed_at, ?.
SELECT v.column1 FROM (VALUES {values}) AS v
JOIN jobs_queue ON jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2
WHERE jobs_queue.status = 'COMPLETED' AND jobs_queue.completed_at = ?
