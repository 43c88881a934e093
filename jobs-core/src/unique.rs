//! Unique jobs: a key that at most one job holds while it is in the chosen
//! states, enforced by the backend (a unique index, or one atomic script),
//! never by a read-then-write.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::JobStatus;

/// The statuses in which a job holds its unique key, as a bit set.
///
/// Waiting and running jobs (PENDING, SCHEDULED, RUNNING, RETRYING) always
/// hold it: a key that a running job could give up and take back would let
/// two jobs hold it at once. Finished statuses can be added: with COMPLETED,
/// a key stays taken after the job ran (what "at most once per period" wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UniqueStates(u8);

impl UniqueStates {
    /// PENDING, SCHEDULED, RUNNING and RETRYING: the default, and the least.
    pub const ACTIVE: UniqueStates = UniqueStates(
        Self::bit(JobStatus::Pending)
            | Self::bit(JobStatus::Scheduled)
            | Self::bit(JobStatus::Running)
            | Self::bit(JobStatus::Retrying),
    );

    /// Every status: a key is never used twice (within its period).
    pub const ALL: UniqueStates = UniqueStates(0x7f);

    /// The bit of `status` (its position in [`JobStatus::ALL`]).
    pub const fn bit(status: JobStatus) -> u8 {
        1 << (status as u8)
    }

    /// These states plus `status`.
    pub const fn with(self, status: JobStatus) -> Self {
        UniqueStates(self.0 | Self::bit(status))
    }

    /// Whether a job in `status` holds its key.
    pub const fn contains(self, status: JobStatus) -> bool {
        self.0 & Self::bit(status) != 0
    }

    /// The bit set as stored by backends.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set stored as `bits` (the active states are always included).
    pub const fn from_bits(bits: u8) -> Self {
        UniqueStates((bits & 0x7f) | Self::ACTIVE.0)
    }
}

impl Default for UniqueStates {
    fn default() -> Self {
        Self::ACTIVE
    }
}

/// What a unique job declares: its key, for how long, in which states, and
/// what a second enqueue does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Uniqueness {
    /// The key (see [`UniqueKey`] to derive one from the job).
    pub key: String,
    /// With a period, the key is taken once per period: the backend appends
    /// the number of whole periods since the Unix epoch by its own clock
    /// (`key:bucket`), so "at most one per 10 minutes" needs no timer.
    pub period: Option<Duration>,
    /// The statuses in which a job holds the key.
    pub states: UniqueStates,
    /// Debounce: if a *waiting* job holds the key, replace its payload (and
    /// metadata, priority, options) and push its due time to the new one's,
    /// instead of refusing the new job. A running holder is not replaced.
    pub replace: bool,
}

impl Uniqueness {
    /// Unique on `key` while waiting or running, no period, no replacement.
    pub fn new(key: impl Into<String>) -> Self {
        Uniqueness {
            key: key.into(),
            period: None,
            states: UniqueStates::ACTIVE,
            replace: false,
        }
    }

    /// Once per `period`: the key is also held by finished jobs (COMPLETED,
    /// FAILED, DEAD_LETTER) until the period is over.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = Some(period);
        self.states = UniqueStates::ALL;
        self
    }

    /// In which statuses a job holds the key (the active ones always).
    pub fn states(mut self, states: UniqueStates) -> Self {
        self.states = UniqueStates::from_bits(states.bits());
        self
    }

    /// Replace a waiting holder instead of refusing the new job (debounce).
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }

    /// The key as stored, given the backend's clock (seconds since the Unix
    /// epoch): the key, or with a period `key:bucket`.
    pub fn stored_key(&self, now_secs: i64) -> String {
        match self.period {
            None => self.key.clone(),
            Some(p) => {
                let p = p.as_secs().max(1) as i64;
                format!("{}:{}", self.key, now_secs.div_euclid(p))
            }
        }
    }
}

