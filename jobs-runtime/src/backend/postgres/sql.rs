//! The backend's statements: the long ones live in `sql/*.sql` beside this
//! file, with `__NAME__` placeholders spliced in once at connect.

use jobs_core::MAX_ERROR_HISTORY;

use super::options::{channel_name, quote_ident, quote_literal};

const JOB_COLUMNS: &str = "id, seq, queue_name, job_type, payload, status, priority, retry_count, \
     max_retries, run_at, created_at, started_at, completed_at, error_message, errors, result_data, \
     metadata, locked_by, lease_until, attempt, lease_token, error_count, cancelled_at, timeout_ms";

const MIN: &str = "-9223372036854775808";

const WAITING: &str = "('PENDING', 'SCHEDULED', 'RETRYING')";

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
    pub(super) claim: String,
    pub(super) heartbeat: String,
    pub(super) record: String,
    pub(super) recover: String,
    pub(super) get: String,
    pub(super) list: String,
    pub(super) cancel: String,
    pub(super) requeue: String,
    pub(super) status_of: String,
    pub(super) counts: String,
    pub(super) prune: String,
    pub(super) next_due: String,
}

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
        let cols = JOB_COLUMNS;
        let channel = quote_literal(&channel_name(schema));
        let wake_enqueue = wake(&channel, "bool_or(status = 'SCHEDULED')");
        let wake_record = wake(&channel, "bool_or(run_at > now())");
        let wake_plain = wake(&channel, "false");
        let keep = keep_errors();
        // `__WAKE__` differs by statement: when its NOTIFY asks listeners to re-read their timer.
        let load = |file: &str, wake: Option<&str>| {
            let mut values = vec![
                ("__TABLE__", t.as_str()),
                ("__COLS__", cols),
                ("__WAITING__", WAITING),
                ("__RUNNING__", RUNNING),
                ("__MIN__", MIN),
                ("__LEASE_EXPIRED__", LEASE_EXPIRED),
                ("__KEEP_ERRORS__", keep.as_str()),
            ];
            values.extend(wake.map(|wake| ("__WAKE__", wake)));
            splice(statement(file), &values)
        };
        Sql {
            enqueue: load(include_str!("sql/enqueue.sql"), Some(&wake_enqueue)),
            claim: load(include_str!("sql/claim.sql"), None),
            heartbeat: load(include_str!("sql/heartbeat.sql"), None),
            record: load(include_str!("sql/record.sql"), Some(&wake_record)),
            recover: load(include_str!("sql/recover.sql"), Some(&wake_plain)),
            get: format!("SELECT {cols} FROM {t} WHERE id = $1"),
            list: load(include_str!("sql/list.sql"), None),
            cancel: load(include_str!("sql/cancel.sql"), None),
            requeue: load(include_str!("sql/requeue.sql"), Some(&wake_plain)),
            status_of: format!("SELECT status FROM {t} WHERE id = $1"),
            counts: format!(
                "SELECT queue_name, status, count(*) AS n FROM {t} GROUP BY queue_name, status"
            ),
            prune: load(include_str!("sql/prune.sql"), None),
            next_due: load(include_str!("sql/next_due.sql"), None),
        }
    }
}
