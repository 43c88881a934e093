-- Counts ?3 completions of queue ?2 at ?1 (microseconds) in the throughput
-- history, for jobs drop_completed.sql deleted instead of completing: what
-- the throughput trigger counts for a completion.
INSERT INTO jobs_throughput (minute, queue, completed, failed, dead, retried)
VALUES (?1 / 60000000 * 60000000, ?2, ?3, 0, 0, 0)
ON CONFLICT (minute, queue) DO UPDATE SET completed = completed + excluded.completed
