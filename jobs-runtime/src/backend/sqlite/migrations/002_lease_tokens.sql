-- jobs schema, version 2: lease tokens, a failure count, the cancelled mark
-- and per-job timeouts.
--
-- `lease_token`: the random token of the current lease while RUNNING (a u64
-- stored bit for bit as a signed integer); outcomes and heartbeats match it,
-- so no later claim is mistaken for an earlier one. NULL otherwise, and for
-- jobs that were RUNNING when this migration ran: their old workers cannot
-- hold a token, so those leases simply run out and are recovered.
ALTER TABLE jobs_queue ADD COLUMN lease_token INTEGER;

-- `error_count`: every failed attempt, including those the capped `errors`
-- history no longer holds. Backfilled from the history, which so far kept
-- every entry.
ALTER TABLE jobs_queue ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
UPDATE jobs_queue SET error_count = json_array_length(errors)
WHERE errors IS NOT NULL AND json_valid(errors);

-- `cancelled_at`: when an operator cancelled the job. Before this column a
-- cancel was a FAILED job whose error is exactly `cancelled`, stamped at
-- `completed_at`.
ALTER TABLE jobs_queue ADD COLUMN cancelled_at INTEGER;
UPDATE jobs_queue SET cancelled_at = completed_at
WHERE status = 'FAILED' AND error_message = 'cancelled';

-- `timeout_ms`: the job's own time limit per attempt in milliseconds, 0 for
-- none at all; NULL leaves it to its handler and the manager.
ALTER TABLE jobs_queue ADD COLUMN timeout_ms INTEGER;
