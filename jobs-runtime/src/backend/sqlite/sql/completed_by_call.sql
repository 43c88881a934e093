-- Which of the listed jobs, {values} rows of (id), one complete.sql call
-- completed: those stamped with its completed_at, ?. (The completion cleared
-- their lease token, so the stamp is what tells them apart.)
SELECT v.column1 FROM (VALUES {values}) AS v
JOIN jobs_queue ON jobs_queue.id = v.column1
WHERE jobs_queue.status = 'COMPLETED' AND jobs_queue.completed_at = ?
