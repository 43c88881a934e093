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
}

/// Business validation that runs after the payload deserializes and before any
/// work: an `Err` is a permanent failure ("validate the payload early").
pub trait Validate {
    /// Why the payload is unacceptable, if it is.
    fn validate(&self) -> Result<(), String>;
}

/// Deserializes `payload` into `T`. A mismatch is a permanent [`JobError`] naming
/// the job type, the field path and what was wrong.
pub fn decode_payload<T: DeserializeOwned>(job_type: &str, payload: &Value) -> Result<T, JobError> {
    check_payload::<T>(payload).map_err(|reason| {
        JobError::permanent(format!(
            "invalid payload for job type `{job_type}` (expected `{}`): {reason}",
            std::any::type_name::<T>()
        ))
    })?;
    // Deserialize for real only once the shape is known to fit.
    T::deserialize(payload)
        .map_err(|e| JobError::permanent(format!("invalid payload for job type `{job_type}`: {e}")))
}

/// Whether `payload` deserializes into `T`; the error says which field and why.
pub fn check_payload<T: DeserializeOwned>(payload: &Value) -> Result<(), String> {
    match serde_path_to_error::deserialize::<_, T>(payload) {
        Ok(_) => Ok(()),
        Err(e) => {
            let path = e.path().to_string();
            if path == "." || path.is_empty() {
                Err(e.into_inner().to_string())
            } else {
                Err(format!("at `{path}`: {}", e.into_inner()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
