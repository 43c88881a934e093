//! `counts()` reads counters kept by triggers (migration 4), not a scan of
//! every job: they stay exact through every kind of change, and a database of
//! an older version gets them filled from the jobs it already holds.

use std::collections::BTreeMap;
use std::time::Duration;

use jobs_core::backend::{AttemptFailure, Outcome, OutcomeUpdate};
use jobs_core::{Backend, CancelRequest, Enqueued, Job, JobId, NewJob, PruneRequest, Uniqueness};
use jobs_runtime::backend::sqlite::SqliteBackend;
use serde_json::json;
use sqlx::{Connection, Executor, Row};

use super::claim;
use crate::{temp_db, url_of};

type Tally = BTreeMap<(String, String), u64>;

/// What `counts()` says.
async fn counted(q: &SqliteBackend) -> Tally {
    q.counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|c| ((c.queue, c.status.as_str().to_owned()), c.count))
        .collect()
}

/// What a full scan of the table says.
async fn scanned(url: &str) -> Tally {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
    let rows = sqlx::query("SELECT queue, status, COUNT(*) FROM jobs_queue GROUP BY queue, status")
        .fetch_all(&mut conn)
        .await
        .expect("scan");
    rows.iter()
        .map(|r| {
            let n: i64 = r.get(2);
            ((r.get(0), r.get(1)), n as u64)
        })
        .collect()
}

async fn assert_exact(q: &SqliteBackend, url: &str, when: &str) -> Tally {
    let counted = counted(q).await;
    assert_eq!(counted, scanned(url).await, "counts() after {when}");
    counted
}

async fn record(q: &SqliteBackend, outcomes: Vec<(&Job, Outcome)>) {
    let updates: Vec<_> = outcomes
        .into_iter()
        .map(|(j, o)| OutcomeUpdate::new(j.fence(), o))
        .collect();
    let lost = q.record("w", &updates).await.expect("record");
    assert!(lost.is_empty(), "{lost:?}");
}

fn job(queue: &str, i: usize) -> NewJob {
    NewJob::new("t", json!({ "i": i })).queue(queue)
}

fn err(m: &str, retryable: bool) -> AttemptFailure {
    AttemptFailure::new(m, retryable)
}

