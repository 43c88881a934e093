//! The backend's statements: the long ones live in `sql/*.sql` beside this
//! file, with `__NAME__` placeholders spliced in once at connect.

use jobs_core::MAX_ERROR_HISTORY;

use super::options::{channel_name, finished_channel_name, quote_ident, quote_literal};

const JOB_COLUMNS: &str = "id, seq, queue_name, job_type, payload, status, priority, retry_count, \
     max_retries, run_at, created_at, started_at, completed_at, error_message, errors, result_data, \
     metadata, locked_by, lease_until, attempt, lease_token, error_count, cancelled_at, timeout_ms, \
     snoozes, progress, unique_key, conc_key, conc_max, rate_key, rate_max, rate_per_us, seq_key";

/// The columns `row_to_job` reads.
pub(super) fn job_columns() -> &'static str {
    JOB_COLUMNS
}

const MIN: &str = "-9223372036854775808";

const WAITING: &str = "('PENDING', 'SCHEDULED', 'RETRYING')";

/// Whether a row holds its unique key: its status is in its own bit set (bit
/// n for `JobStatus` n). The very predicate of the partial unique index
/// `jobs_unique_idx` (migration 4), so statements that say it use the index.
const HOLDS: &str = "(unique_states & (CASE status WHEN 'PENDING' THEN 1 WHEN 'SCHEDULED' THEN 2 \
     WHEN 'RUNNING' THEN 4 WHEN 'COMPLETED' THEN 8 WHEN 'FAILED' THEN 16 WHEN 'RETRYING' THEN 32 \
     ELSE 64 END)::smallint) <> 0";

// The fence, written so the planner can't use it to pick the partial lease
// index: its statistics often say "no job is running", which makes it scan
// every running row once per batch row instead of looking each one up by id.
const RUNNING: &str = "j.status || '' = 'RUNNING'";

/// The error message of a job whose lease ran out (used twice by `recover.sql`).
const LEASE_EXPIRED: &str = "format('lease expired: worker `%s` stopped heartbeating \
                             (lease ran out at %s)', coalesce(j.locked_by, '?'), j.lease_until)";

/// A jsonpath keeping the last [`MAX_ERROR_HISTORY`] entries of an error
/// history (the whole history while it is shorter: lax mode ignores the
/// out-of-range start).
fn keep_errors() -> String {
    format!("'$[last - {} to last]'::jsonpath", MAX_ERROR_HISTORY - 1)
}

/// The statements, with the schema spliced in once at connect (sqlx caches the
/// prepared form per connection, keyed by the text).
///
/// A `sql/*.sql` file is sent as written, indentation included, less the `--`
/// comment lines on top and the whitespace around the statement.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) enqueue: String,
    /// `enqueue` for a batch with unique jobs.
    pub(super) enqueue_unique: String,
    pub(super) claim: String,
    pub(super) heartbeat: String,
    /// Records outcomes none of which is a completion to drop.
    pub(super) record: String,
    /// `record` for a batch with completions to drop (kind `DROP`, for a
    /// retention that keeps no completed jobs): those are deleted under their
    /// fence instead of updated, in the same statement.
    pub(super) record_dropping: String,
    pub(super) recover: String,
    /// Fails one claimed job whose row could not be read.
    pub(super) fail_corrupt: String,
    pub(super) get: String,
    pub(super) list: String,
    pub(super) cancel: String,
    pub(super) requeue: String,
    /// One batch of a bulk requeue.
    pub(super) requeue_many: String,
    /// The throughput buckets from `$1` on.
    pub(super) throughput: String,
    pub(super) status_of: String,
    pub(super) counts: String,
    /// Folds the count deltas into the totals (the reaper's tick does it too,
    /// so they stay few even where nobody asks for counts).
    pub(super) fold_counts: String,
    pub(super) prune: String,
    pub(super) next_due: String,
    pub(super) holders: String,
    pub(super) replace: String,
    pub(super) claim_candidates: String,
    pub(super) claim_counts: String,
    pub(super) claim_take: String,
    pub(super) progress: String,
    pub(super) delete: String,
    pub(super) pause: String,
    pub(super) resume: String,
    pub(super) paused: String,
    pub(super) register_worker: String,
    pub(super) deregister_worker: String,
    pub(super) workers: String,
    pub(super) try_lead: String,
    pub(super) resign: String,
    pub(super) leader: String,
    pub(super) schedules: String,
    pub(super) save_schedule: String,
    pub(super) append_audit: String,
    pub(super) audit_log: String,
    pub(super) prune_audit: String,
    pub(super) notify: String,
    /// The jobs of the ids `$1`, in any order.
    pub(super) get_many: String,
    /// Settles a parent's edges; returns the new ones' children and counts.
    pub(super) settle: String,
    /// The settled edge counts of the children `$1`.
    pub(super) settled: String,
    /// Releases held workflow steps and notifies their queues.
    pub(super) release_held: String,
}

