//! `#[job_handler]`'s `unique(..)` and `cron = ..` options end to end: the
//! key a typed enqueue gets, and the schedule a manager fires.

use std::time::Duration;

use jobs::prelude::*;
use jobs::{Enqueued, UniqueStates};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Digest {
    user: User,
    note: String,
}

/// At most one digest per user and hour, whatever the note says.
#[job_handler("digest.send", unique(by = [user.id], for = "1h"))]
async fn digest(_d: Digest) {}

#[derive(Debug, Serialize, Deserialize)]
struct Rebuild {
    index: String,
}

/// Debounced: a second rebuild of the same index moves the waiting one.
#[job_handler("index.rebuild", unique(replace = true))]
async fn rebuild(_r: Rebuild) {}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Nightly {}

#[job_handler(
    "report.nightly",
    cron = "0 3 * * *",
    timezone = "Europe/Berlin",
    missed = MissedRuns::Skip
)]
async fn nightly(_n: Nightly) {}

fn digest_for(id: u64, note: &str) -> Digest {
    Digest {
        user: User {
            id,
            name: "Ada".into(),
        },
        note: note.into(),
    }
}

#[tokio::test]
async fn unique_by_a_field_makes_one_job_per_value_and_period() {
    let queue = jobs::connect("memory://").await.unwrap();
    let first = queue.enqueue(digest_for(1, "a")).await.unwrap();
    assert!(first.is_inserted());
    let again = queue.enqueue(digest_for(1, "b")).await.unwrap();
    assert_eq!(
        again,
        Enqueued::Duplicate(first.id()),
        "same user: the same job"
    );
    let other = queue.enqueue(digest_for(2, "a")).await.unwrap();
    assert!(other.is_inserted(), "another user: another job");

    let u = digest_for(1, "x").uniqueness().expect("declared");
    assert_eq!(u.period, Some(Duration::from_secs(3600)));
    assert_eq!(
        u.states,
        UniqueStates::ALL,
        "a period holds the key after the job ran"
    );
    assert!(!u.replace);
    assert_ne!(u.key, digest_for(2, "x").uniqueness().unwrap().key);
    // Stored with its period's bucket.
    let job = queue.get(first).await.unwrap().unwrap();
    assert!(job.unique_key.unwrap().starts_with(&format!("{}:", u.key)));
}

#[tokio::test]
async fn unique_replace_moves_the_waiting_job() {
    let queue = jobs::connect("memory://").await.unwrap();
    let rebuild = || Rebuild {
        index: "products".into(),
    };
    let first = queue
        .enqueue(rebuild())
        .delay(Duration::from_secs(5))
        .await
        .unwrap();
    let before = queue.get(first).await.unwrap().unwrap().run_at;
    let second = queue
        .enqueue(rebuild())
        .delay(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(second, Enqueued::Replaced(first.id()));
    let after = queue.get(first).await.unwrap().unwrap().run_at;
    assert!(after > before, "the due time moved: {before} → {after}");
    let other = queue
        .enqueue(Rebuild {
            index: "orders".into(),
        })
        .await
        .unwrap();
    assert!(other.is_inserted(), "the whole payload is the key");
}

#[test]
fn cron_declares_a_schedule_with_the_handler() {
    let make = NightlyHandler::REGISTRATION
        .periodic
        .expect("cron = .. declares a schedule");
    let p = make();
    assert_eq!(p.name(), "report.nightly");
    assert_eq!(p.cron_expr(), "0 3 * * *");
    assert_eq!(p.timezone_name(), "Europe/Berlin");
    assert_eq!(p.missed_runs(), MissedRuns::Skip);
    assert_eq!(p.job_template().unwrap().job_type, "report.nightly");
    assert!(DigestHandler::REGISTRATION.periodic.is_none());
}

#[tokio::test]
async fn a_manager_fires_the_schedules_of_its_handlers() {
    let queue = jobs::connect("memory://").await.unwrap();
    let manager = WorkerManager::builder(queue.clone())
        .lease_duration(Duration::from_millis(600))
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let start = std::time::Instant::now();
    let state = loop {
        let states = queue.schedules().await.unwrap();
        if let Some(s) = states.into_iter().find(|s| s.name == "report.nightly") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no state written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    manager.stop().await.unwrap();
    assert_eq!(state.timezone, "Europe/Berlin");
    assert!(
        state.last_tick.is_none(),
        "a new schedule fires from its next tick"
    );
    // 03:00 in Berlin is 01:00 UTC in winter, 02:00 UTC in summer.
    let next = state
        .next_tick
        .expect("next tick")
        .format("%H:%M")
        .to_string();
    assert!(next == "01:00" || next == "02:00", "{next}");
}

#[derive(Debug, Serialize, Deserialize)]
struct SyncAccount {
    account_id: u64,
}

/// One sync per account at a time, in the order they were asked for.
#[job_handler(
    "sync.account",
    concurrency(by = [account_id], max = 1),
    sequence(by = [account_id])
)]
async fn sync_account(_s: SyncAccount) {}

#[derive(Debug, Serialize, Deserialize)]
struct CallApi {
    tenant: String,
}

/// At most 5 calls a second per tenant, 20 a second in all.
#[job_handler("api.call", rate(by = [tenant], max = 5, per = "1s"))]
async fn call_api(_c: CallApi) {}

#[tokio::test]
async fn limits_are_derived_from_the_payload_and_stored() {
    let l = SyncAccount { account_id: 42 }.limits();
    let c = l.concurrency.as_ref().expect("concurrency");
    assert_eq!(c.key, "sync.account(account_id=42)");
    assert_eq!(c.max, 1);
    assert_eq!(l.sequence.as_deref(), Some("sync.account(account_id=42)"));
    assert!(l.rate.is_none());
    let r = CallApi {
        tenant: "acme".into(),
    }
    .limits()
    .rate
    .expect("rate");
    assert_eq!(r.key, "api.call(tenant=\"acme\")");
    assert_eq!((r.max, r.per), (5, Duration::from_secs(1)));

    let queue = jobs::connect("memory://").await.unwrap();
    let id = queue.enqueue(SyncAccount { account_id: 7 }).await.unwrap();
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!(job.limits, SyncAccount { account_id: 7 }.limits());
    // Per enqueue, a key of one's own wins.
    let id = queue
        .enqueue(SyncAccount { account_id: 7 })
        .concurrency("all-syncs", 3)
        .await
        .unwrap();
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!(job.limits.concurrency.unwrap().key, "all-syncs");
}
