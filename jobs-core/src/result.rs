//! `JobResult`: what a handler reports back.

use serde::Serialize;
use serde_json::Value;

use crate::JobError;

/// The outcome a handler returns, as in the seed: a success flag, data to store,
/// and for a failure the error. A failed `JobResult` is an *expected* failure:
/// the job goes to FAILED without retry.
#[derive(Debug)]
pub struct JobResult {
    pub success: bool,
    pub result_data: Option<Value>,
    pub error: Option<JobError>,
}

impl JobResult {
    /// Success with nothing to store.
    pub fn success() -> Self {
        JobResult {
            success: true,
            result_data: None,
            error: None,
        }
    }

    /// Success storing `data` as the job's `result_data`.
    pub fn with_data(data: Value) -> Self {
        JobResult {
            success: true,
            result_data: Some(data),
            error: None,
        }
    }

    /// Success storing any serializable value (a serialization failure becomes
    /// a string describing it, so a result never loses the job).
    pub fn with(data: &impl Serialize) -> Self {
        match serde_json::to_value(data) {
            Ok(v) => JobResult::with_data(v),
            Err(e) => JobResult::with_data(Value::String(format!(
                "<result could not be serialized: {e}>"
            ))),
        }
    }

    /// An expected failure: no retry.
    pub fn failure(error: impl Into<JobError>) -> Self {
        JobResult {
            success: false,
            result_data: None,
            error: Some(error.into()),
        }
    }

    /// Adds data to store alongside either outcome.
    pub fn data(mut self, data: Value) -> Self {
        self.result_data = Some(data);
        self
    }
}
