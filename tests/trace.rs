//! Trace propagation: a job enqueued inside a traced span carries its W3C
//! trace context in its metadata, and the attempt's `job` span is that
//! span's child, whichever process runs it — read back from OpenTelemetry's
//! in-memory span exporter.

use std::time::Duration;

use jobs::backend::memory::MemoryBackend;
use jobs::{Job, JobError, JobHandler, JobResult, JobStatus, Queue, WorkerManager};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::json;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

struct Traced;
impl JobHandler for Traced {
    fn job_type(&self) -> &str {
        "trace.me"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        tracing::info_span!("inside.handler").in_scope(|| ());
        Ok(JobResult::success())
    }
}

fn ids(span: &tracing::Span) -> (TraceId, SpanId) {
    let cx = span.context();
    let s = cx.span();
    let sc = s.span_context();
    (sc.trace_id(), sc.span_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_span_is_a_child_of_the_span_that_enqueued_it() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jobs-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");

    let queue = Queue::new(MemoryBackend::new());
    let request = tracing::info_span!("http.request");
    let (trace_id, request_span) = ids(&request);
    assert_ne!(trace_id, TraceId::INVALID);
    let traced = queue
        .enqueue_raw("trace.me", json!({ "n": 1 }))
        .instrument(request.clone())
        .await
        .unwrap()
        .id();
    drop(request);
    // Outside any span: nothing to carry.
    let untraced = queue
        .enqueue_raw("trace.me", json!({ "n": 2 }))
        .await
        .unwrap()
        .id();

    let stored = queue.get(traced).await.unwrap().unwrap();
    let header = stored.metadata["traceparent"]
        .as_str()
        .expect("traceparent");
    assert_eq!(header, format!("00-{trace_id}-{request_span}-01"));
    let plain = queue.get(untraced).await.unwrap().unwrap();
    assert!(plain.metadata.get("traceparent").is_none());

    let m = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(Traced)
        .build()
        .unwrap();
    m.start().await.unwrap();
    for id in [traced, untraced] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while queue.get(id).await.unwrap().unwrap().status != JobStatus::Completed {
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} did not complete"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    m.stop().await.unwrap();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let job_spans: Vec<_> = spans.iter().filter(|s| s.name == "job").collect();
    assert_eq!(job_spans.len(), 2, "one span per attempt: {spans:#?}");
    let child: Vec<_> = job_spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect();
    assert_eq!(
        child.len(),
        1,
        "the traced job's span joined the request's trace"
    );
    assert_eq!(child[0].parent_span_id, request_span);
    let other = job_spans
        .iter()
        .find(|s| s.span_context.trace_id() != trace_id)
        .unwrap();
    assert_eq!(
        other.parent_span_id,
        SpanId::INVALID,
        "an untraced job starts its own trace"
    );
    // The handler's own spans are inside the job's.
    let inner = spans
        .iter()
        .find(|s| s.name == "inside.handler" && s.span_context.trace_id() == trace_id)
        .expect("the handler's span in the request's trace");
    assert_eq!(inner.parent_span_id, child[0].span_context.span_id());
}
