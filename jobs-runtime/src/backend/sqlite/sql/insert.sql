-- Inserts {values}: one 19-parameter tuple per job, in the column order below.
INSERT INTO jobs_queue (id, queue, job_type, payload, status, priority,
    max_retries, run_at, created_at, metadata, timeout_ms, unique_key,
    unique_states, concurrency_key, concurrency_max, rate_key, rate_max,
    rate_per_ms, sequence_key)
VALUES {values}{conflict}
