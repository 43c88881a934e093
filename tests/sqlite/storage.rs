//! What is stored: upgrading a database of an older schema, and values the
//! other backends cannot hold.

use std::time::Duration;

use jobs_core::backend::{ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::{Backend, JobFilter, JobId, JobStatus, NewJob};
use jobs_runtime::backend::sqlite::SqliteBackend;
use serde_json::json;

use crate::{temp_db, url_of};

/// A database of schema version 1 (before lease tokens) is upgraded on
/// connect: its jobs read back with a failure count taken from their history,
/// the cancelled mark from `error_message = 'cancelled'`, no token and no
/// timeout; a job that was RUNNING under the old schema is recovered through
/// lease expiry, since no worker can present a token for it.
#[tokio::test]
async fn a_version_1_database_is_upgraded_on_connect() {
    use sqlx::{Connection, Executor};

    let path = temp_db("v1");
    std::fs::create_dir_all(path.parent().unwrap()).expect("dir");
    let url = url_of(&path);
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
    let history = |n: u32| {
        let entries: Vec<_> = (1..=n)
            .map(|i| {
                json!({"attempt": i, "retry_count": i - 1, "at": "2024-01-01T00:00:00Z",
                       "message": format!("e{i}"), "retryable": true})
            })
            .collect();
        serde_json::to_string(&entries).unwrap()
    };
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("create v1");
        conn.execute(
            "CREATE TABLE jobs_schema (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .await
        .expect("schema table");
        conn.execute(include_str!(
            "../../jobs-runtime/src/backend/sqlite/migrations/001_init.sql"
        ))
        .await
        .expect("v1 schema");
        conn.execute("INSERT INTO jobs_schema VALUES (1, 0)")
            .await
            .expect("v1");
        let t = chrono::Utc::now().timestamp_micros() - 10_000_000;
        // 0: retried 25 times, waiting; 1: cancelled; 2: failed (not
        // cancelled); 3: RUNNING under an old worker, its lease expired.
        let (h25, h1) = (history(25), history(1));
        let rows = format!(
            "INSERT INTO jobs_queue (id, queue, job_type, payload, status, priority, \
                retry_count, max_retries, run_at, created_at, started_at, completed_at, \
                error_message, errors, locked_by, lease_until, attempt) VALUES \
             (?1, 'default', 't', '{{}}', 'RETRYING', 0, 25, 30, {t}, {t}, {t}, NULL, \
                'e25', '{h25}', NULL, NULL, 25), \
             (?2, 'default', 't', '{{}}', 'FAILED', 0, 0, 30, {t}, {t}, NULL, {t} + 5, \
                'cancelled', NULL, NULL, NULL, 0), \
             (?3, 'default', 't', '{{}}', 'FAILED', 0, 0, 30, {t}, {t}, {t}, {t} + 6, \
                'boom', '{h1}', NULL, NULL, 1), \
             (?4, 'default', 't', '{{}}', 'RUNNING', 0, 0, 30, {t}, {t}, {t}, NULL, \
                NULL, NULL, 'old-worker', {t} + 7, 1)"
        );
        sqlx::query(&rows)
            .bind(ids[0])
            .bind(ids[1])
            .bind(ids[2])
            .bind(ids[3])
            .execute(&mut conn)
            .await
            .expect("v1 rows");
        conn.close().await.expect("close");
    }

    let q = SqliteBackend::connect(&url).await.expect("upgrade");
    let get = |i: usize| {
        let q = &q;
        let id = JobId::from_uuid(ids[i]);
        async move { q.get(id).await.expect("get").expect("kept") }
    };
    let retried = get(0).await;
    assert_eq!(retried.error_count, 25, "counted from the history");
    assert_eq!(
        retried.errors.len(),
        25,
        "the history itself is kept as it was"
    );
    assert_eq!(
        (retried.lease_token, retried.cancelled_at, retried.timeout),
        (None, None, None)
    );
    let cancelled = get(1).await;
    assert_eq!(cancelled.cancelled_at, cancelled.completed_at);
    assert!(cancelled.cancelled_at.is_some());
    assert_eq!(cancelled.error_count, 0);
    let failed = get(2).await;
    assert_eq!((failed.cancelled_at, failed.error_count), (None, 1));
    let filter = JobFilter::default().cancelled(true);
    let listed: Vec<JobId> = q
        .list(&filter)
        .await
        .expect("list")
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed, vec![JobId::from_uuid(ids[1])]);

    // The old worker's lease (no token) is recovered like any expired one.
    let running = get(3).await;
    assert_eq!(
        (running.status, running.lease_token),
        (JobStatus::Running, None)
    );
    let recovered = q.recover_expired().await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].job.id, JobId::from_uuid(ids[3]));
    let back = get(3).await;
    assert_eq!((back.status, back.error_count), (JobStatus::Retrying, 1));

    // The next failure of the long history keeps only the last entries.
    let job = super::claim(&q, "default", 10, Duration::from_secs(60))
        .await
        .into_iter()
        .find(|j| j.id == retried.id)
        .expect("the retried job is due");
    assert!(job.lease_token.is_some());
    let error = jobs_core::backend::AttemptFailure::new("e26", true);
    let lost = q
        .record(
            "w",
            &[OutcomeUpdate::new(
                job.fence(),
                Outcome::Retry {
                    delay: Duration::ZERO,
                    error,
                },
            )],
        )
        .await
        .expect("record");
    assert!(lost.is_empty());
    let after = get(0).await;
    assert_eq!(after.error_count, 26);
    assert_eq!(after.errors.len(), jobs_core::MAX_ERROR_HISTORY);
    assert_eq!(after.errors[0].message, "e7");
    assert_eq!(after.errors.last().unwrap().message, "e26");

    // Opening it again migrates nothing more.
    drop(q);
    SqliteBackend::connect(&url).await.expect("reopen");
}

