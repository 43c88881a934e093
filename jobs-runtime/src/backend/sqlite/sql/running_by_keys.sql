-- How many jobs run of each concurrency key of the JSON array ?1.
SELECT k.value,
    (SELECT COUNT(*) FROM jobs_queue
        WHERE concurrency_key = k.value AND status = 'RUNNING')
FROM json_each(?1) AS k
