//! Redis-specific behaviour the conformance suite does not cover: bad data,
//! big backlogs of due jobs, multi-chunk enqueues, wake-ups, key isolation.
//! Needs `JOBS_TEST_REDIS_URL` (skipped without it, except under `CI`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use jobs_core::backend::{ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::{Backend, Error, JobFilter, JobStatus, NewJob, PruneRequest};
use jobs_runtime::backend::redis::RedisBackend;
use serde_json::json;

fn redis_url() -> Option<String> {
    match std::env::var("JOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("JOBS_TEST_REDIS_URL is not set, and CI is: Redis tests must run in CI")
        }
        _ => {
            eprintln!("skipped: set JOBS_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run the Redis tests");
            None
        }
    }
}

/// `SCRIPT FLUSH` empties the script cache of every client of the server:
/// the test that does it runs alone (it holds this for writing), every
/// other test holds it for reading while its backend lives. Otherwise a
/// flush between another test's script load and its retried call fails
/// that call.
static SCRIPT_CACHE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A backend on a fresh random prefix, whose keys are deleted when it drops
/// (also when an assertion failed).
async fn backend() -> Option<Ns> {
    let guard = SCRIPT_CACHE.read().await;
    let mut ns = backend_alone().await?;
    ns.2 = Some(guard);
    Some(ns)
}

/// [`backend`] without a hold on the script cache (for the test that
/// flushes it, holding it for writing).
async fn backend_alone() -> Option<Ns> {
    let url = redis_url()?;
    let prefix = format!("test-{:016x}", fastrand::u64(..));
    let backend = RedisBackend::builder(&url)
        .prefix(prefix)
        .connect()
        .await
        .expect("connect to redis");
    Some(Ns(backend, url, None))
}

struct Ns(
    RedisBackend,
    String,
    Option<tokio::sync::RwLockReadGuard<'static, ()>>,
);

impl std::ops::Deref for Ns {
    type Target = RedisBackend;
    fn deref(&self) -> &RedisBackend {
        &self.0
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // A blocking connection: the test's runtime may be gone by now.
        let pattern = format!("{{{}}}:*", self.0.prefix());
        let purge = || -> redis::RedisResult<()> {
            let mut con = redis::Client::open(self.1.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con)?;
            for chunk in keys.chunks(1000) {
                redis::cmd("UNLINK").arg(chunk).exec(&mut con)?;
            }
            Ok(())
        };
        if let Err(e) = purge() {
            eprintln!("could not delete the keys of {pattern}: {e}");
        }
    }
}

/// A raw connection for poking at keys behind the backend's back.
async fn raw() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url().unwrap()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

fn claim_req<'a>(queues: &'a [String], limit: usize) -> ClaimRequest<'a> {
    ClaimRequest::new("w1", queues, limit, Duration::from_secs(30))
}

fn q(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn round_trip_with_result_and_counts() {
    let Some(b) = backend().await else { return };
    let id = b
        .enqueue_batch(vec![NewJob::new(
            "t.echo",
            json!({"msg": "héllo ✓", "n": [1, {"a": null}]}),
        )
        .metadata("tenant", 7)])
        .await
        .unwrap()[0]
        .id();
    let job = b.get(id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.payload["msg"], "héllo ✓");
    assert_eq!(job.metadata["tenant"], 7);
    assert_eq!(job.attempt, 0);

    let queues = q(&["default"]);
    let claimed = b.claim(claim_req(&queues, 10)).await.unwrap().jobs;
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!(
        (job.id, job.status, job.attempt),
        (id, JobStatus::Running, 1)
    );
    assert_eq!(job.locked_by.as_deref(), Some("w1"));
    assert!(job.lease_until.unwrap() > Utc::now() + chrono::Duration::seconds(20));

    let lost = b
        .record(
            "w1",
            &[OutcomeUpdate::new(
                job.fence(),
                Outcome::Complete {
                    result: Some(json!({"ok": true})),
                },
            )],
        )
        .await
        .unwrap();
    assert!(lost.is_empty());
    let done = b.get(id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.result_data, Some(json!({"ok": true})));
    assert!(done.completed_at.is_some() && done.locked_by.is_none());

    let counts = b.counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].queue.as_str(), counts[0].status, counts[0].count),
        ("default", JobStatus::Completed, 1)
    );
    // A second outcome under the same fence is refused.
    let lost = b
        .record("w1", &[OutcomeUpdate::new(job.fence(), Outcome::Release)])
        .await
        .unwrap();
    assert_eq!(lost, vec![id]);
    b.purge().await.unwrap();
}