/// `record.sql`'s part for completions to drop: deleted under the same fence
/// as an update. The delete's trigger counts them out of RUNNING; `through`
/// counts them into COMPLETED and out again, so the totals do not keep them
/// and the throughput history (which sums a status's positive deltas) does —
/// what completing and then deleting them wrote, in one statement instead of
/// a transaction of two. `done` is every job the call applied.
const DROPPING: &str = "del AS (
                   DELETE FROM __TABLE__ j USING locked u
                   WHERE j.id = u.id AND u.kind = 'DROP'
                     AND __RUNNING__ AND j.lease_token = u.token AND j.attempt = u.attempt
                   RETURNING j.id, j.queue_name, j.run_at, j.conc_key, j.seq_key),
                 through AS (
                   INSERT INTO __DELTAS__ (queue_name, status, n)
                   SELECT d.queue_name, 'COMPLETED', x.n
                   FROM (SELECT queue_name, count(*) AS c FROM del GROUP BY queue_name) AS d,
                        LATERAL (VALUES (d.c), (-d.c)) AS x(n)),
                 done AS (
                   SELECT id, queue_name, status, run_at, conc_key, seq_key FROM upd
                   UNION ALL
                   SELECT id, queue_name, 'COMPLETED', run_at, conc_key, seq_key FROM del),";

/// The NOTIFY of one statement, as an aggregate over rows with a `queue_name`:
/// the payload lists the queues that got claimable work, and a final `!` token
/// when a future run_at was stored (listeners then re-read their timer).
/// Payloads stay well below PostgreSQL's 8000-byte limit: `*` means "any queue".
/// Inline rather than a SQL function: a function call costs more than the insert.
fn wake(channel: &str, refresh: &str) -> String {
    let list = "array_to_string(array_agg(DISTINCT queue_name), ' ')";
    format!(
        "pg_notify({channel}, CASE WHEN octet_length({list}) > 7000 THEN '* !' \
         ELSE {list} || CASE WHEN {refresh} THEN ' !' ELSE '' END END)"
    )
}

/// The NOTIFY on the `finished` channel of one statement, as an aggregate
/// over the rows (with an `id`) of the jobs it finished: the payload lists
/// their ids, or is `*` ("any job") for more than fit in one payload.
fn finished(channel: &str) -> String {
    format!(
        "pg_notify({channel}, CASE WHEN count(*) > 150 THEN '*' \
         ELSE string_agg(id::text, ' ') END)"
    )
}

