//! Outcomes as the record statement takes them: one array per column, with
//! what PostgreSQL cannot hold (a NUL character) replaced.

use std::borrow::Cow;

use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::MAX_DELAY;
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::backend::micros;

/// What stands in for a NUL character: `text` and `jsonb` cannot hold one,
/// and an outcome must never be refused for it (a payload with one is refused
/// at enqueue instead, before anything is stored).
const NUL_STAND_IN: &str = "\u{FFFD}";

/// The columns of a batch of outcomes, in `record.sql`'s parameter order.
pub(super) struct OutcomeColumns<'a> {
    pub(super) ids: Vec<Uuid>,
    pub(super) tokens: Vec<i64>,
    /// What happened: `COMPLETE`, `DROP` (complete and delete), `RETRY`,
    /// `FAIL`, `DEAD`, `RELEASE`, `SNOOZE`, `CANCEL` (record.sql maps it to a
    /// status).
    pub(super) kinds: Vec<&'static str>,
    /// Borrowed unless a NUL had to be replaced: a result may be large.
    pub(super) results: Vec<Option<Json<Cow<'a, Value>>>>,
    pub(super) delays: Vec<i64>,
    pub(super) messages: Vec<Option<Cow<'a, str>>>,
    pub(super) retryables: Vec<bool>,
    pub(super) attempts: Vec<i32>,
    /// Whether any is a completion to drop ([`Outcome::CompleteAndDelete`]).
    pub(super) drops: bool,
}

impl<'a> OutcomeColumns<'a> {
    pub(super) fn new(updates: &'a [OutcomeUpdate]) -> Self {
        let n = updates.len();
        let mut c = OutcomeColumns {
            ids: Vec::with_capacity(n),
            tokens: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            results: Vec::with_capacity(n),
            delays: Vec::with_capacity(n),
            messages: Vec::with_capacity(n),
            retryables: Vec::with_capacity(n),
            attempts: Vec::with_capacity(n),
            drops: false,
        };
        for u in updates {
            c.ids.push(*u.fence.id.as_uuid());
            c.tokens.push(u.fence.token.as_i64());
            // An attempt beyond i32 can't be stored, so it can't match either.
            c.attempts
                .push(i32::try_from(u.fence.attempt).unwrap_or(-1));
            let delay_of = |d: &std::time::Duration| micros((*d).min(MAX_DELAY));
            let (kind, result, delay, error) = match &u.outcome {
                Outcome::Complete { result } => ("COMPLETE", result.as_ref(), 0, None),
                Outcome::CompleteAndDelete => {
                    c.drops = true;
                    ("DROP", None, 0, None)
                }
                Outcome::Retry { delay, error } => ("RETRY", None, delay_of(delay), Some(error)),
                Outcome::Fail { error, result } => ("FAIL", result.as_ref(), 0, Some(error)),
                Outcome::DeadLetter { error } => ("DEAD", None, 0, Some(error)),
                Outcome::Release => ("RELEASE", None, 0, None),
                Outcome::Snooze { delay } => ("SNOOZE", None, delay_of(delay), None),
                Outcome::Cancel { error } => ("CANCEL", None, 0, Some(error)),
            };
            c.kinds.push(kind);
            // A JSON `null` result is stored as SQL NULL: both read back as `None`.
            c.results.push(
                result
                    .filter(|v| !v.is_null())
                    .map(|v| Json(without_nul_value(v))),
            );
            c.delays.push(delay);
            c.messages
                .push(error.map(|e| without_nul_str(e.message.as_str())));
            c.retryables.push(error.is_some_and(|e| e.retryable));
        }
        c
    }
}

/// `s`, borrowed unless it holds a NUL to replace.
fn without_nul_str(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', NUL_STAND_IN))
    } else {
        Cow::Borrowed(s)
    }
}

/// `v` with every NUL in its strings and object keys replaced: borrowed (the
/// scan for a NUL is all the common case costs) unless one was there.
fn without_nul_value(v: &Value) -> Cow<'_, Value> {
    if has_nul(v) {
        Cow::Owned(replace_nul(v))
    } else {
        Cow::Borrowed(v)
    }
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn replace_nul(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(without_nul_str(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(replace_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (without_nul_str(k).into_owned(), replace_nul(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_characters_are_replaced_in_strings_and_keys_only() {
        let v = json!({"a\u{0}": ["x\u{0}y", 1, null, {"k": "\u{0}"}], "b": "clean"});
        assert_eq!(
            without_nul_value(&v).into_owned(),
            json!({"a\u{FFFD}": ["x\u{FFFD}y", 1, null, {"k": "\u{FFFD}"}], "b": "clean"})
        );
        let clean = json!({"a": ["ü ✓", 2.5]});
        assert!(matches!(without_nul_value(&clean), Cow::Borrowed(c) if *c == clean));
        assert!(matches!(without_nul_str("fine"), Cow::Borrowed("fine")));
        assert_eq!(without_nul_str("a\u{0}b"), "a\u{FFFD}b");
    }
}
