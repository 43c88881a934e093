//! The statements on `jobs_queue`, kept as `.sql` files under `sql/` and
//! completed here: constants and sizes go into their `{NAME}` placeholders.
//!
//! The files are laid out for reading. Loading drops whole-line `--` comments
//! and turns each run of whitespace (line breaks, indentation) into one space,
//! so SQLite and its statement cache see each statement as one line with
//! single spaces. No string literal in the files holds whitespace or starts a
//! line with `--`, so this only undoes the layout; keep it that way.

use std::sync::LazyLock;

use jobs_core::MAX_ERROR_HISTORY;

/// Rows per multi-row INSERT (19 parameters each; SQLite allows 32766).
pub(super) const INSERT_CHUNK: usize = 500;
/// Rows per `VALUES` list of batched updates; lists are padded to a power of two
/// so only a handful of statements are ever prepared.
pub(super) const UPDATE_CHUNK: usize = 256;

/// Parameters per row of [`transition`].
pub(super) const TRANSITION_WIDTH: usize = 14;

/// Whether a row of `transition.sql` ends its job cancelled.
const CANCELLED: &str =
    "(v.column13 IS NOT NULL AND (v.column14 OR jobs_queue.cancelled_at IS NOT NULL))";

/// A waiting job (the condition of the ready and due indexes, migration 7).
/// Conditions on status are ORs, never `IN` lists: SQLite checks a partial
/// index's condition per row written and builds a temporary table for an
/// `IN` list of three values or more each time (see migration 7); and a
/// statement repeats an index's condition word for word for SQLite to use it.
pub(super) const WAITING: &str =
    "(status = 'PENDING' OR status = 'SCHEDULED' OR status = 'RETRYING')";
/// The columns of a job, in the order [`job_from_row`](super::row::job_from_row) reads.
const JOB_COLS: &str = "id, queue, job_type, payload, status, priority, retry_count, \
    max_retries, run_at, created_at, started_at, completed_at, error_message, errors, \
    result_data, metadata, locked_by, lease_until, attempt, seq, lease_token, error_count, \
    cancelled_at, timeout_ms, snoozes, progress, unique_key, concurrency_key, concurrency_max, \
    rate_key, rate_max, rate_per_ms, sequence_key";

/// The columns `job_from_row` reads, in its order.
pub(super) fn job_cols() -> &'static str {
    JOB_COLS
}

/// A statement file as executed: comment lines dropped, layout collapsed, and
/// each `{NAME}` of `vars` replaced by its value.
fn load(file: &str, vars: &[(&str, &str)]) -> String {
    let mut sql = file
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    for (name, value) in vars {
        sql = sql.replace(&format!("{{{name}}}"), value);
    }
    sql
}

/// `n` rounded up to a power of two (at most [`UPDATE_CHUNK`]).
pub(super) fn padded(n: usize) -> usize {
    n.next_power_of_two().min(UPDATE_CHUNK)
}

/// `(?, ?, …), (…)`: `rows` tuples of `width` anonymous parameters. Big
/// statements use anonymous parameters only: SQLite looks numbered ones up by a
/// linear scan, which makes binding thousands of them quadratic.
fn values_list(rows: usize, width: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    vec![tuple.as_str(); rows].join(", ")
}

/// Whether a row has limits of its own.
const LIMITED: &str =
    "(concurrency_key IS NOT NULL OR rate_key IS NOT NULL OR sequence_key IS NOT NULL)";
/// A job not finished yet (the condition of the sequence index).
const UNFINISHED: &str = "(status = 'PENDING' OR status = 'SCHEDULED' OR status = 'RUNNING' \
    OR status = 'RETRYING')";

/// The fast claim of up to `?4` jobs from `queues` queues (at least one), an
/// earlier queue's jobs first, under lease token `?5`.
pub(super) fn claim(queues: usize) -> String {
    static CLAIM: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/claim.sql"), &[("JOB_COLS", JOB_COLS)]));
    static ONE_QUEUE: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/claim_one_queue.sql"),
            &[("WAITING", WAITING), ("LIMITED", LIMITED)],
        )
    });
    static QUEUES: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/claim_queues.sql"), &[]));
    static QUEUE_ARM: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/claim_queue_arm.sql"),
            &[("WAITING", WAITING), ("LIMITED", LIMITED)],
        )
    });
    let selection = if queues == 1 {
        ONE_QUEUE.clone()
    } else {
        let arms: Vec<String> = (0..queues)
            .map(|n| {
                QUEUE_ARM
                    .replace("{pos}", &n.to_string())
                    .replace("{param}", &(n + 6).to_string())
            })
            .collect();
        QUEUES.replace("{arms}", &arms.join(" UNION ALL "))
    };
    CLAIM.replace("{selection}", &selection)
}