/// A `sql/*.sql` file's statement: without the `--` comment lines on top and
/// the whitespace around it.
fn statement(file: &str) -> &str {
    let mut rest = file.trim_start();
    while rest.starts_with("--") {
        rest = rest
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    rest.trim_end()
}

/// Replaces each placeholder of `sql` by its value in one pass: values are not
/// scanned again, so a schema named like a placeholder stays as it is.
fn splice(sql: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(sql.len() * 2);
    let mut rest = sql;
    while let Some(at) = rest.find("__") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match values.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                debug_assert!(false, "unknown placeholder in: {rest}");
                out.push_str("__");
                rest = &rest[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Sql {
    pub(super) fn new(schema: &str) -> Sql {
        let s = quote_ident(schema);
        let t = format!("{s}.jobs");
        let paused = format!("{s}.paused_queues");
        let rate_log = format!("{s}.rate_log");
        let workers = format!("{s}.workers");
        let leaders = format!("{s}.leaders");
        let schedules = format!("{s}.schedules");
        let audit = format!("{s}.audit_log");
        let edges = format!("{s}.job_edges");
        let waits = format!("{s}.job_waits");
        let cols = JOB_COLUMNS;
        let channel = quote_literal(&channel_name(schema));
        let us = "* interval '1 microsecond'";
        let wake_enqueue = wake(&channel, "bool_or(status = 'SCHEDULED')");
        let wake_record = wake(&channel, "bool_or(run_at > now())");
        let wake_plain = wake(&channel, "false");
        let finished = finished(&quote_literal(&finished_channel_name(schema)));
        let keep = keep_errors();
        let deltas = format!("{s}.job_count_deltas");
        // `__WAKE__` differs by statement: when its NOTIFY asks listeners to
        // re-read their timer; `extra` are the placeholders of one statement.
        let load_with = |file: &str, wake: Option<&str>, extra: &[(&str, &str)]| {
            let finished = finished.as_str();
            let mut values = vec![
                ("__TABLE__", t.as_str()),
                ("__COLS__", cols),
                ("__WAITING__", WAITING),
                ("__RUNNING__", RUNNING),
                ("__MIN__", MIN),
                ("__LEASE_EXPIRED__", LEASE_EXPIRED),
                ("__KEEP_ERRORS__", keep.as_str()),
                ("__HOLDS__", HOLDS),
                ("__PAUSED__", paused.as_str()),
                ("__RATE_LOG__", rate_log.as_str()),
                ("__EDGES__", edges.as_str()),
                ("__WAITS__", waits.as_str()),
                ("__FINISHED__", finished),
                ("__DELTAS__", deltas.as_str()),
            ];
            values.extend(wake.map(|wake| ("__WAKE__", wake)));
            values.extend_from_slice(extra);
            splice(statement(file), &values)
        };
        let load = |file: &str, wake: Option<&str>| load_with(file, wake, &[]);
        let dropping = load(DROPPING, None);
        Sql {
            enqueue: load(include_str!("sql/enqueue.sql"), Some(&wake_enqueue)),
            enqueue_unique: load(include_str!("sql/enqueue_unique.sql"), Some(&wake_enqueue)),
            claim: load(include_str!("sql/claim.sql"), None),
            heartbeat: load(include_str!("sql/heartbeat.sql"), None),
            record: load_with(
                include_str!("sql/record.sql"),
                Some(&wake_record),
                &[
                    ("__DROPPING__", ""),
                    ("__DONE__", "upd"),
                    ("__NOT_DROPPED__", ""),
                ],
            ),
            record_dropping: load_with(
                include_str!("sql/record.sql"),
                Some(&wake_record),
                &[
                    ("__DROPPING__", dropping.as_str()),
                    ("__DONE__", "done"),
                    ("__NOT_DROPPED__", "AND u.kind <> 'DROP'"),
                ],
            ),
            recover: load(include_str!("sql/recover.sql"), Some(&wake_plain)),
            fail_corrupt: load(include_str!("sql/fail_corrupt.sql"), None),
            get: format!("SELECT {cols} FROM {t} WHERE id = $1"),
            list: load(include_str!("sql/list.sql"), None),
            cancel: load(include_str!("sql/cancel.sql"), None),
            requeue: load(include_str!("sql/requeue.sql"), Some(&wake_plain)),
            requeue_many: load(include_str!("sql/requeue_many.sql"), Some(&wake_plain)),
            throughput: format!(
                "SELECT minute, queue_name, completed, failed, dead, retried \
                 FROM {s}.throughput_since($1)"
            ),
            status_of: format!("SELECT status FROM {t} WHERE id = $1"),
            // Totals kept by triggers (migration 5), never a scan of the jobs.
            counts: format!("SELECT queue_name, status, n FROM {s}.count_jobs()"),
            fold_counts: format!("SELECT {s}.fold_job_counts()"),
            prune: load(include_str!("sql/prune.sql"), None),
            next_due: load(include_str!("sql/next_due.sql"), None),
            holders: load(include_str!("sql/holders.sql"), None),
            replace: load(include_str!("sql/replace.sql"), Some(&wake_enqueue)),
            claim_candidates: load(include_str!("sql/claim_candidates.sql"), None),
            claim_counts: load(include_str!("sql/claim_counts.sql"), None),
            claim_take: load(include_str!("sql/claim_take.sql"), None),
            progress: load(include_str!("sql/progress.sql"), None),
            delete: format!("DELETE FROM {t} WHERE id = $1 AND status <> 'RUNNING' RETURNING id"),
            pause: format!(
                "INSERT INTO {paused} (queue) VALUES ($1) ON CONFLICT (queue) DO NOTHING"
            ),
            resume: format!(
                "WITH d AS (DELETE FROM {paused} WHERE queue = $1 RETURNING queue) \
                 SELECT pg_notify({channel}, queue || ' !')::text FROM d"
            ),
            paused: format!("SELECT queue FROM {paused} ORDER BY queue COLLATE \"C\""),
            register_worker: format!(
                "WITH gone AS (DELETE FROM {workers} WHERE expires_at <= now() AND id <> $1) \
                 INSERT INTO {workers} (id, info, last_seen, expires_at) \
                 VALUES ($1, $2, now(), now() + $3 {us}) \
                 ON CONFLICT (id) DO UPDATE SET info = excluded.info, \
                 last_seen = excluded.last_seen, expires_at = excluded.expires_at"
            ),
            deregister_worker: format!("DELETE FROM {workers} WHERE id = $1"),
            workers: format!(
                "SELECT info, last_seen FROM {workers} WHERE expires_at > now() ORDER BY id COLLATE \"C\""
            ),
            // Taken when free, expired or ours; the conflict's row lock
            // serializes candidates, and the condition is checked on the
            // newest row version.
            try_lead: format!(
                "INSERT INTO {leaders} AS l (role, holder, until) VALUES ($1, $2, now() + $3 {us}) \
                 ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                 WHERE l.holder = excluded.holder OR l.until <= now() \
                 RETURNING holder"
            ),
            resign: format!("DELETE FROM {leaders} WHERE role = $1 AND holder = $2"),
            leader: format!(
                "SELECT holder, until FROM {leaders} WHERE role = $1 AND until > now()"
            ),
            schedules: format!(
                "SELECT name, cron, timezone, last_tick, last_job, next_tick, updated_at \
                 FROM {schedules} ORDER BY name COLLATE \"C\""
            ),
            save_schedule: format!(
                "INSERT INTO {schedules} \
                 (name, cron, timezone, last_tick, last_job, next_tick, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, now()) \
                 ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, \
                 timezone = excluded.timezone, last_tick = excluded.last_tick, \
                 last_job = excluded.last_job, next_tick = excluded.next_tick, \
                 updated_at = excluded.updated_at"
            ),
            append_audit: format!(
                "INSERT INTO {audit} (at, actor, action, target, ok, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            audit_log: format!(
                "SELECT at, actor, action, target, ok, detail FROM {audit} \
                 WHERE ($1::timestamptz IS NULL OR at < $1) \
                 ORDER BY at DESC, seq DESC LIMIT $2 OFFSET $3"
            ),
            prune_audit: format!(
                "DELETE FROM {audit} WHERE seq IN \
                 (SELECT seq FROM {audit} WHERE at < $1 ORDER BY at, seq LIMIT $2)"
            ),
            notify: format!("SELECT pg_notify({channel}, $1)::text"),
            get_many: format!("SELECT {cols} FROM {t} WHERE id = ANY($1::uuid[])"),
            settle: load(include_str!("sql/settle.sql"), None),
            settled: format!("SELECT child, settled FROM {waits} WHERE child = ANY($1::uuid[])"),
            release_held: load(include_str!("sql/release_held.sql"), Some(&wake_plain)),
        }
    }
}