/// SQLite holds a NUL in text and JSON escapes it, so a NUL in an error
/// message or a result comes back exactly, in the message and the history.
#[tokio::test]
async fn a_nul_in_an_error_or_a_result_is_stored_faithfully() {
    let q = SqliteBackend::connect(&url_of(&temp_db("nul")))
        .await
        .expect("open");
    let id = q
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .expect("enqueue")[0]
        .id();
    let job = super::claim(&q, "default", 1, Duration::from_secs(60))
        .await
        .pop()
        .expect("claimed");
    let error = jobs_core::backend::AttemptFailure::new("bad \u{0} byte", false);
    let result = json!({"k\u{0}": "v\u{0}"});
    let lost = q
        .record(
            "w",
            &[OutcomeUpdate::new(
                job.fence(),
                Outcome::Fail {
                    error,
                    result: Some(result.clone()),
                },
            )],
        )
        .await
        .expect("record");
    assert!(lost.is_empty());
    let j = q.get(id).await.expect("get").expect("stored");
    assert_eq!(j.error_message.as_deref(), Some("bad \u{0} byte"));
    assert_eq!(j.errors[0].message, "bad \u{0} byte");
    assert_eq!(j.result_data, Some(result));
}

/// A database of schema version 2 is upgraded in place to version 3: its
/// jobs read back with no snoozes, progress, unique key or limits, they are
/// claimed as before, and the new features work on the same file (the unique
/// index, limits, a paused queue).
#[tokio::test]
async fn a_version_2_database_is_upgraded_on_connect() {
    use jobs_core::{Enqueued, Uniqueness};
    use sqlx::{Connection, Executor};

    let path = temp_db("v2");
    std::fs::create_dir_all(path.parent().unwrap()).expect("dir");
    let url = url_of(&path);
    let old = uuid::Uuid::now_v7();
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("create v2");
        conn.execute(
            "CREATE TABLE jobs_schema (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .await
        .expect("schema table");
        for (version, sql) in [
            (
                1,
                include_str!("../../jobs-runtime/src/backend/sqlite/migrations/001_init.sql"),
            ),
            (
                2,
                include_str!(
                    "../../jobs-runtime/src/backend/sqlite/migrations/002_lease_tokens.sql"
                ),
            ),
        ] {
            conn.execute(sql).await.expect("migration");
            sqlx::query("INSERT INTO jobs_schema VALUES (?1, 0)")
                .bind(version)
                .execute(&mut conn)
                .await
                .expect("version");
        }
        let t = chrono::Utc::now().timestamp_micros() - 1_000_000;
        sqlx::query(&format!(
            "INSERT INTO jobs_queue (id, queue, job_type, payload, status, priority, \
                max_retries, run_at, created_at) VALUES \
             (?1, 'default', 't', '{{\"v\":2}}', 'PENDING', 0, 3, {t}, {t})"
        ))
        .bind(old)
        .execute(&mut conn)
        .await
        .expect("v2 row");
        conn.close().await.expect("close");
    }

    let q = SqliteBackend::connect(&url).await.expect("upgrade");
    let job = q
        .get(JobId::from_uuid(old))
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!((job.snoozes, job.progress, job.unique_key), (0, None, None));
    assert!(job.limits.is_empty());

    let unique = || NewJob::new("u", json!({})).unique(Uniqueness::new("k"));
    let first = q.enqueue_batch(vec![unique()]).await.expect("enqueue")[0];
    assert!(first.is_inserted());
    assert_eq!(
        q.enqueue_batch(vec![unique()]).await.expect("enqueue")[0],
        Enqueued::Duplicate(first.id())
    );
    q.pause_queue("default").await.expect("pause");
    let none = q
        .claim(ClaimRequest::new(
            "w",
            &["default".to_owned()],
            10,
            Duration::from_secs(60),
        ))
        .await
        .expect("claim");
    assert!(none.jobs.is_empty());
    q.resume_queue("default").await.expect("resume");
    let claimed = q
        .claim(ClaimRequest::new(
            "w",
            &["default".to_owned()],
            10,
            Duration::from_secs(60),
        ))
        .await
        .expect("claim");
    let ids: Vec<JobId> = claimed.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![JobId::from_uuid(old), first.id()]);
}

