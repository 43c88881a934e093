//! The audit log's storage: entries come back newest first, paged and cut
//! at a time, with every field as written; old ones are pruned in batches.
//! And deleting a job.

use chrono::{Duration as Span, SubsecRound, Utc};
use jobs_core::{AuditEntry, AuditFilter, Error, JobStatus, NewJob};
use serde_json::json;

use super::support::{claim, enqueue, LONG, W1};
use super::Backend;

fn entry(n: i64, ok: bool) -> AuditEntry {
    let at = (Utc::now() - Span::minutes(60 - n)).trunc_subsecs(6);
    AuditEntry::new(format!("user-{n}"), "requeue", format!("job-{n}"))
        .at(at)
        .result(if ok {
            Ok(format!("{n} done"))
        } else {
            Err("job not found".to_owned())
        })
}

/// Appended entries are listed newest first with every field; `before`,
/// `limit` and `offset` page through them.
pub async fn audit_entries_are_listed_newest_first(q: Backend) {
    let entries: Vec<AuditEntry> = (0..5).map(|n| entry(n, n % 2 == 0)).collect();
    for e in &entries {
        q.append_audit(e).await.expect("append");
    }
    let all = q.audit_log(&AuditFilter::default()).await.expect("list");
    let want: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    assert_eq!(all, want);
    let page = q
        .audit_log(&AuditFilter::default().limit(2).offset(1))
        .await
        .expect("page");
    assert_eq!(page, want[1..3].to_vec());
    let before = q
        .audit_log(&AuditFilter::default().before(entries[2].at))
        .await
        .expect("before");
    assert_eq!(before, vec![entries[1].clone(), entries[0].clone()]);
    // Same time: the later append is the newer.
    let at = Utc::now().trunc_subsecs(6);
    let a = AuditEntry::new("a", "pause", "q").at(at);
    let b = AuditEntry::new("b", "resume", "q").at(at);
    q.append_audit(&a).await.unwrap();
    q.append_audit(&b).await.unwrap();
    let top = q.audit_log(&AuditFilter::default().limit(2)).await.unwrap();
    assert_eq!(top, vec![b, a]);
}

/// Pruning removes at most `limit` entries older than the cut-off.
pub async fn audit_entries_are_pruned_in_batches(q: Backend) {
    for n in 0..5 {
        q.append_audit(&entry(n, true)).await.unwrap();
    }
    let cut = Utc::now() - Span::seconds(57 * 60 + 30); // entries 0, 1, 2 are older
    assert_eq!(q.prune_audit(cut, 2).await.expect("prune"), 2);
    assert_eq!(q.prune_audit(cut, 2).await.expect("prune"), 1);
    assert_eq!(q.prune_audit(cut, 2).await.expect("prune"), 0);
    let left = q.audit_log(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        vec!["user-4", "user-3"]
    );
}

/// A waiting or finished job can be deleted (with its unique key, so the
/// key is free again); a running one cannot; an unknown one is not found.
pub async fn delete_removes_a_job_that_is_not_running(q: Backend) {
    let unique = jobs_core::Uniqueness::new("only-one");
    let waiting = enqueue(&q, NewJob::new("t", json!({})).unique(unique.clone())).await;
    q.delete_job(waiting).await.expect("delete waiting");
    assert!(q.get(waiting).await.unwrap().is_none());
    assert!(
        q.enqueue_batch(vec![NewJob::new("t", json!({})).unique(unique)])
            .await
            .unwrap()[0]
            .is_inserted(),
        "the deleted job's key is free"
    );
    let running = claim(&q, W1, &["default"], 1, LONG).await.remove(0);
    match q.delete_job(running.id).await {
        Err(Error::InvalidState { from, .. }) => assert_eq!(from, JobStatus::Running),
        other => panic!("deleting a running job: {other:?}"),
    }
    assert!(q.get(running.id).await.unwrap().is_some());
    let missing = jobs_core::JobId::new();
    assert!(matches!(q.delete_job(missing).await, Err(Error::NotFound(id)) if id == missing));
    let other = enqueue(
        &q,
        NewJob::new("t", json!({})).delay(std::time::Duration::from_secs(60)),
    )
    .await;
    q.delete_job(other).await.expect("delete scheduled");
    assert!(claim(&q, W1, &["default"], 10, LONG).await.is_empty());
}
