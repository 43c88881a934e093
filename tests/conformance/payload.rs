//! Payloads, metadata, results and error messages are stored exactly.

use jobs_core::backend::Outcome;
use jobs_core::NewJob;
use serde_json::{json, Map, Value};

use super::support::{claim, claim_one, enqueue, failure, get, record, LONG, W1};
use super::Backend;

/// Payloads, metadata and results come back exactly: unicode, escapes, deep
/// nesting, numbers at the edges, 1 MiB strings, empty objects and arrays.
pub async fn payloads_round_trip_exactly(q: Backend) {
    let big_string: String = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    let big_array: Vec<Value> = (0..20_000)
        .map(|i| json!({ "i": i, "s": format!("item-{i}") }))
        .collect();
    let mut deep = json!({ "leaf": "bottom" });
    for i in 0..100 {
        deep = json!({ "level": i, "child": deep, "list": [i, [], {}] });
    }
    let payloads = vec![
        json!({}),
        json!({ "empty_obj": {}, "empty_arr": [], "empty_str": "", "null": null }),
        json!({
            "unicode": "héllo wörld — ✓ 日本語 עברית العربية 🦀👩‍👩‍👧‍👦 e\u{301}",
            "escapes": "quote \" backslash \\ slash / newline \n tab \t cr \r bell \u{7}",
            "sql": "'; DROP TABLE jobs; --",
            "键": "值",
            "emoji_key_🦀": true,
        }),
        json!({
            "ints": [0, -1, 1, i64::MAX, i64::MIN, u64::MAX],
            "floats": [0.5, -2.25, 1e-7, 12345.678],
            "bools": [true, false],
        }),
        json!({ "nested": deep }),
        json!({ "big": big_string }),
        json!({ "many": big_array }),
    ];
    let mut meta = Map::new();
    meta.insert("trace_id".into(), json!("ü-🦀"));
    meta.insert("nested".into(), json!({ "a": [1, { "b": {} }] }));
    let jobs: Vec<NewJob> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut j = NewJob::new("payload.job", p.clone()).priority(-(i as i32));
            j.metadata = meta.clone();
            j
        })
        .collect();
    let ids = q
        .enqueue_batch(jobs)
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    for (id, p) in ids.iter().zip(&payloads) {
        let j = get(&q, *id).await;
        assert!(j.payload == *p, "payload of {id} changed in storage");
        assert_eq!(j.metadata, meta);
    }
    let claimed = claim(&q, W1, &["default"], payloads.len(), LONG).await;
    assert_eq!(claimed.len(), payloads.len());
    for j in &claimed {
        let i = ids.iter().position(|id| *id == j.id).expect("known id");
        assert!(
            j.payload == payloads[i],
            "payload {i} changed through claim"
        );
        // Echo the payload back as the result.
        let lost = record(
            &q,
            W1,
            j.fence(),
            Outcome::Complete {
                result: Some(payloads[i].clone()),
            },
        )
        .await;
        assert!(lost.is_empty());
    }
    for (id, p) in ids.iter().zip(&payloads) {
        let j = get(&q, *id).await;
        assert!(
            j.result_data.as_ref() == Some(p),
            "result of {id} changed in storage"
        );
    }
    // Error messages are text too.
    let e = enqueue(&q, NewJob::new("payload.job", json!({ "e": 1 }))).await;
    let j = claim_one(&q, W1, &["default"], LONG).await.expect("claim");
    assert_eq!(j.id, e);
    let msg = "échec: 🦀 \"quoted\" \n line two \\ done";
    let lost = record(
        &q,
        W1,
        j.fence(),
        Outcome::Fail {
            error: failure(msg, false),
            result: None,
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, e).await;
    assert_eq!(j.error_message.as_deref(), Some(msg));
    assert_eq!(j.errors[0].message, msg);
}

/// Every backend treats a NUL character alike: in a payload (or metadata) it
/// is refused at enqueue with a clear, non-transient error naming the job
/// type — nothing of the batch is stored — while a NUL in a result or an
/// error message is stored (as U+FFFD where the backend cannot hold a NUL),
/// never refused.
pub async fn a_nul_in_a_payload_is_refused_and_one_in_a_result_is_stored(q: Backend) {
    let ok = NewJob::new("t", json!({"fine": true}));
    let ok_id = ok.id;
    let bad = NewJob::new("scrape.page", json!({"html": "a\u{0}b"}));
    let err = q
        .enqueue_batch(vec![ok, bad])
        .await
        .expect_err("a NUL in a payload is refused");
    assert!(!err.is_transient(), "{err}");
    assert!(
        matches!(&err, jobs_core::Error::InvalidPayload { job_type, .. } if job_type == "scrape.page"),
        "{err:?}"
    );
    assert!(
        q.get(ok_id).await.expect("get").is_none(),
        "nothing of the batch was stored"
    );
    let meta = NewJob::new("t", json!({})).metadata("note", "x\u{0}");
    assert!(q.enqueue_batch(vec![meta]).await.is_err());

    let same_or_replaced =
        |stored: &str, sent: &str| stored == sent || stored == sent.replace('\u{0}', "\u{FFFD}");
    let done = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let result = json!({"text": "bin\u{0}ary", "list": ["\u{0}"]});
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Complete {
            result: Some(result),
        },
    )
    .await;
    assert!(
        lost.is_empty(),
        "a result with a NUL is stored, not refused"
    );
    let j = get(&q, done).await;
    assert_eq!(j.status, jobs_core::JobStatus::Completed);
    let data = j.result_data.expect("stored");
    assert!(
        same_or_replaced(data["text"].as_str().unwrap(), "bin\u{0}ary"),
        "{data}"
    );
    assert!(
        same_or_replaced(data["list"][0].as_str().unwrap(), "\u{0}"),
        "{data}"
    );

    let failed = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Fail {
            error: failure("bad \u{0} byte", false),
            result: None,
        },
    )
    .await;
    assert!(
        lost.is_empty(),
        "an error message with a NUL is stored, not refused"
    );
    let j = get(&q, failed).await;
    assert_eq!(j.status, jobs_core::JobStatus::Failed);
    assert!(same_or_replaced(
        j.error_message.as_deref().unwrap(),
        "bad \u{0} byte"
    ));
    assert!(same_or_replaced(&j.errors[0].message, "bad \u{0} byte"));
}