#[tokio::test]
async fn prefixes_isolate_namespaces() {
    let Some(a) = backend().await else { return };
    let Some(b) = backend().await else { return };
    a.enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap();
    let queues = q(&["default"]);
    assert!(b
        .claim(claim_req(&queues, 10))
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert!(b.list(&JobFilter::default()).await.unwrap().is_empty());
    assert_eq!(a.claim(claim_req(&queues, 10)).await.unwrap().jobs.len(), 1);
    // Every key of a namespace carries its hash tag.
    let mut conn = raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}}}*", a.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    assert!(a.purge().await.unwrap() >= 5);
    b.purge().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}}}*", a.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn url_prefix_and_connect() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("test-{:016x}", fastrand::u64(..));
    let sep = if url.contains('?') { '&' } else { '?' };
    let queue = jobs_runtime::connect(&format!("{url}{sep}prefix={prefix}"))
        .await
        .unwrap();
    assert_eq!(queue.backend().backend_name(), "redis");
    queue
        .backend()
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap();
    let b = RedisBackend::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
        .unwrap();
    assert_eq!(b.list(&JobFilter::default()).await.unwrap().len(), 1);
    b.purge().await.unwrap();

    let err = RedisBackend::connect("redis://127.0.0.1:1/?prefix=x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let err = RedisBackend::connect(&format!("{url}{sep}prefix=a{{b}}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("braces"), "{err}");
}

