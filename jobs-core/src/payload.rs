//! Typed payloads: the link between a payload type and its job type.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{JobError, JobOptions};

/// A payload type that knows its job type, so `queue.enqueue(SendEmail { .. })`
/// needs no string. `#[job_handler]` implements it for the handler's payload.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a job payload",
    label = "no `#[job_handler]` takes `{Self}` as its payload",
    note = "annotate the handler that takes `{Self}` with `#[job_handler(\"type\")]`, or implement `JobPayload` by hand; derive `Serialize` and `Deserialize` for it"
)]
pub trait JobPayload: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The job type this payload is routed to.
    const JOB_TYPE: &'static str;

    /// Defaults for jobs of this type (queue, priority, max_retries).
    fn options() -> JobOptions {
        JobOptions::default()
    }

    /// Checks a payload before a typed enqueue stores it; an `Err` (the
    /// reason) refuses it. `#[job_handler]` makes it run the payload's
    /// [`Validate`] if it has one.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// This payload's uniqueness, if its type declares one
    /// (`#[job_handler(.., unique(by = [field], for = "10m"))]`).
    fn uniqueness(&self) -> Option<crate::Uniqueness> {
        None
    }

    /// This payload's limits, if its type declares any
    /// (`#[job_handler(.., concurrency(by = [account_id], max = 1))]`,
    /// `rate(..)`, `sequence(..)`).
    fn limits(&self) -> crate::JobLimits {
        crate::JobLimits::default()
    }
}

/// Business validation that runs after the payload deserializes and before any
/// work: an `Err` is a permanent failure ("validate the payload early").
///
/// `#[job_handler]` runs it when the payload type implements it, without any
/// opt-in, and a typed enqueue refuses a payload it rejects.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Validate`",
    label = "no `Validate` impl",
    note = "implement it for the payload: `impl Validate for {Self} {{ fn validate(&self) -> Result<(), String> {{ .. }} }}`; a payload without it is not validated (only deserialized)"
)]
pub trait Validate {
    /// Why the payload is unacceptable, if it is.
    fn validate(&self) -> Result<(), String>;
}

/// Deserializes `payload` into `T`. A mismatch is a permanent [`JobError`] naming
/// the job type, the field path and what was wrong.
pub fn decode_payload<T: DeserializeOwned>(job_type: &str, payload: &Value) -> Result<T, JobError> {
    parse_payload::<T>(payload).map_err(|reason| {
        JobError::permanent(format!(
            "invalid payload for job type `{job_type}` (expected `{}`): {reason}",
            std::any::type_name::<T>()
        ))
    })
}

/// Deserializes `payload` into `T` in one pass; the error says which field
/// and why.
pub fn parse_payload<T: DeserializeOwned>(payload: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize::<_, T>(payload).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            e.into_inner().to_string()
        } else {
            format!("at `{path}`: {}", e.into_inner())
        }
    })
}

/// Whether `payload` deserializes into `T`; the error says which field and why.
pub fn check_payload<T: DeserializeOwned>(payload: &Value) -> Result<(), String> {
    parse_payload::<T>(payload).map(drop)
}

/// About how many bytes `v` takes as JSON (escapes aside), without
/// serializing it.
pub fn json_size(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|i| json_size(i) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_close_to_the_serialized_length() {
        for v in [
            json!(null),
            json!({"a": [1, 2, 3], "b": {"c": "dé"}}),
            json!("x".repeat(1000)),
        ] {
            let real = serde_json::to_vec(&v).unwrap().len();
            let est = json_size(&v);
            assert!(est + 8 >= real && est <= real + 8, "{v}: {est} vs {real}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Email {
        recipient: String,
        attempts: u8,
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn decode_errors_name_type_and_field() {
        let err = decode_payload::<Email>(
            "email.send",
            &serde_json::json!({"recipient": "a", "attempts": 1, "inner": {"n": "x"}}),
        )
        .unwrap_err();
        assert!(err.is_permanent());
        let msg = err.to_string();
        assert!(
            msg.contains("email.send") && msg.contains("inner.n"),
            "{msg}"
        );
        let err = decode_payload::<Email>("email.send", &serde_json::json!({"recipient": "a"}))
            .unwrap_err();
        assert!(
            err.to_string().contains("missing field `attempts`"),
            "{err}"
        );
    }
}