/// How a queue's share of a capped claim is bounded (see [`claim_capped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArmCap {
    /// By the claim's size only.
    None,
    /// By a share of the claim (the manager's local cap).
    Take,
    /// By the cluster's running cap (and a share, which may be the claim's size).
    Global,
}

/// The fast claim of [`claim`], each queue's share bounded as `caps` says,
/// in the same statement (so under its write lock). Parameters: ?1 now,
/// ?2 worker, ?3 lease_until, ?4 limit, ?5 token, ?6.. the `n` queues, then
/// per queue three: its share (or the limit), its cap, and the JSON
/// `[[id hex, token], ..]` of the claimer's jobs of the queue being recorded
/// (still RUNNING under those leases, but no longer running: not counted) —
/// bound for every queue, read as its `ArmCap` says.
pub(super) fn claim_capped(caps: &[ArmCap]) -> String {
    static CLAIM: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/claim.sql"), &[("JOB_COLS", JOB_COLS)]));
    static QUEUES: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/claim_queues.sql"), &[]));
    static QUEUE_ARM: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/claim_queue_arm.sql"),
            &[("WAITING", WAITING), ("LIMITED", LIMITED)],
        )
    });
    let n = caps.len();
    let arms: Vec<String> = caps
        .iter()
        .enumerate()
        .map(|(k, cap)| {
            let queue = k + 6;
            let share = 6 + n + 3 * k;
            let (global, held) = (share + 1, share + 2);
            let limit = match cap {
                ArmCap::None => "?4".to_owned(),
                ArmCap::Take => format!("min(?4, ?{share})"),
                ArmCap::Global => format!(
                    "max(0, min(?4, ?{share}, ?{global} \
                     - (SELECT COUNT(*) FROM jobs_queue WHERE queue = ?{queue} AND status = 'RUNNING') \
                     + (SELECT COUNT(*) FROM json_each(?{held}) AS f JOIN jobs_queue AS j \
                        ON j.id = unhex(f.value ->> 0) AND j.lease_token = f.value ->> 1 \
                        WHERE j.queue = ?{queue} AND j.status = 'RUNNING')))"
                ),
            };
            QUEUE_ARM
                .replace("{pos}", &k.to_string())
                .replace("{param}", &queue.to_string())
                .replace("LIMIT ?4", &format!("LIMIT {limit}"))
        })
        .collect();
    let selection = QUEUES.replace("{arms}", &arms.join(" UNION ALL "));
    CLAIM.replace("{selection}", &selection)
}

/// Whether any of the queues of the JSON array ?2 that are not paused has
/// a job due at ?1.
pub(super) fn due_in_queues() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT EXISTS (SELECT 1 FROM json_each(?2) AS q JOIN jobs_queue AS j \
             ON j.queue = q.value AND {WAITING} AND j.run_at <= ?1 \
             WHERE q.value NOT IN (SELECT queue FROM jobs_paused))"
        )
    });
    &SQL
}

/// The statements of the limited claim path (`limits.rs`).
pub(super) mod limited {
    use super::*;

    pub(crate) fn candidates() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            load(
                include_str!("sql/limited_candidates.sql"),
                &[("WAITING", WAITING)],
            )
        });
        &SQL
    }

    pub(crate) fn running_in_queue() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| load(include_str!("sql/running_in_queue.sql"), &[]));
        &SQL
    }

    pub(crate) fn running_by_keys() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| load(include_str!("sql/running_by_keys.sql"), &[]));
        &SQL
    }

    pub(crate) fn sequence_states() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            load(
                include_str!("sql/sequence_states.sql"),
                &[("UNFINISHED", UNFINISHED)],
            )
        });
        &SQL
    }

    pub(crate) fn rate_counts() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| load(include_str!("sql/rate_counts.sql"), &[]));
        &SQL
    }

    pub(crate) fn rate_log() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| load(include_str!("sql/rate_log.sql"), &[]));
        &SQL
    }

    pub(crate) fn rate_sweep() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| load(include_str!("sql/rate_sweep.sql"), &[]));
        &SQL
    }

    pub(crate) fn claim_seqs() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            load(
                include_str!("sql/claim_seqs.sql"),
                &[("WAITING", WAITING), ("JOB_COLS", JOB_COLS)],
            )
        });
        &SQL
    }
}

/// Parameters per row of [`insert`].
pub(super) const INSERT_WIDTH: usize = 19;

static INSERT: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/insert.sql"), &[]));

