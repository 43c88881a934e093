-- Inserts {values}: one 11-parameter tuple per job, in the column order below.
INSERT INTO jobs_queue (id, queue, job_type, payload, status, priority,
    max_retries, run_at, created_at, metadata, timeout_ms)
VALUES {values}
