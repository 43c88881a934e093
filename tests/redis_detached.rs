//! `Backend::detached` on Redis: a handle whose connection is its own, opened
//! by the runtime that first uses it, so a manager's heartbeats and outcomes
//! go through even while every thread of the application's runtime is
//! blocked. Needs `JOBS_TEST_REDIS_URL` (skipped without it, except under `CI`).

use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{ClaimRequest, Fence, Outcome, OutcomeUpdate};
use jobs_core::{Backend, JobId, JobStatus, NewJob};
use jobs_runtime::backend::redis::RedisBackend;
use serde_json::json;

fn redis_url() -> Option<String> {
    match std::env::var("JOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("JOBS_TEST_REDIS_URL is not set, and CI is: Redis tests must run in CI")
        }
        _ => {
            eprintln!("skipped: set JOBS_TEST_REDIS_URL to run the Redis tests");
            None
        }
    }
}

/// Runs `f` on a new thread with a current-thread runtime of its own, and
/// waits for it by blocking the calling thread (and so, from a
/// current-thread test, the whole of the caller's runtime).
fn on_own_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .expect("the thread panicked")
}

/// Deletes the keys of a prefix when dropped, also after a failed assertion
/// (with a blocking connection: the test's runtime may be gone by then).
struct Purge {
    url: String,
    prefix: String,
}

impl Drop for Purge {
    fn drop(&mut self) {
        let pattern = format!("{{{}}}:*", self.prefix);
        let purge = || -> redis::RedisResult<()> {
            let mut con = redis::Client::open(self.url.as_str())?.get_connection()?;
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

/// Bounded, so a call stuck behind the blocked runtime fails the test instead
/// of hanging it.
const LIMIT: Duration = Duration::from_secs(10);

// A current-thread runtime: while `on_own_runtime` waits, nothing of this
// runtime runs — not the I/O task of the connection `connect` opened here.
#[tokio::test(flavor = "current_thread")]
async fn a_detached_handle_works_from_another_runtime_while_this_one_is_blocked() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("detached-{:016x}", fastrand::u64(..));
    let _purge = Purge {
        url: url.clone(),
        prefix: prefix.clone(),
    };
    let backend = RedisBackend::builder(&url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap();
    let ids = backend
        .enqueue_batch(vec![
            NewJob::new("t", json!({"n": 1})),
            NewJob::new("t", json!({"n": 2})),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let queues = vec!["default".to_owned()];
    let jobs = backend
        .claim(ClaimRequest::new(
            "w1",
            &queues,
            10,
            Duration::from_secs(30),
        ))
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 2);
    let fences: Vec<Fence> = jobs.iter().map(|j| j.fence()).collect();

    // Made on a thread without any runtime: nothing is opened until first use
    // (opening a connection outside a runtime would panic).
    let detached: Arc<dyn Backend> = {
        let backend = backend.clone();
        std::thread::spawn(move || backend.detached().expect("redis has a detached handle"))
            .join()
            .unwrap()
    };
    assert_eq!(detached.backend_name(), "redis");

    // This runtime is blocked from here until the thread is done: the shared
    // connection cannot answer, the detached one opens on the thread's own
    // runtime and does.
    let (shared, first) = (backend.clone(), detached.clone());
    let (fence, id) = (fences[0], ids[0]);
    let (shared_answered, lost_hb, lost_rec) = on_own_runtime(move || {
        Box::pin(async move {
            let shared_answered = tokio::time::timeout(Duration::from_millis(500), shared.get(id))
                .await
                .is_ok();
            let lost_hb = tokio::time::timeout(
                LIMIT,
                first.heartbeat("w1", &[fence], Duration::from_secs(30)),
            )
            .await
            .expect("the detached heartbeat hung")
            .unwrap();
            let update = OutcomeUpdate::new(
                fence,
                Outcome::Complete {
                    result: Some(json!("first")),
                },
            );
            let lost_rec = tokio::time::timeout(LIMIT, first.record("w1", &[update]))
                .await
                .expect("the detached record hung")
                .unwrap();
            (shared_answered, lost_hb, lost_rec)
        })
    });
    assert!(
        !shared_answered,
        "the shared connection's I/O runs on the blocked runtime: it cannot answer there"
    );
    assert!(lost_hb.lost.is_empty() && lost_rec.is_empty());

    // The runtime that opened the detached connection is gone; a new one (a
    // manager started again) gets a fresh connection, not a dead one.
    let (second, fence) = (detached.clone(), fences[1]);
    let lost = on_own_runtime(move || {
        Box::pin(async move {
            let update = OutcomeUpdate::new(
                fence,
                Outcome::Complete {
                    result: Some(json!("second")),
                },
            );
            tokio::time::timeout(LIMIT, second.record("w1", &[update]))
                .await
                .expect("the detached record hung")
        })
    });
    assert_eq!(lost.unwrap(), Vec::<JobId>::new());

    // Both outcomes are stored, and the original handle works as before.
    for (id, want) in ids.iter().zip(["first", "second"]) {
        let job = backend.get(*id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.result_data, Some(json!(want)));
        assert_eq!(job.lease_token, None);
    }
    // And the detached handle serves this runtime too, with a connection of
    // its own opened here now.
    assert_eq!(
        detached.get(ids[0]).await.unwrap().unwrap().status,
        JobStatus::Completed
    );
}