/// The insert of `rows` jobs.
pub(super) fn insert(rows: usize) -> String {
    INSERT
        .replace("{values}", &values_list(rows, INSERT_WIDTH))
        .replace("{conflict}", "")
}

/// The insert of one unique job: skipped (no row returned) if it breaks a
/// uniqueness constraint.
pub(super) fn insert_unique() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        INSERT
            .replace("{values}", &values_list(1, INSERT_WIDTH))
            .replace("{conflict}", " ON CONFLICT DO NOTHING RETURNING seq")
    });
    &SQL
}

/// The holder of unique key `?1` other than job `?2` (NULL: any), and its status.
pub(super) fn unique_holder() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/unique_holder.sql"), &[]));
    &SQL
}

/// Debounce: a waiting unique key holder takes a new job's contents.
pub(super) fn replace() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/replace.sql"), &[]));
    &SQL
}

/// The completion of `rows` attempts.
pub(super) fn complete(rows: usize) -> String {
    static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/complete.sql"), &[]));
    SQL.replace("{values}", &values_list(rows, 3))
}

/// The fenced deletion of up to `rows` attempts, rows of (id, lease_token),
/// as completed and not kept (a retention that keeps no completed jobs):
/// returns the id and queue of each job deleted.
pub(super) fn drop_completed(rows: usize) -> String {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/drop_completed.sql"), &[]));
    SQL.replace("{values}", &values_list(rows, 2))
}

/// Adds completions of jobs [`drop_completed`] deleted to the throughput
/// history: `?1` when, `?2` the queue, `?3` how many.
pub(super) fn count_dropped() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/count_dropped.sql"), &[]));
    &SQL
}

/// Which of `rows` attempts a [`complete`] statement completed.
pub(super) fn completed_by_call(rows: usize) -> String {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/completed_by_call.sql"), &[]));
    SQL.replace("{values}", &values_list(rows, 1))
}

/// The failure, retry or release of `rows` attempts.
pub(super) fn transition(rows: usize) -> String {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/transition.sql"),
            &[
                ("MAX_ERROR_HISTORY", &MAX_ERROR_HISTORY.to_string()),
                ("CANCELLED", CANCELLED),
            ],
        )
    });
    SQL.replace("{values}", &values_list(rows, TRANSITION_WIDTH))
}

/// Fails one claimed job whose row could not be read.
pub(super) fn fail_corrupt() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/fail_corrupt.sql"),
            &[("MAX_ERROR_HISTORY", &MAX_ERROR_HISTORY.to_string())],
        )
    });
    &SQL
}

/// The lease extension of `rows` attempts.
pub(super) fn heartbeat(rows: usize) -> String {
    static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/heartbeat.sql"), &[]));
    SQL.replace("{values}", &values_list(rows, 2))
}

pub(super) fn recover_any() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/recover_any.sql"), &[]));
    &SQL
}

pub(super) fn recover_expired() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/recover_expired.sql"),
            &[("JOB_COLS", JOB_COLS)],
        )
    });
    &SQL
}

pub(super) fn get() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/get.sql"), &[("JOB_COLS", JOB_COLS)]));
    &SQL
}

/// The jobs whose ids the JSON array `?1` lists (hex), in any order.
pub(super) fn get_many() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/get_many.sql"), &[("JOB_COLS", JOB_COLS)]));
    &SQL
}

/// The listing, filtered by the `?3` queue, `?4` status and `?5` job type
/// where asked, and to cancelled jobs (`Some(true)`) or the others (`Some(false)`).
pub(super) fn list(queue: bool, status: bool, job_type: bool, cancelled: Option<bool>) -> String {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/list.sql"), &[("JOB_COLS", JOB_COLS)]));
    let mut filters = String::new();
    if queue {
        filters.push_str(" AND queue = ?3");
    }
    if status {
        filters.push_str(" AND status = ?4");
    }
    if job_type {
        filters.push_str(" AND job_type = ?5");
    }
    match cancelled {
        Some(true) => filters.push_str(" AND cancelled_at IS NOT NULL"),
        Some(false) => filters.push_str(" AND cancelled_at IS NULL"),
        None => {}
    }
    SQL.replace("{filters}", &filters)
}

/// The next due time over `queues` queues (at least one), bound from `?2` on.
pub(super) fn next_due(queues: usize) -> String {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/next_due.sql"), &[("WAITING", WAITING)]));
    let marks = (0..queues)
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    SQL.replace("{marks}", &marks)
}

pub(super) fn cancel() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        load(
            include_str!("sql/cancel.sql"),
            &[("UNFINISHED", UNFINISHED), ("JOB_COLS", JOB_COLS)],
        )
    });
    &SQL
}