/// Enqueues (plain, scheduled, unique, refused duplicates, debounce
/// replaces), claims, every outcome, recovered leases, cancels (waiting and
/// running), requeues, deletes and prunes: after each step `counts()` is
/// exactly what a `GROUP BY` over the table says.
#[tokio::test]
async fn the_counters_stay_exact_through_every_kind_of_change() {
    let path = temp_db("counts");
    let url = url_of(&path);
    let q = SqliteBackend::connect(&url).await.expect("open");
    let long = Duration::from_secs(600);
    assert!(assert_exact(&q, &url, "nothing").await.is_empty());

    // Enqueues: plain, scheduled, with a unique key (and its refused duplicate).
    let mut batch: Vec<_> = (0..30).map(|i| job("a", i)).collect();
    batch.extend((0..10).map(|i| job("b", i).delay(Duration::from_secs(3600))));
    batch.extend((0..5).map(|i| job("c", i).max_retries(0)));
    q.enqueue_batch(batch).await.expect("enqueue");
    let unique = |k: &str, replace: bool| job("u", 0).unique(Uniqueness::new(k).replace(replace));
    let held = q.enqueue_batch(vec![unique("k1", false)]).await.expect("u")[0];
    assert!(held.is_inserted());
    let dup = q.enqueue_batch(vec![unique("k1", false)]).await.expect("u")[0];
    assert_eq!(dup, Enqueued::Duplicate(held.id()));
    // A SCHEDULED holder replaced by a job due now turns PENDING.
    let sched = q
        .enqueue_batch(vec![unique("k2", true).delay(Duration::from_secs(3600))])
        .await
        .expect("u")[0];
    let t = assert_exact(&q, &url, "enqueues").await;
    assert_eq!(t[&("u".to_owned(), "SCHEDULED".to_owned())], 1);
    let replaced = q.enqueue_batch(vec![unique("k2", true)]).await.expect("u")[0];
    assert_eq!(replaced, Enqueued::Replaced(sched.id()));
    let t = assert_exact(&q, &url, "a debounce replace").await;
    assert_eq!(t.get(&("u".to_owned(), "SCHEDULED".to_owned())), None);
    assert_eq!(t[&("u".to_owned(), "PENDING".to_owned())], 2);

    // Claims and every outcome.
    let c = claim(&q, "a", 14, long).await;
    assert_eq!(c.len(), 14);
    assert_exact(&q, &url, "claims").await;
    record(
        &q,
        vec![
            (&c[0], Outcome::Complete { result: None }),
            (
                &c[1],
                Outcome::Complete {
                    result: Some(json!(1)),
                },
            ),
            (&c[2], Outcome::Complete { result: None }),
            (
                &c[3],
                Outcome::Retry {
                    delay: Duration::ZERO,
                    error: err("r", true),
                },
            ),
            (
                &c[4],
                Outcome::Retry {
                    delay: Duration::from_secs(3600),
                    error: err("r", true),
                },
            ),
            (
                &c[5],
                Outcome::Fail {
                    error: err("f", false),
                    result: None,
                },
            ),
            (
                &c[6],
                Outcome::Fail {
                    error: err("f", false),
                    result: None,
                },
            ),
            (
                &c[7],
                Outcome::DeadLetter {
                    error: err("d", true),
                },
            ),
            (
                &c[8],
                Outcome::DeadLetter {
                    error: err("d", true),
                },
            ),
            (&c[9], Outcome::Release),
            (
                &c[10],
                Outcome::Snooze {
                    delay: Duration::from_secs(3600),
                },
            ),
        ],
    )
    .await;
    assert_exact(&q, &url, "outcomes").await;

    // A running job cancelled stays RUNNING until its outcome; a waiting one
    // is FAILED at once.
    q.cancel(c[11].id, &CancelRequest::by("t"))
        .await
        .expect("cancel running");
    assert_exact(&q, &url, "a cancel of a running job").await;
    record(
        &q,
        vec![(
            &c[11],
            Outcome::Cancel {
                error: err("cancelled", false),
            },
        )],
    )
    .await;
    let waiting = q
        .list(&jobs_core::JobFilter::default().queue("b"))
        .await
        .expect("list");
    q.cancel(waiting[0].id, &CancelRequest::by("t"))
        .await
        .expect("cancel waiting");
    q.cancel(waiting[1].id, &CancelRequest::by("t"))
        .await
        .expect("cancel waiting");
    assert_exact(&q, &url, "cancels").await;

    // Requeues of FAILED and DEAD_LETTER jobs.
    q.requeue(c[5].id).await.expect("requeue");
    q.requeue(c[7].id).await.expect("requeue");
    q.requeue(waiting[0].id).await.expect("requeue");
    assert_exact(&q, &url, "requeues").await;

    // Expired leases recovered: RETRYING, or DEAD_LETTER with no retry left.
    let short = Duration::from_millis(20);
    let lost_a = claim(&q, "a", 3, short).await;
    let lost_c = claim(&q, "c", 2, short).await;
    assert_eq!((lost_a.len(), lost_c.len()), (3, 2));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let recovered = q.recover_expired().await.expect("recover");
    assert_eq!(recovered.len(), 5);
    assert_exact(&q, &url, "recovered leases").await;

    // Deletes: a waiting job, a finished one; a running one is refused.
    let gone: Vec<JobId> = vec![waiting[2].id, c[6].id];
    for id in &gone {
        q.delete_job(*id).await.expect("delete");
    }
    assert!(q.delete_job(c[12].id).await.is_err(), "a running job stays");
    assert_exact(&q, &url, "deletes").await;

    // Prunes: one status of one queue, then everything finished.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let n = q
        .prune(
            &PruneRequest::new(later, 1)
                .statuses([jobs_core::JobStatus::Completed])
                .queue("a"),
        )
        .await
        .expect("prune");
    assert_eq!(n, 1);
    assert_exact(&q, &url, "a bounded prune").await;
    q.prune(&PruneRequest::new(later, 1_000))
        .await
        .expect("prune");
    let t = assert_exact(&q, &url, "a full prune").await;
    for (_, status) in t.keys() {
        assert!(
            !["COMPLETED", "FAILED", "DEAD_LETTER"].contains(&status.as_str()),
            "{t:?}"
        );
    }

    // Drained: nothing is reported for a queue that has no jobs left.
    let rest = claim(&q, "c", 10, long).await;
    record(
        &q,
        rest.iter()
            .map(|j| (j, Outcome::Complete { result: None }))
            .collect(),
    )
    .await;
    q.prune(&PruneRequest::new(later, 1_000).queue("c"))
        .await
        .expect("prune");
    let t = assert_exact(&q, &url, "draining a queue").await;
    assert!(t.keys().all(|(queue, _)| queue != "c"), "{t:?}");
}