#[tokio::test]
async fn claim_order_across_queues_priorities_and_run_at() {
    let Some(b) = backend().await else { return };
    let past = Utc::now() - chrono::Duration::seconds(60);
    let jobs = vec![
        NewJob::new("t", json!({"k": "low-1"})).queue("low"),
        NewJob::new("t", json!({"k": "high-p0"})).queue("high"),
        NewJob::new("t", json!({"k": "high-p5"}))
            .queue("high")
            .priority(5),
        NewJob::new("t", json!({"k": "high-p0-old"}))
            .queue("high")
            .run_at(past),
        NewJob::new("t", json!({"k": "high-p-3"}))
            .queue("high")
            .priority(-3),
        NewJob::new("t", json!({"k": "high-p0-b"})).queue("high"),
    ];
    b.enqueue_batch(jobs).await.unwrap();
    let queues = q(&["high", "low"]);
    let mut order = Vec::new();
    loop {
        let got = b.claim(claim_req(&queues, 2)).await.unwrap().jobs;
        if got.is_empty() {
            break;
        }
        order.extend(
            got.into_iter()
                .map(|j| j.payload["k"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(
        order,
        [
            "high-p5",
            "high-p0-old",
            "high-p0",
            "high-p0-b",
            "high-p-3",
            "low-1"
        ]
    );
    b.purge().await.unwrap();
}

#[tokio::test]
async fn missing_field_and_bad_payload_fail_that_job_only() {
    let Some(b) = backend().await else { return };
    let ids = b
        .enqueue_batch(vec![
            NewJob::new("t", json!({"n": 1})),
            NewJob::new("t", json!({"n": 2})),
            NewJob::new("t", json!({"n": 3})),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let ns = format!("{{{}}}", b.prefix());
    let mut conn = raw().await;
    let _: () = redis::cmd("HDEL")
        .arg(format!("{ns}:j:{}", ids[0]))
        .arg("t")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{ns}:j:{}", ids[1]))
        .arg("p")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();

    // get and list name the job.
    match b.get(ids[0]).await {
        Err(Error::Corrupt { id, reason, .. }) => {
            assert_eq!(id, ids[0].to_string());
            assert!(reason.contains("job_type"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match b.get(ids[1]).await {
        Err(Error::Corrupt { id, reason, .. }) => {
            assert_eq!(id, ids[1].to_string());
            assert!(
                reason.contains("payload") && reason.contains("JSON"),
                "{reason}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        b.list(&JobFilter::default()).await,
        Err(Error::Corrupt { .. })
    ));

    // A claim hands out only the good job and fails the bad ones with the reason.
    let queues = q(&["default"]);
    let got = b.claim(claim_req(&queues, 10)).await.unwrap().jobs;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, ids[2]);
    assert!(b
        .claim(claim_req(&queues, 10))
        .await
        .unwrap()
        .jobs
        .is_empty());

    // Mend the hashes: the errors were recorded against those jobs.
    let _: () = redis::cmd("HSET")
        .arg(format!("{ns}:j:{}", ids[0]))
        .arg("t")
        .arg("t")
        .query_async(&mut conn)
        .await
        .unwrap();
    let failed = b.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error_message.as_deref().unwrap().contains("corrupt"));
    assert_eq!(failed.errors.len(), 1);
    assert!(!failed.errors[0].retryable);
    let _: () = redis::cmd("HSET")
        .arg(format!("{ns}:j:{}", ids[1]))
        .arg("p")
        .arg("{\"n\":2}")
        .query_async(&mut conn)
        .await
        .unwrap();
    let failed = b.get(ids[1]).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error_message.as_deref().unwrap().contains("JSON"));
    // Once mended, an operator can requeue it and it runs.
    b.requeue(ids[1]).await.unwrap();
    let got = b.claim(claim_req(&queues, 10)).await.unwrap().jobs;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, json!({"n": 2}));

    // A job hash that vanished leaves a stale index entry: skipped silently.
    let id = b
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()[0]
        .id();
    let _: () = redis::cmd("DEL")
        .arg(format!("{ns}:j:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(b
        .claim(claim_req(&queues, 10))
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert!(b.get(id).await.unwrap().is_none());
    b.purge().await.unwrap();
}

/// The failure mode of a known peer: tens of thousands of delayed jobs coming
/// due at once. Promotion is bounded per call, so they all drain, once each.
#[tokio::test]
async fn thirty_thousand_jobs_due_at_once_drain() {
    let Some(b) = backend().await else { return };
    let n = 30_000;
    let due = Utc::now() + chrono::Duration::seconds(5);
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new("t", json!({"n": i})).run_at(due))
        .collect();
    let start = Instant::now();
    b.enqueue_batch(jobs).await.unwrap();
    eprintln!("enqueued {n} in {:?}", start.elapsed());
    let counts = b.counts().await.unwrap();
    assert_eq!(counts[0].status, JobStatus::Scheduled);
    assert_eq!(counts[0].count, n as u64);
    let queues = q(&["default"]);
    assert!(b
        .claim(claim_req(&queues, 10))
        .await
        .unwrap()
        .jobs
        .is_empty());
    tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50))
        .await;

    let mut seen = std::collections::HashSet::new();
    loop {
        let got = b.claim(claim_req(&queues, 500)).await.unwrap().jobs;
        if got.is_empty() {
            break;
        }
        let updates: Vec<OutcomeUpdate> = got
            .iter()
            .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
            .collect();
        assert!(b.record("w1", &updates).await.unwrap().is_empty());
        for j in got {
            assert!(
                seen.insert(j.payload["n"].as_u64().unwrap()),
                "claimed twice"
            );
        }
    }
    assert_eq!(seen.len(), n);
    let counts = b.counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].status, counts[0].count),
        (JobStatus::Completed, n as u64)
    );
    // Prune in bounded steps too.
    assert_eq!(
        b.prune(&PruneRequest::new(
            Utc::now() + chrono::Duration::seconds(1),
            25_000
        ))
        .await
        .unwrap(),
        25_000
    );
    assert_eq!(
        b.prune(&PruneRequest::new(
            Utc::now() + chrono::Duration::seconds(1),
            25_000
        ))
        .await
        .unwrap(),
        5_000
    );
    assert!(b.counts().await.unwrap().is_empty());
    b.purge().await.unwrap();
}

/// A batch bigger than one script runs as several chunks in one MULTI: a
/// duplicate id in a late chunk stores nothing at all.
#[tokio::test]
async fn big_batches_are_all_or_nothing() {
    let Some(b) = backend().await else { return };
    let existing = b
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()[0]
        .id();
    let mut jobs: Vec<NewJob> = (0..2_500)
        .map(|i| NewJob::new("t", json!({"n": i})))
        .collect();
    jobs[2_400].id = existing;
    let err = b.enqueue_batch(jobs).await.unwrap_err();
    assert!(err.to_string().contains(&existing.to_string()), "{err}");
    assert_eq!(
        b.list(&JobFilter::default().limit(10_000))
            .await
            .unwrap()
            .len(),
        1
    );

    let jobs: Vec<NewJob> = (0..2_500)
        .map(|i| NewJob::new("t", json!({"n": i})))
        .collect();
    let ids = b
        .enqueue_batch(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let listed = b
        .list(&JobFilter::default().offset(1).limit(10_000))
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    let everything = b
        .list(&JobFilter::default().limit(usize::MAX))
        .await
        .unwrap();
    assert_eq!(everything.len(), 2_501);
    let unfiltered_far = b
        .list(&JobFilter::default().offset(usize::MAX).limit(usize::MAX))
        .await
        .unwrap();
    assert!(unfiltered_far.is_empty());
    // Filtered listing pages across scan chunks.
    let page = b
        .list(
            &JobFilter::default()
                .status(JobStatus::Pending)
                .offset(1_200)
                .limit(1_000),
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1_000);
    assert_eq!(page[0].id, ids[1_199]);
    b.purge().await.unwrap();
}

#[tokio::test]
async fn listener_wakes_on_enqueue_and_for_due_jobs() {
    let Some(b) = backend().await else { return };
    let b = Arc::new(b);
    let queues = q(&["mail"]);
    let mut listener = b.listener(&queues).await.unwrap();

    // A job on another queue does not wake us; one on ours does.
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        listener.wait(Duration::from_secs(20)).await;
        (start.elapsed(), listener)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.enqueue_batch(vec![NewJob::new("t", json!({})).queue("other")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    b.enqueue_batch(vec![NewJob::new("t", json!({})).queue("mail")])
        .await
        .unwrap();
    let (waited, mut listener) = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(b.claim(claim_req(&queues, 10)).await.unwrap().jobs.len(), 1);

    // Idle with a job scheduled 300 ms out: woken for it, not at the timeout.
    b.enqueue_batch(vec![NewJob::new("t", json!({}))
        .queue("mail")
        .delay(Duration::from_millis(300))])
        .await
        .unwrap();
    listener.wait(Duration::from_secs(20)).await; // the enqueue's own signal
    let start = Instant::now();
    listener.wait(Duration::from_secs(20)).await;
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(b.claim(claim_req(&queues, 10)).await.unwrap().jobs.len(), 1);

    // Nothing going on: it sleeps the whole timeout.
    let start = Instant::now();
    listener.wait(Duration::from_millis(300)).await;
    assert!(start.elapsed() >= Duration::from_millis(290));
    b.purge().await.unwrap();
}

#[tokio::test]
async fn lease_expiry_heartbeat_and_fencing() {
    let Some(b) = backend().await else { return };
    let ids = b
        .enqueue_batch(vec![
            NewJob::new("t", json!({"n": 1})).max_retries(1),
            NewJob::new("t", json!({"n": 2})).max_retries(0),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let queues = q(&["default"]);
    let short = ClaimRequest::new("w1", &queues, 10, Duration::from_millis(200));
    let got = b.claim(short).await.unwrap().jobs;
    assert_eq!(got.len(), 2);
    // Heartbeat keeps the first alive; another worker's heartbeat is refused.
    assert_eq!(
        b.heartbeat("w2", &[got[0].fence()], Duration::from_secs(30))
            .await
            .unwrap()
            .lost,
        vec![ids[0]]
    );
    assert!(b
        .heartbeat("w1", &[got[0].fence()], Duration::from_secs(30))
        .await
        .unwrap()
        .lost
        .is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rec = b.recover_expired().await.unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].job.id, ids[1]);
    assert_eq!(rec[0].job.status, JobStatus::Running);
    assert_eq!(rec[0].now, JobStatus::DeadLetter);
    let dead = b.get(ids[1]).await.unwrap().unwrap();
    assert_eq!(dead.status, JobStatus::DeadLetter);
    assert!(
        dead.errors[0].message.contains("lease expired"),
        "{}",
        dead.errors[0].message
    );
    assert!(dead.errors[0]
        .message
        .contains(&Utc::now().format("%Y-%m-%dT").to_string()));
    // The late worker cannot complete it.
    let lost = b
        .record(
            "w1",
            &[OutcomeUpdate::new(
                got[1].fence(),
                Outcome::Complete { result: None },
            )],
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![ids[1]]);
    // Retry with delay, then dead letter, then requeue.
    let fail = |delay| Outcome::Retry {
        delay,
        error: jobs_core::backend::AttemptFailure::new("boom \"quoted\" / ü", true),
    };
    b.record(
        "w1",
        &[OutcomeUpdate::new(
            got[0].fence(),
            fail(Duration::from_millis(200)),
        )],
    )
    .await
    .unwrap();
    let j = b.get(ids[0]).await.unwrap().unwrap();
    assert_eq!((j.status, j.retry_count), (JobStatus::Retrying, 1));
    assert_eq!(j.errors[0].message, "boom \"quoted\" / ü");
    assert_eq!(j.errors[0].worker.as_deref(), Some("w1"));
    assert!(b
        .claim(claim_req(&queues, 10))
        .await
        .unwrap()
        .jobs
        .is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let again = b.claim(claim_req(&queues, 10)).await.unwrap().jobs;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    b.purge().await.unwrap();
}

#[tokio::test]
async fn scripts_are_loaded_again_after_script_flush() {
    let _alone = SCRIPT_CACHE.write().await;
    let Some(b) = backend_alone().await else {
        return;
    };
    let mut raw = raw().await;
    let flush = |raw: &mut redis::aio::MultiplexedConnection| {
        let mut raw = raw.clone();
        async move {
            redis::cmd("SCRIPT")
                .arg("FLUSH")
                .exec_async(&mut raw)
                .await
                .unwrap()
        }
    };
    flush(&mut raw).await;
    let ids = b
        .enqueue_batch(vec![
            NewJob::new("t.a", json!({"n": 1})),
            NewJob::new("t.b", json!({"n": 2})),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    flush(&mut raw).await;
    let queues = q(&["default"]);
    let claimed = b.claim(claim_req(&queues, 10)).await.unwrap().jobs;
    assert_eq!(claimed.len(), 2);
    flush(&mut raw).await;
    let updates: Vec<OutcomeUpdate> = claimed
        .iter()
        .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
        .collect();
    assert!(b.record("w1", &updates).await.unwrap().is_empty());
    for id in &ids {
        assert_eq!(
            b.get(*id).await.unwrap().unwrap().status,
            JobStatus::Completed
        );
    }
    // Workflows: a `get_many` of several script calls in one pipeline,
    // settling edges, releasing a held step.
    flush(&mut raw).await;
    let many: Vec<_> = ids.iter().cycle().take(1_001).copied().collect();
    let got = b.get_many(&many).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|j| j.as_ref().map(|j| j.id))
            .collect::<Vec<_>>(),
        many.iter().map(|id| Some(*id)).collect::<Vec<_>>()
    );
    flush(&mut raw).await;
    let parent = jobs_core::JobId::new();
    assert_eq!(
        b.settle_dependencies(parent, &ids).await.unwrap(),
        vec![1, 1]
    );
    let held = b
        .enqueue_batch(vec![
            NewJob::new("t.c", json!({})).run_at(jobs_core::workflow::held_until())
        ])
        .await
        .unwrap()[0]
        .id();
    flush(&mut raw).await;
    assert_eq!(b.release_held(&[held]).await.unwrap(), vec![held]);
}

/// Jobs with limits wait in a lane of their own: jobs without limits never
/// wait behind held-back ones; held-back jobs stay where they are (none
/// lost, order kept); a claim looks at most at 1,000 jobs of that lane per
/// queue; the limit counters are empty again once no job runs.
#[tokio::test]
async fn held_back_jobs_block_no_plain_job_and_the_scan_is_bounded() {
    let Some(b) = backend().await else { return };
    let queues = q(&["default"]);
    let keyed: Vec<NewJob> = (0..1_200)
        .map(|i| NewJob::new("t", json!({ "n": i })).concurrency("k", 1))
        .collect();
    b.enqueue_batch(keyed).await.unwrap();
    let other = b
        .enqueue_batch(vec![NewJob::new("t", json!({})).concurrency("k2", 1)])
        .await
        .unwrap()[0]
        .id();
    let plain = b
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()[0]
        .id();
    let got = b.claim(claim_req(&queues, 10)).await.unwrap();
    assert!(got.limited);
    assert_eq!(got.jobs.len(), 2, "one of the key, and the plain job");
    assert_eq!(got.jobs[0].payload, json!({ "n": 0 }));
    assert_eq!(
        got.jobs[1].id, plain,
        "a plain job never waits behind held-back ones"
    );
    let mut conn = raw().await;
    let ns = format!("{{{}}}", b.prefix());
    let counter = conn.clone();
    let card = |key: String| {
        let mut conn = counter.clone();
        async move {
            redis::cmd("ZCARD")
                .arg(key)
                .query_async::<usize>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(card(format!("{ns}:ready:default")).await, 0);
    assert_eq!(card(format!("{ns}:lready:default")).await, 1_200);
    // `other` is beyond the 1,000 jobs of the lane a claim looks at.
    let again = b.claim(claim_req(&queues, 10)).await.unwrap();
    assert!(again.jobs.is_empty() && again.limited);
    assert_eq!(
        b.get(other).await.unwrap().unwrap().status,
        JobStatus::Pending
    );

    // The keyed job finishes: the next keyed one goes, in enqueue order.
    b.record(
        "w1",
        &[
            OutcomeUpdate::new(got.jobs[0].fence(), Outcome::Complete { result: None }),
            OutcomeUpdate::new(got.jobs[1].fence(), Outcome::Complete { result: None }),
        ],
    )
    .await
    .unwrap();
    let next = b.claim(claim_req(&queues, 10)).await.unwrap();
    assert_eq!(next.jobs.len(), 1);
    assert_eq!(next.jobs[0].payload, json!({ "n": 1 }));
    b.record(
        "w1",
        &[OutcomeUpdate::new(
            next.jobs[0].fence(),
            Outcome::Retry {
                delay: Duration::from_secs(3600),
                error: jobs_core::backend::AttemptFailure::new("later", true),
            },
        )],
    )
    .await
    .unwrap();
    let running: Vec<String> = redis::cmd("HGETALL")
        .arg(format!("{ns}:run:conc"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(running.is_empty(), "no job runs: {running:?}");
    // The retrying job waits in the delayed set, the rest in their lane.
    assert_eq!(card(format!("{ns}:lready:default")).await, 1_199);
    assert_eq!(card(format!("{ns}:delayed:default")).await, 1);
}

/// The claim merges the lane of jobs with limits and the plain lane in
/// claim order: priority, then run_at, then enqueue order, whichever lane a
/// job waits in — one job per claim, or all at once.
#[tokio::test]
async fn both_lanes_are_claimed_in_claim_order() {
    let Some(b) = backend().await else { return };
    let queues = q(&["default"]);
    let old = Utc::now() - chrono::Duration::seconds(60);
    // Each job with limits has a key of its own: none is held back.
    let job = |queue: &str, n: u32, prio: i32, at_s: i64, limited: bool| {
        let j = NewJob::new("t", json!({ "n": n }))
            .queue(queue)
            .priority(prio)
            .run_at(old + chrono::Duration::seconds(at_s));
        if limited {
            j.concurrency(format!("{queue}-{n}"), 1)
        } else {
            j
        }
    };
    let batch = |queue: &str| {
        vec![
            job(queue, 0, 0, 0, false),
            job(queue, 1, 5, 10, true),
            job(queue, 2, 5, 10, false),
            job(queue, 3, 0, 0, true),
            job(queue, 4, 5, 5, false),
            job(queue, 5, 9, 30, true),
            job(queue, 6, 0, 20, false),
        ]
    };
    let want = vec![5, 4, 1, 2, 0, 3, 6];
    b.enqueue_batch(batch("default")).await.unwrap();
    let mut one_by_one = Vec::new();
    for _ in 0..10 {
        let got = b.claim(claim_req(&queues, 1)).await.unwrap();
        one_by_one.extend(got.jobs.iter().map(|j| j.payload["n"].as_u64().unwrap()));
    }
    assert_eq!(one_by_one, want);
    let q2 = q(&["other"]);
    b.enqueue_batch(batch("other")).await.unwrap();
    let all: Vec<u64> = b
        .claim(claim_req(&q2, 10))
        .await
        .unwrap()
        .jobs
        .iter()
        .map(|j| j.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(all, want);
}

/// Subscribes `backend`'s finish signal: waits on `job` (unfinished) until a
/// wait of 300 ms reads it twice only (at its start and end), which a wait
/// does only while subscribed (before, it reads it every 20 ms and more).
async fn subscribe_finish_signal(backend: &RedisBackend, job: jobs_core::JobId) {
    for _ in 0..100 {
        let before = backend.finish_wait_reads();
        let got = backend
            .wait_finished(job, Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        assert!(!got.status.is_terminal());
        if backend.finish_wait_reads() - before == 2 {
            return;
        }
    }
    panic!("the finish signal never subscribed");
}

/// The job `wait` returns, which must come long before the wait's 30 s
/// safety read: only a signal can end it sooner (or polling, which the
/// callers rule out by counting reads).
async fn woken(
    wait: jobs_core::BoxFuture<'_, jobs_core::Result<Option<jobs_core::Job>>>,
) -> jobs_core::Job {
    tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .expect("woken by the signal, not by the safety read")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_result_wait_is_woken_by_the_finished_channel_not_by_polling() {
    let Some(b) = backend().await else { return };
    // Another process on the same prefix finishes the jobs.
    let other = RedisBackend::builder(redis_url().unwrap())
        .prefix(b.prefix())
        .connect()
        .await
        .unwrap();
    let ids: Vec<_> = b
        .enqueue_batch(vec![
            NewJob::new("idle", json!({})).queue("idle"),
            NewJob::new("t", json!({})),
            NewJob::new("t", json!({})).queue("cancelled"),
            NewJob::new("t", json!({})).queue("lost").max_retries(0),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let (idle, recorded, cancelled, lost) = (ids[0], ids[1], ids[2], ids[3]);
    subscribe_finish_signal(&b, idle).await;

    // Recorded by the other backend 1.5 s into a wait of 60 s. Without the
    // signal the wait would read the job some 8 times by then (a backoff
    // from 20 ms), or, subscribed but deaf, see it only at its safety read
    // 30 s in.
    let queues = vec!["default".to_string()];
    let job = other.claim(claim_req(&queues, 1)).await.unwrap().jobs;
    assert_eq!(job.len(), 1);
    let fence = job[0].fence();
    let finisher = {
        let other = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let done = OutcomeUpdate::new(
                fence,
                Outcome::Complete {
                    result: Some(json!(7)),
                },
            );
            assert!(other.record("w2", &[done]).await.unwrap().is_empty());
        })
    };
    let before = b.finish_wait_reads();
    let got = woken(b.wait_finished(recorded, Duration::from_secs(60))).await;
    assert_eq!(got.status, JobStatus::Completed);
    assert_eq!(got.result_data, Some(json!(7)));
    // One read before the wait, one after the signal.
    assert_eq!(b.finish_wait_reads() - before, 2);
    finisher.await.unwrap();

    // A waiting job cancelled by the other backend: the same.
    let finisher = {
        let other = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            other
                .cancel(cancelled, &jobs_core::CancelRequest::default())
                .await
                .unwrap();
        })
    };
    let before = b.finish_wait_reads();
    let got = woken(b.wait_finished(cancelled, Duration::from_secs(60))).await;
    assert_eq!(got.status, JobStatus::Failed);
    assert_eq!(b.finish_wait_reads() - before, 2);
    finisher.await.unwrap();

    // A lease that ran out, recovered by the other backend: no retries
    // left, so DEAD_LETTER; the same.
    let lost_queue = vec!["lost".to_string()];
    let claimed = other
        .claim(ClaimRequest::new(
            "w3",
            &lost_queue,
            1,
            Duration::from_secs(1),
        ))
        .await
        .unwrap()
        .jobs;
    assert_eq!(claimed.len(), 1);
    let finisher = {
        let other = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let recovered = other.recover_expired().await.unwrap();
            assert_eq!(recovered.len(), 1);
        })
    };
    let before = b.finish_wait_reads();
    let got = woken(b.wait_finished(lost, Duration::from_secs(60))).await;
    assert_eq!(got.status, JobStatus::DeadLetter);
    assert_eq!(b.finish_wait_reads() - before, 2);
    finisher.await.unwrap();
}
