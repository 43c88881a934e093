//! An idle worker must cost the database almost nothing: the listener waits on
//! LISTEN/NOTIFY and a cached timer, and issues no query while nothing happens.
//! Statements are counted from the server log of a throwaway cluster
//! (`log_statement = all`), so other tests can't disturb the count.

mod postgres_support;

use std::time::Duration;

use jobs_core::{Backend, NewJob};
use jobs_runtime::backend::postgres::PostgresBackend;
use postgres_support::cluster::Cluster;
use serde_json::json;
use sqlx::Connection;

/// Statements the server ran between two marker queries.
async fn statements_between(
    cluster: &Cluster,
    run: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let mut probe = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    sqlx::raw_sql("SELECT 'idle-marker-start'")
        .execute(&mut probe)
        .await
        .unwrap();
    run.await;
    sqlx::raw_sql("SELECT 'idle-marker-end'")
        .execute(&mut probe)
        .await
        .unwrap();
    // Give the server a moment to write its log.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = cluster.log();
    let start = log.rfind("idle-marker-start").expect("start marker logged");
    let end = log.rfind("idle-marker-end").expect("end marker logged");
    // Up to the line that holds the end marker, exclusive.
    let end = log[..end].rfind('\n').unwrap_or(start);
    log[start..end]
        .lines()
        .skip(1)
        .filter(|l| l.contains("LOG:  statement:") || l.contains("LOG:  execute"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_listener_issues_no_queries() {
    let Some(cluster) = Cluster::init_with("-c log_statement=all") else {
        return;
    };
    let backend = PostgresBackend::connect(&cluster.url()).await.unwrap();
    // A job due in an hour: the listener has a timer to keep, from one cached query.
    backend
        .enqueue_batch(vec![NewJob::new("t", json!({}))
            .queue("idle")
            .delay(Duration::from_secs(3600))])
        .await
        .unwrap();
    let queues = vec!["idle".to_owned()];
    let mut listener = backend.listener(&queues).await.unwrap();
    for _ in 0..3 {
        listener.wait(Duration::from_millis(50)).await; // reads the timer once
    }
    let ran = statements_between(&cluster, async {
        for _ in 0..8 {
            listener.wait(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(
        ran.is_empty(),
        "an idle listener ran {} statements in 4 s:\n{}",
        ran.len(),
        ran.join("\n")
    );

    // An idle WorkerManager: its claim poll and lease reaper are all it runs.
    let manager = jobs_runtime::WorkerManager::builder(backend.clone())
        .auto_register(false)
        .queues(["idle"])
        .build()
        .unwrap();
    manager.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ran = statements_between(&cluster, tokio::time::sleep(Duration::from_secs(5))).await;
    manager.stop().await.unwrap();
    eprintln!(
        "an idle WorkerManager (default poll/reap intervals) ran {} statements in 5 s",
        ran.len()
    );
}