/// A database of schema version 3 (no counters) with jobs in several queues
/// and statuses is upgraded in place: its counters are filled from the table,
/// and kept from then on.
#[tokio::test]
async fn a_version_3_database_gets_its_counters_on_connect() {
    let path = temp_db("v3");
    std::fs::create_dir_all(path.parent().unwrap()).expect("dir");
    let url = url_of(&path);
    {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("create v3");
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
            (
                3,
                include_str!("../../jobs-runtime/src/backend/sqlite/migrations/003_features.sql"),
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
        for (i, (queue, status)) in [
            ("x", "PENDING"),
            ("x", "PENDING"),
            ("x", "COMPLETED"),
            ("x", "COMPLETED"),
            ("x", "COMPLETED"),
            ("y", "FAILED"),
            ("y", "DEAD_LETTER"),
            ("y", "PENDING"),
        ]
        .into_iter()
        .enumerate()
        {
            let done = matches!(status, "COMPLETED" | "FAILED" | "DEAD_LETTER");
            sqlx::query(
                "INSERT INTO jobs_queue (id, queue, job_type, payload, status, priority, \
                    max_retries, run_at, created_at, completed_at) \
                 VALUES (?1, ?2, 't', ?3, ?4, 0, 3, ?5, ?5, ?6)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(queue)
            .bind(json!({ "i": i }).to_string())
            .bind(status)
            .bind(t)
            .bind(done.then_some(t))
            .execute(&mut conn)
            .await
            .expect("v3 row");
        }
        conn.close().await.expect("close");
    }

    let q = SqliteBackend::connect(&url).await.expect("upgrade");
    let t = assert_exact(&q, &url, "the upgrade").await;
    let of = |queue: &str, status: &str| t.get(&(queue.to_owned(), status.to_owned())).copied();
    assert_eq!(of("x", "PENDING"), Some(2));
    assert_eq!(of("x", "COMPLETED"), Some(3));
    assert_eq!(of("y", "FAILED"), Some(1));
    assert_eq!(of("y", "DEAD_LETTER"), Some(1));
    assert_eq!(of("y", "PENDING"), Some(1));
    assert_eq!(t.len(), 5);

    // Kept from then on: an old job claimed and finished, a new one, a prune.
    let c = claim(&q, "x", 1, Duration::from_secs(60)).await;
    record(&q, vec![(&c[0], Outcome::Complete { result: None })]).await;
    q.enqueue_batch(vec![job("y", 9)]).await.expect("enqueue");
    assert_exact(&q, &url, "changes after the upgrade").await;
    q.prune(&PruneRequest::new(
        chrono::Utc::now() + chrono::Duration::hours(1),
        2,
    ))
    .await
    .expect("prune");
    assert_exact(&q, &url, "a prune after the upgrade").await;

    // Opening it again migrates nothing more.
    drop(q);
    let q = SqliteBackend::connect(&url).await.expect("reopen");
    assert_exact(&q, &url, "reopening").await;
}

/// An enqueue in the caller's transaction counts when it commits, and not at
/// all when it rolls back: the counters live in the same transaction.
#[tokio::test]
async fn an_enqueue_in_the_callers_transaction_counts_only_if_it_commits() {
    use jobs_runtime::backend::TransactionalEnqueue;

    let url = url_of(&temp_db("counts-tx"));
    let q = SqliteBackend::connect(&url).await.expect("open");
    let pool = sqlx::SqlitePool::connect(&url).await.expect("user pool");
    for commit in [false, true] {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        q.enqueue_in(&mut *tx, job("tx", 0))
            .await
            .expect("enqueue in tx");
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
    }
    let t = assert_exact(&q, &url, "transactional enqueues").await;
    assert_eq!(t[&("tx".to_owned(), "PENDING".to_owned())], 1);
    assert_eq!(t.len(), 1);
}