/// Derives a unique key from what identifies a job: its type, optionally its
/// queue, and all or some of its payload. Two jobs get the same key exactly
/// when those parts are equal (as JSON, whatever the key order).
///
/// ```
/// use jobs_core::UniqueKey;
/// use serde_json::json;
///
/// let a = UniqueKey::new("email.send").field("to", &json!("ada@example.com")).finish();
/// let b = UniqueKey::new("email.send").field("to", &json!("ada@example.com")).finish();
/// let c = UniqueKey::new("email.send").field("to", &json!("bob@example.com")).finish();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
#[derive(Debug, Clone)]
pub struct UniqueKey {
    bytes: Vec<u8>,
}

/// The UUID namespace of derived keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x6a6f_6273_2d75_6e69_7175_652d_6b65_7973);

impl UniqueKey {
    /// A key for jobs of `job_type`.
    pub fn new(job_type: &str) -> Self {
        let mut k = UniqueKey { bytes: Vec::new() };
        k.part("type", job_type.as_bytes());
        k
    }

    fn part(&mut self, name: &str, value: &[u8]) {
        // Length-prefixed, so no two different lists of parts encode alike.
        for piece in [name.as_bytes(), value] {
            self.bytes
                .extend_from_slice(&(piece.len() as u64).to_le_bytes());
            self.bytes.extend_from_slice(piece);
        }
    }

    /// Jobs of different queues get different keys.
    pub fn queue(mut self, queue: &str) -> Self {
        self.part("queue", queue.as_bytes());
        self
    }

    /// The whole payload is part of the key.
    pub fn payload(mut self, payload: &Value) -> Self {
        self.part("payload", canonical(payload).as_bytes());
        self
    }

    /// One field of the payload is part of the key.
    pub fn field(mut self, name: &str, value: &Value) -> Self {
        self.part(&format!("field.{name}"), canonical(value).as_bytes());
        self
    }

    /// Any other text is part of the key.
    pub fn text(mut self, text: &str) -> Self {
        self.part("text", text.as_bytes());
        self
    }

    /// The key: a UUID (v5) of the parts, 36 characters whatever their size.
    pub fn finish(&self) -> String {
        Uuid::new_v5(&NAMESPACE, &self.bytes).to_string()
    }
}

/// JSON with object keys in order (serde_json's `Map` keeps them sorted).
fn canonical(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_depend_on_exactly_the_parts() {
        let p1 = json!({"a": 1, "b": [1, 2]});
        let p2: Value = serde_json::from_str(r#"{"b": [1, 2], "a": 1}"#).unwrap();
        assert_eq!(
            UniqueKey::new("t").payload(&p1).finish(),
            UniqueKey::new("t").payload(&p2).finish(),
            "key order does not matter"
        );
        assert_ne!(UniqueKey::new("t").finish(), UniqueKey::new("u").finish());
        assert_ne!(
            UniqueKey::new("t").queue("a").finish(),
            UniqueKey::new("t").finish()
        );
        assert_ne!(
            UniqueKey::new("t").field("x", &json!("ab")).finish(),
            UniqueKey::new("t").field("xa", &json!("b")).finish()
        );
        assert_eq!(UniqueKey::new("t").finish().len(), 36);
    }

    #[test]
    fn periods_bucket_by_the_backends_clock() {
        let u = Uniqueness::new("k").period(Duration::from_secs(600));
        assert_eq!(u.stored_key(1_200), "k:2");
        assert_eq!(u.stored_key(1_799), "k:2");
        assert_eq!(u.stored_key(1_800), "k:3");
        assert_eq!(Uniqueness::new("k").stored_key(5), "k");
        assert_eq!(u.states, UniqueStates::ALL);
    }

    #[test]
    fn the_active_states_are_always_held() {
        let s = UniqueStates::from_bits(0);
        assert_eq!(s, UniqueStates::ACTIVE);
        assert!(s.contains(JobStatus::Running) && !s.contains(JobStatus::Completed));
        assert!(s.with(JobStatus::Completed).contains(JobStatus::Completed));
        assert_eq!(UniqueStates::bit(JobStatus::Pending), 1);
        assert_eq!(UniqueStates::bit(JobStatus::DeadLetter), 64);
    }
}