pub(super) fn requeue() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| load(include_str!("sql/requeue.sql"), &[("JOB_COLS", JOB_COLS)]));
    &SQL
}

/// A statement file without placeholders, loaded once.
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $file:literal;)*) => {
        $(
            $(#[$doc])*
            pub(super) fn $name() -> &'static str {
                static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!($file), &[]));
                &SQL
            }
        )*
    };
}

statements! {
    delete = "sql/delete.sql";
    unique_key_of = "sql/unique_key_of.sql";
    progress = "sql/progress.sql";
    pause = "sql/pause.sql";
    resume = "sql/resume.sql";
    paused = "sql/paused.sql";
    register_worker = "sql/register_worker.sql";
    expire_workers = "sql/expire_workers.sql";
    deregister_worker = "sql/deregister_worker.sql";
    workers = "sql/workers.sql";
    try_lead = "sql/try_lead.sql";
    resign = "sql/resign.sql";
    leader = "sql/leader.sql";
    schedules = "sql/schedules.sql";
    save_schedule = "sql/save_schedule.sql";
    append_audit = "sql/append_audit.sql";
    audit_log = "sql/audit_log.sql";
    prune_audit = "sql/prune_audit.sql";
    throughput = "sql/throughput.sql";
    prune_throughput = "sql/prune_throughput.sql";
    requeue_candidates = "sql/requeue_candidates.sql";
    requeue_many = "sql/requeue_many.sql";
    /// Settles workflow edges from one parent; returns the new ones' children.
    settle_edges = "sql/settle_edges.sql";
    /// Counts one more settled edge per child; returns the counts.
    count_settled = "sql/count_settled.sql";
    /// The settled edge counts of some children.
    settled = "sql/settled.sql";
    /// Releases held workflow steps; returns their ids.
    release_held = "sql/release_held.sql";
}

pub(super) fn counts() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/counts.sql"), &[]));
    &SQL
}

/// The pruning of finished jobs in `statuses` (at least one, terminal),
/// of queue `?3` only if `queue`.
pub(super) fn prune(statuses: &[jobs_core::JobStatus], queue: bool) -> String {
    static SQL: LazyLock<String> = LazyLock::new(|| load(include_str!("sql/prune.sql"), &[]));
    let statuses = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    SQL.replace("{statuses}", &statuses)
        .replace("{queue}", if queue { " AND queue = ?3" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder is filled and no comment is left in a statement.
    #[test]
    fn statements_are_complete() {
        let mut all = vec![
            recover_any().to_owned(),
            recover_expired().to_owned(),
            get().to_owned(),
            get_many().to_owned(),
            settle_edges().to_owned(),
            count_settled().to_owned(),
            settled().to_owned(),
            release_held().to_owned(),
            cancel().to_owned(),
            requeue().to_owned(),
            counts().to_owned(),
            prune(&[jobs_core::JobStatus::Failed], true),
            prune(&jobs_core::JobStatus::ALL, false),
            delete().to_owned(),
            unique_key_of().to_owned(),
            unique_holder().to_owned(),
            insert_unique().to_owned(),
            replace().to_owned(),
            progress().to_owned(),
            pause().to_owned(),
            resume().to_owned(),
            paused().to_owned(),
            register_worker().to_owned(),
            expire_workers().to_owned(),
            deregister_worker().to_owned(),
            workers().to_owned(),
            try_lead().to_owned(),
            resign().to_owned(),
            leader().to_owned(),
            schedules().to_owned(),
            save_schedule().to_owned(),
            append_audit().to_owned(),
            audit_log().to_owned(),
            prune_audit().to_owned(),
            limited::candidates().to_owned(),
            limited::running_in_queue().to_owned(),
            limited::running_by_keys().to_owned(),
            limited::sequence_states().to_owned(),
            limited::rate_counts().to_owned(),
            limited::rate_log().to_owned(),
            limited::rate_sweep().to_owned(),
            limited::claim_seqs().to_owned(),
        ];
        for n in [1, 2, 3] {
            all.extend([
                claim(n),
                insert(n),
                complete(n),
                completed_by_call(n),
                transition(n),
                heartbeat(n),
                next_due(n),
            ]);
        }
        for mask in 0..8 {
            for cancelled in [None, Some(true), Some(false)] {
                all.push(list(mask & 1 != 0, mask & 2 != 0, mask & 4 != 0, cancelled));
            }
        }
        for sql in &all {
            assert!(!sql.contains(['{', '}', '\n']), "{sql}");
            assert!(!sql.contains("--"), "{sql}");
        }
    }
}