/// The write-ahead log stays bounded under steady writes. The backend's
/// checkpointer copies the log beside the writer, but a checkpoint racing a
/// busy writer never catches up with it and the log only restarts once one
/// has, so the writer still checkpoints itself past a few thousand pages.
/// The same workload with the writer's own checkpoint turned off shows what
/// the bound prevents: that log outgrows it.
#[tokio::test]
async fn the_write_ahead_log_stays_bounded_under_steady_writes() {
    /// What the log may reach: twice the writer's threshold (4,000 pages of
    /// 4 KiB, each with a 24-byte frame header).
    const BOUND: u64 = 2 * 4_000 * (4_096 + 24);

    async fn steady_writes(url: &str, options: sqlx::sqlite::SqliteConnectOptions) -> u64 {
        let q = SqliteBackend::connect_with(url, options, false)
            .await
            .expect("open");
        let path = url.strip_prefix("sqlite://").expect("a file url");
        let wal = format!("{path}-wal");
        let mut largest = 0;
        // One job at a time through its three commits, as a worker with
        // concurrency 1 runs them: ~20 pages a job, ~100 MB in all.
        for n in 0..1_500 {
            q.enqueue_batch(vec![NewJob::new("t", json!({ "n": n }))])
                .await
                .expect("enqueue");
            let job = super::claim(&q, "default", 1, Duration::from_secs(60))
                .await
                .pop()
                .expect("claimed");
            let update = OutcomeUpdate::new(job.fence(), Outcome::Complete { result: None });
            assert!(q.record("w", &[update]).await.expect("record").is_empty());
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        q.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        largest
    }

    let url = url_of(&temp_db("wal-bound"));
    let options = SqliteBackend::options(&url).expect("options");
    let bounded = steady_writes(&url, options).await;
    assert!(
        bounded <= BOUND,
        "the log grew to {bounded} bytes, past {BOUND}"
    );

    let url = url_of(&temp_db("wal-unbounded"));
    let options = SqliteBackend::options(&url)
        .expect("options")
        .pragma("wal_autocheckpoint", "0");
    let unbounded = steady_writes(&url, options).await;
    assert!(
        unbounded > BOUND,
        "without the writer's checkpoint the log grows past the bound ({unbounded} bytes): \
         the workload writes enough to tell"
    );
}

/// A row a claim cannot read (a value written past this backend: here a
/// payload that is not JSON, an error history that is not JSON, metadata
/// that is not an object) never stops its queue: the claim leases it, fails
/// it for good saying why, and delivers the others — on the fast path, on a
/// capped queue's and on the limited path alike, with the counts kept.
/// Mended, it can be requeued, and it runs.
#[tokio::test]
async fn an_unreadable_row_fails_alone_and_never_stops_its_queue() {
    use jobs_core::ClaimLimit;

    let path = temp_db("corrupt");
    std::fs::create_dir_all(path.parent().unwrap()).expect("dir");
    let q = SqliteBackend::connect(&url_of(&path)).await.expect("open");
    // Per queue: which column is spoiled, and how.
    let spoiled = [
        ("plain", "payload", "'{nope'"),
        ("capped", "errors", "'not json'"),
        ("keyed", "metadata", "'[1]'"),
    ];
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for (queue, column, value) in spoiled {
        let jobs = (0..3)
            .map(|n| {
                let job = NewJob::new("t", json!({ "n": n })).queue(queue);
                if queue == "keyed" {
                    job.concurrency("k", 10)
                } else {
                    job
                }
            })
            .collect();
        let ids: Vec<JobId> = q
            .enqueue_batch(jobs)
            .await
            .expect("enqueue")
            .iter()
            .map(|e| e.id())
            .collect();
        let raw = rusqlite::Connection::open(&path).expect("raw");
        raw.execute(
            &format!("UPDATE jobs_queue SET {column} = {value} WHERE id = ?1"),
            [&ids[1].as_uuid().as_bytes()[..]],
        )
        .expect("spoil");
        bad.push(ids[1]);
        good.push(vec![ids[0], ids[2]]);
    }
    let lease = Duration::from_secs(60);
    for (i, (queue, _, _)) in spoiled.iter().enumerate() {
        let limits = match *queue {
            "capped" => vec![ClaimLimit::new("capped").global(10)],
            _ => Vec::new(),
        };
        let queues = [queue.to_string()];
        let claimed = q
            .claim(ClaimRequest::new("w", &queues, 16, lease).with_limits(&limits))
            .await
            .unwrap_or_else(|e| panic!("a claim of `{queue}` goes on: {e}"));
        let mut ids: Vec<JobId> = claimed.jobs.iter().map(|j| j.id).collect();
        ids.sort();
        assert_eq!(ids, good[i], "`{queue}`: the readable jobs, delivered");
    }
    let raw = rusqlite::Connection::open(&path).expect("raw");
    for (id, (queue, column, _)) in bad.iter().zip(spoiled) {
        let (status, message, errors, lease): (String, String, String, Option<i64>) = raw
            .query_row(
                "SELECT status, error_message, errors, lease_token FROM jobs_queue WHERE id = ?1",
                [&id.as_uuid().as_bytes()[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("row");
        assert_eq!(status, "FAILED", "`{queue}`: its unreadable job failed");
        assert!(
            message.contains("corrupt job data") && message.contains(column),
            "`{queue}`: the error says what could not be read: {message}"
        );
        let errors: Vec<serde_json::Value> = serde_json::from_str(&errors).expect("a history");
        assert_eq!(errors.last().unwrap()["retryable"], json!(false));
        assert_eq!(lease, None, "`{queue}`: its lease ended");
    }
    let counts = q.counts().await.expect("counts");
    for (queue, _, _) in spoiled {
        let of = |status| {
            counts
                .iter()
                .find(|c| c.queue == queue && c.status == status)
                .map_or(0, |c| c.count)
        };
        assert_eq!(
            (of(JobStatus::Running), of(JobStatus::Failed)),
            (2, 1),
            "`{queue}`: the counts"
        );
    }
    // Mended, the first one is requeued and runs with what it now holds.
    raw.execute(
        "UPDATE jobs_queue SET payload = '{\"n\":1}' WHERE id = ?1",
        [&bad[0].as_uuid().as_bytes()[..]],
    )
    .expect("mend");
    q.requeue(bad[0]).await.expect("requeue");
    let again = super::claim(&q, "plain", 16, lease).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, &again[0].payload), (bad[0], &json!({"n": 1})));
    drop(raw);
    q.close().await;
}

/// A job whose lease ran out and whose row cannot be read fails for good
/// in the recovery that found it; the recovery of the others goes on.
#[tokio::test]
async fn an_unreadable_row_never_stops_the_recovery_of_the_others() {
    let path = temp_db("corrupt-recovery");
    std::fs::create_dir_all(path.parent().unwrap()).expect("dir");
    let q = SqliteBackend::connect(&url_of(&path)).await.expect("open");
    let ids: Vec<JobId> = q
        .enqueue_batch(
            (0..3)
                .map(|n| NewJob::new("t", json!({ "n": n })))
                .collect(),
        )
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id())
        .collect();
    let claimed = super::claim(&q, "default", 16, Duration::from_millis(1)).await;
    assert_eq!(claimed.len(), 3);
    let raw = rusqlite::Connection::open(&path).expect("raw");
    raw.execute(
        "UPDATE jobs_queue SET errors = 'not json' WHERE id = ?1",
        [&ids[1].as_uuid().as_bytes()[..]],
    )
    .expect("spoil");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut recovered: Vec<JobId> = q
        .recover_expired()
        .await
        .expect("the recovery goes on")
        .iter()
        .map(|r| r.job.id)
        .collect();
    recovered.sort();
    assert_eq!(recovered, vec![ids[0], ids[2]]);
    let (status, message): (String, String) = raw
        .query_row(
            "SELECT status, error_message FROM jobs_queue WHERE id = ?1",
            [&ids[1].as_uuid().as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert_eq!(status, "FAILED");
    assert!(message.contains("errors"), "{message}");
    assert!(q.recover_expired().await.expect("again").is_empty());
    drop(raw);
    q.close().await;
}
