//! Job rows as the scripts return them, and the values the scripts take.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::LeaseToken;
use jobs_core::{
    AttemptError, BackendErrorKind, ConcurrencyLimit, Enqueued, Error, Job, JobId, JobLimits,
    JobStatus, NewJob, RateLimit, Result, Timeout, MAX_DELAY, MAX_ERROR_HISTORY,
};
use redis::Value;
use serde::Deserialize;

use super::scripts::{unexpected, BACKEND, MAX_VALUE_BYTES};

/// A row as the scripts return it: id, then the fields of `FIELDS` in
/// `common.lua`.
pub(super) mod col {
    pub const Q: usize = 1;
    pub const T: usize = 2;
    pub const P: usize = 3;
    pub const S: usize = 4;
    pub const PR: usize = 5;
    pub const RC: usize = 6;
    pub const MR: usize = 7;
    pub const RA: usize = 8;
    pub const CA: usize = 9;
    pub const SA: usize = 10;
    pub const FA: usize = 11;
    pub const EM: usize = 12;
    pub const ER: usize = 13;
    pub const RD: usize = 14;
    pub const MD: usize = 15;
    pub const LB: usize = 16;
    pub const LU: usize = 17;
    pub const AT: usize = 18;
    pub const LT: usize = 19;
    pub const EC: usize = 20;
    pub const CX: usize = 21;
    pub const TO: usize = 22;
    pub const SN: usize = 23;
    pub const PG: usize = 24;
    pub const UK: usize = 25;
    pub const LC: usize = 26;
    pub const LCM: usize = 27;
    pub const LR: usize = 28;
    pub const LRM: usize = 29;
    pub const LRP: usize = 30;
    pub const LS: usize = 31;
    pub const LEN: usize = 32;
}

/// A job that could not be read back.
#[derive(Debug)]
pub(super) struct CorruptRow {
    pub(super) id: String,
    pub(super) reason: String,
}

impl CorruptRow {
    pub(super) fn into_error(self) -> Error {
        Error::Corrupt {
            backend: BACKEND,
            id: self.id,
            reason: self.reason,
        }
    }
}

/// One failed attempt as stored in field `er`.
#[derive(Deserialize)]
struct StoredError {
    a: u32,
    r: u32,
    t: i64,
    m: String,
    y: bool,
    #[serde(default)]
    w: Option<String>,
}

/// The bytes of a string reply; an empty string counts as absent (scripts
/// clear a field by setting it to `""`, one command instead of two).
fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) if !b.is_empty() => Some(b),
        Value::SimpleString(s) if !s.is_empty() => Some(s.as_bytes()),
        _ => None,
    }
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        other => bytes(other).map(|b| String::from_utf8_lossy(b).into_owned()),
    }
}

pub(super) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => std::str::from_utf8(bytes(other)?).ok()?.parse().ok(),
    }
}

pub(super) fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    }
}

fn ts(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// `d` in microseconds, cut to [`MAX_DELAY`]: Redis's now plus this stays
/// below 2^53 µs (exact in a Lua double) until about the year 2155.
pub(super) fn micros(d: Duration) -> i64 {
    // MAX_DELAY is about 3.2e15 µs: it fits.
    d.min(MAX_DELAY).as_micros() as i64
}

const FIELD_NAMES: [&str; col::LEN] = [
    "id",
    "q (queue_name)",
    "t (job_type)",
    "p (payload)",
    "s (status)",
    "pr (priority)",
    "rc (retry_count)",
    "mr (max_retries)",
    "ra (run_at)",
    "ca (created_at)",
    "sa (started_at)",
    "fa (completed_at)",
    "em (error_message)",
    "er (errors)",
    "rd (result_data)",
    "md (metadata)",
    "lb (locked_by)",
    "lu (lease_until)",
    "at (attempt)",
    "lt (lease_token)",
    "ec (error_count)",
    "cx (cancelled_at)",
    "to (timeout)",
    "sn (snoozes)",
    "pg (progress)",
    "uk (unique_key)",
    "lc (limits.concurrency.key)",
    "lcm (limits.concurrency.max)",
    "lr (limits.rate.key)",
    "lrm (limits.rate.max)",
    "lrp (limits.rate.per)",
    "ls (limits.sequence)",
];

/// The column of hash field `field` in a row ([`col`]), for a hash read
/// whole (the claim passes `HGETALL`'s pairs through); `None` for the fields
/// only the scripts read (`x`, `us`, `sq`).
pub(super) fn col_of(field: &[u8]) -> Option<usize> {
    Some(match field {
        b"q" => col::Q,
        b"t" => col::T,
        b"p" => col::P,
        b"s" => col::S,
        b"pr" => col::PR,
        b"rc" => col::RC,
        b"mr" => col::MR,
        b"ra" => col::RA,
        b"ca" => col::CA,
        b"sa" => col::SA,
        b"fa" => col::FA,
        b"em" => col::EM,
        b"er" => col::ER,
        b"rd" => col::RD,
        b"md" => col::MD,
        b"lb" => col::LB,
        b"lu" => col::LU,
        b"at" => col::AT,
        b"lt" => col::LT,
        b"ec" => col::EC,
        b"cx" => col::CX,
        b"to" => col::TO,
        b"sn" => col::SN,
        b"pg" => col::PG,
        b"uk" => col::UK,
        b"lc" => col::LC,
        b"lcm" => col::LCM,
        b"lr" => col::LR,
        b"lrm" => col::LRM,
        b"lrp" => col::LRP,
        b"ls" => col::LS,
        _ => return None,
    })
}

/// A row from a hash's field, value pairs (`HGETALL`'s reply): `id` first,
/// each known field in its column, the others absent.
pub(super) fn row_of_pairs(id: Value, pairs: Vec<Value>) -> Vec<Value> {
    let mut row = vec![Value::Nil; col::LEN];
    row[0] = id;
    let mut pairs = pairs.into_iter();
    while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
        let name: &[u8] = match &field {
            Value::BulkString(b) => b,
            Value::SimpleString(s) => s.as_bytes(),
            _ => continue,
        };
        if let Some(c) = col_of(name) {
            row[c] = value;
        }
    }
    row
}

/// Reads a job row; every problem names the field.
pub(super) fn parse_row(row: &[Value]) -> std::result::Result<Job, CorruptRow> {
    let id_text = row.first().and_then(text).unwrap_or_default();
    let corrupt = |reason: String| CorruptRow {
        id: id_text.clone(),
        reason,
    };
    if row.len() < col::LEN {
        return Err(corrupt(format!(
            "expected {} fields, got {}",
            col::LEN,
            row.len()
        )));
    }
    let missing = |i: usize| corrupt(format!("field `{}` is missing", FIELD_NAMES[i]));
    let bad = |i: usize, why: &dyn std::fmt::Display| {
        corrupt(format!("field `{}` is invalid: {why}", FIELD_NAMES[i]))
    };
    let req_text = |i: usize| text(&row[i]).ok_or_else(|| missing(i));
    let req_int = |i: usize| -> std::result::Result<i64, CorruptRow> {
        let v = &row[i];
        if !matches!(v, Value::Int(_)) && bytes(v).is_none() {
            return Err(missing(i));
        }
        int(v).ok_or_else(|| bad(i, &"not an integer"))
    };
    let opt_int = |i: usize| -> std::result::Result<Option<i64>, CorruptRow> {
        match &row[i] {
            Value::Int(n) => Ok(Some(*n)),
            v if bytes(v).is_none() => Ok(None),
            v => int(v).map(Some).ok_or_else(|| bad(i, &"not an integer")),
        }
    };
    let time = |i: usize, us: i64| ts(us).ok_or_else(|| bad(i, &"timestamp out of range"));
    let opt_time = |i: usize| -> std::result::Result<Option<DateTime<Utc>>, CorruptRow> {
        opt_int(i)?.map(|us| time(i, us)).transpose()
    };
    let u32_of = |i: usize| -> std::result::Result<u32, CorruptRow> {
        u32::try_from(req_int(i)?).map_err(|e| bad(i, &e))
    };
    // Counters a fresh job does not store yet.
    let u32_or_zero = |i: usize| -> std::result::Result<u32, CorruptRow> {
        u32::try_from(opt_int(i)?.unwrap_or(0)).map_err(|e| bad(i, &e))
    };
    let opt_json = |i: usize| -> std::result::Result<Option<serde_json::Value>, CorruptRow> {
        match bytes(&row[i]) {
            None => Ok(None),
            Some(b) => serde_json::from_slice(b)
                .map(Some)
                .map_err(|e| bad(i, &format_args!("not valid JSON: {e}"))),
        }
    };

    let id: JobId = id_text
        .parse()
        .map_err(|e| corrupt(format!("the id is not a UUID: {e}")))?;
    let payload = opt_json(col::P)?.ok_or_else(|| missing(col::P))?;
    let status: JobStatus = req_text(col::S)?.parse().map_err(|e| bad(col::S, &e))?;
    let priority = i32::try_from(req_int(col::PR)?).map_err(|e| bad(col::PR, &e))?;
    let metadata = match opt_json(col::MD)? {
        None => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(bad(col::MD, &"not a JSON object")),
    };
    let mut errors = match bytes(&row[col::ER]) {
        None => Vec::new(),
        Some(b) => {
            let mut buf = Vec::with_capacity(b.len() + 2);
            buf.push(b'[');
            buf.extend_from_slice(b);
            buf.push(b']');
            let stored: Vec<StoredError> =
                serde_json::from_slice(&buf).map_err(|e| bad(col::ER, &e))?;
            stored
                .into_iter()
                .map(|e| {
                    Ok(AttemptError::new(
                        e.a,
                        e.r,
                        time(col::ER, e.t)?,
                        e.m,
                        e.y,
                        e.w,
                    ))
                })
                .collect::<std::result::Result<Vec<_>, CorruptRow>>()?
        }
    };
    let mut job = Job::new(id, req_text(col::T)?, payload);
    job.queue_name = req_text(col::Q)?;
    job.status = status;
    job.priority = priority;
    job.retry_count = u32_or_zero(col::RC)?;
    job.max_retries = u32_of(col::MR)?;
    job.run_at = time(col::RA, req_int(col::RA)?)?;
    job.created_at = time(col::CA, req_int(col::CA)?)?;
    job.started_at = opt_time(col::SA)?;
    job.completed_at = opt_time(col::FA)?;
    job.error_message = text(&row[col::EM]);
    job.result_data = opt_json(col::RD)?;
    job.metadata = metadata;
    job.locked_by = text(&row[col::LB]);
    job.lease_until = opt_time(col::LU)?;
    job.attempt = u32_or_zero(col::AT)?;
    // Fields a job stored by an earlier version lacks: no token, no
    // cancellation, no timeout, and as many errors as its history holds
    // (which that version did not cap: the last ones are kept here).
    job.lease_token = match text(&row[col::LT]) {
        None => None,
        Some(t) => Some(LeaseToken::from_u64(
            u64::from_str_radix(&t, 16).map_err(|e| bad(col::LT, &e))?,
        )),
    };
    job.error_count = match opt_int(col::EC)? {
        Some(n) => u32::try_from(n).map_err(|e| bad(col::EC, &e))?,
        None => u32::try_from(errors.len()).unwrap_or(u32::MAX),
    };
    if errors.len() > MAX_ERROR_HISTORY {
        errors.drain(..errors.len() - MAX_ERROR_HISTORY);
    }
    job.errors = errors;
    job.cancelled_at = opt_time(col::CX)?;
    job.timeout = match text(&row[col::TO]) {
        None => None,
        Some(ms) => Some(Timeout::from_millis(
            ms.parse().map_err(|e| bad(col::TO, &e))?,
        )),
    };
    job.snoozes = u32_or_zero(col::SN)?;
    job.progress = match bytes(&row[col::PG]) {
        None => None,
        Some(b) => Some(serde_json::from_slice(b).map_err(|e| bad(col::PG, &e))?),
    };
    job.unique_key = text(&row[col::UK]);
    let mut limits = JobLimits::none();
    if let Some(key) = text(&row[col::LC]) {
        limits = limits.concurrency(ConcurrencyLimit::new(key, u32_of(col::LCM)?));
    }
    if let Some(key) = text(&row[col::LR]) {
        let per = u64::try_from(req_int(col::LRP)?).map_err(|e| bad(col::LRP, &e))?;
        limits = limits.rate(RateLimit::new(
            key,
            u32_of(col::LRM)?,
            Duration::from_millis(per),
        ));
    }
    if let Some(key) = text(&row[col::LS]) {
        limits = limits.sequence(key);
    }
    job.limits = limits;
    Ok(job)
}

/// A lease token as stored in field `lt` and compared by the scripts: 16 hex
/// digits (a string, since Lua's numbers cannot hold 64 bits).
pub(super) fn token_arg(token: LeaseToken) -> String {
    format!("{:016x}", token.as_u64())
}

/// Values per plain job in `enqueue.lua`'s arguments (a unique one has 4
/// more, one with limits 6 more).
pub(super) const JOB_ARGS: usize = 11;

/// Arguments of one job for `enqueue.lua`: id, queue, type, payload,
/// priority, max_retries, run_at (µs), delay (µs), timeout (ms), metadata
/// (empty for none), then the extras: empty for a plain job, else `u` and/or
/// `l`, followed by the unique key, its period (s), its states (bits) and
/// replace (`1`), then the concurrency key and max, the rate key, max and
/// window (ms), and the sequence key (empty for none). The script resolves a
/// delay and a period's bucket by Redis's clock.
pub(super) fn job_args(job: &NewJob) -> Result<Vec<Vec<u8>>> {
    let payload = serde_json::to_vec(&job.payload).map_err(|e| Error::InvalidPayload {
        job_type: job.job_type.clone(),
        reason: e.to_string(),
    })?;
    let metadata = if job.metadata.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&job.metadata).map_err(|e| {
            Error::InvalidJob(format!("metadata of job {} is not JSON: {e}", job.id))
        })?
    };
    for (what, len) in [("payload", payload.len()), ("metadata", metadata.len())] {
        if len > MAX_VALUE_BYTES {
            return Err(Error::backend_msg(
                BACKEND,
                BackendErrorKind::Data,
                format!(
                    "the {what} of job {} is {len} bytes; Redis takes at most {MAX_VALUE_BYTES} \
                     in one value (`proto-max-bulk-len`)",
                    job.id
                ),
            ));
        }
    }
    let num = |n: Option<i128>| n.map(|n| n.to_string().into_bytes()).unwrap_or_default();
    let opt = |s: Option<String>| s.map(String::into_bytes).unwrap_or_default();
    let mut args = Vec::with_capacity(JOB_ARGS);
    args.extend([
        job.id.to_string().into_bytes(),
        job.queue_name.clone().into_bytes(),
        job.job_type.clone().into_bytes(),
        payload,
        job.priority.to_string().into_bytes(),
        job.max_retries.to_string().into_bytes(),
        num(job.run_at.map(|t| t.timestamp_micros().into())),
        num(job.delay.map(|d| micros(d).into())),
        num(job.timeout.map(|t| t.as_millis().into())),
        metadata,
    ]);
    let l = &job.limits;
    let mut extras = String::new();
    if job.unique.is_some() {
        extras.push('u');
    }
    if !l.is_empty() {
        extras.push('l');
    }
    args.push(extras.into_bytes());
    if let Some(u) = &job.unique {
        args.extend([
            u.key.clone().into_bytes(),
            opt(u.period.map(|p| p.as_secs().max(1).to_string())),
            u.states.bits().to_string().into_bytes(),
            opt(u.replace.then(|| "1".to_owned())),
        ]);
    }
    if !l.is_empty() {
        args.extend([
            opt(l.concurrency.as_ref().map(|c| c.key.clone())),
            opt(l.concurrency.as_ref().map(|c| c.max.to_string())),
            opt(l.rate.as_ref().map(|r| r.key.clone())),
            opt(l.rate.as_ref().map(|r| r.max.to_string())),
            opt(l.rate.as_ref().map(|r| {
                u64::try_from(r.per.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1)
                    .to_string()
            })),
            opt(l.sequence.clone()),
        ]);
    }
    Ok(args)
}

/// What `enqueue.lua` said: how each job of the chunk went (`ids` are the
/// chunk's jobs, in order).
pub(super) fn enqueue_reply(v: &Value, ids: &[JobId]) -> Result<Vec<Enqueued>> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::ServerError(e) => {
            return Err(unexpected(format_args!("enqueue script failed: {e:?}")))
        }
        _ => &[],
    };
    match items.first().and_then(text).as_deref() {
        Some("ok") if items.len() == 1 => {
            Ok(ids.iter().map(|id| Enqueued::Inserted(*id)).collect())
        }
        Some("ok") if items.len() == ids.len() + 1 => ids
            .iter()
            .zip(&items[1..])
            .map(|(id, item)| {
                let t = text(item).unwrap_or_default();
                let holder = |s: &str| {
                    s.parse::<JobId>().map_err(|_| {
                        unexpected(format_args!("the enqueue script named no holder: {t:?}"))
                    })
                };
                match t.split_at_checked(1) {
                    None => Ok(Enqueued::Inserted(*id)),
                    Some(("d", h)) => Ok(Enqueued::Duplicate(holder(h)?)),
                    Some(("r", h)) => Ok(Enqueued::Replaced(holder(h)?)),
                    _ => Err(unexpected(format_args!(
                        "unexpected item from the enqueue script: {t:?}"
                    ))),
                }
            })
            .collect(),
        Some("dup") => match items.get(1).and_then(text).and_then(|id| id.parse().ok()) {
            Some(id) => Err(Error::DuplicateId(id)),
            None => Err(unexpected(format_args!(
                "the enqueue script found a duplicate id it did not name: {v:?}"
            ))),
        },
        // An earlier chunk found the duplicate; its own reply names it.
        Some("aborted") => Err(Error::backend_msg(
            BACKEND,
            BackendErrorKind::Conflict,
            "a job of the batch already exists; nothing was stored",
        )),
        _ => Err(unexpected(format_args!(
            "unexpected reply from the enqueue script: {v:?}"
        ))),
    }
}

pub(super) fn ids_of(v: Value) -> Vec<JobId> {
    array(v)
        .iter()
        .filter_map(|v| text(v)?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_column_by_name() {
        for (c, name) in FIELD_NAMES.iter().enumerate().skip(1) {
            let field = name.split(' ').next().expect("a name");
            assert_eq!(col_of(field.as_bytes()), Some(c), "{name}");
        }
        for other in ["x", "us", "sq", "l", "", "q (queue_name)"] {
            assert_eq!(col_of(other.as_bytes()), None, "{other}");
        }
        let row = row_of_pairs(
            bulk("id1"),
            vec![
                bulk("q"),
                bulk("default"),
                bulk("x"),
                bulk("1"),
                bulk("lcm"),
                bulk("3"),
            ],
        );
        assert_eq!(row.len(), col::LEN);
        assert_eq!(row[0], bulk("id1"));
        assert_eq!(row[col::Q], bulk("default"));
        assert_eq!(row[col::LCM], bulk("3"));
        assert_eq!(row[col::LC], Value::Nil);
    }

    #[test]
    fn a_row_with_a_missing_field_names_it() {
        let id = JobId::new();
        let mut row = vec![Value::BulkString(id.to_string().into_bytes())];
        row.resize(col::LEN, Value::Nil);
        let err = parse_row(&row).unwrap_err();
        assert_eq!(err.id, id.to_string());
        assert!(err.reason.contains("payload"), "{}", err.reason);
    }

    fn bulk(s: impl Into<String>) -> Value {
        Value::BulkString(s.into().into_bytes())
    }

    /// A row as the previous version stored it: no `lt`, `ec`, `cx`, `to`,
    /// and an error history it did not cap.
    fn legacy_row(errors: usize) -> Vec<Value> {
        let mut row = vec![Value::Nil; col::LEN];
        row[0] = bulk(JobId::new().to_string());
        row[col::Q] = bulk("default");
        row[col::T] = bulk("t");
        row[col::P] = bulk("{}");
        row[col::S] = bulk("RUNNING");
        row[col::PR] = bulk("0");
        row[col::MR] = bulk("100");
        row[col::RA] = bulk("1700000000000000");
        row[col::CA] = bulk("1700000000000000");
        row[col::AT] = bulk((errors + 1).to_string());
        if errors > 0 {
            let er: Vec<String> = (1..=errors)
                .map(|a| {
                    format!(
                        r#"{{"a":{a},"r":{},"t":1700000000000000,"m":"e{a}","y":true}}"#,
                        a - 1
                    )
                })
                .collect();
            row[col::ER] = bulk(er.join(","));
        }
        row
    }

    #[test]
    fn a_job_stored_before_the_new_fields_reads_back_with_their_defaults() {
        let job = parse_row(&legacy_row(0)).unwrap();
        assert_eq!(job.lease_token, None);
        assert_eq!(job.error_count, 0);
        assert_eq!(job.cancelled_at, None);
        assert_eq!(job.timeout, None);
        assert_eq!(job.snoozes, 0);
        assert_eq!(job.progress, None);
        assert_eq!(job.unique_key, None);
        assert!(job.limits.is_empty());

        // Its error count is the length of its history, of which the last
        // MAX_ERROR_HISTORY entries are kept.
        let job = parse_row(&legacy_row(3)).unwrap();
        assert_eq!((job.error_count, job.errors.len()), (3, 3));
        let job = parse_row(&legacy_row(MAX_ERROR_HISTORY + 7)).unwrap();
        assert_eq!(job.error_count, MAX_ERROR_HISTORY as u32 + 7);
        assert_eq!(job.errors.len(), MAX_ERROR_HISTORY);
        assert_eq!(job.errors[0].attempt, 8);
    }

    #[test]
    fn the_new_fields_read_back() {
        let mut row = legacy_row(1);
        row[col::LT] = bulk("8000000000000001");
        row[col::EC] = bulk("41");
        row[col::CX] = bulk("1700000000000001");
        row[col::TO] = bulk(u64::MAX.to_string());
        let job = parse_row(&row).unwrap();
        assert_eq!(job.lease_token, Some(LeaseToken::from_u64((1 << 63) | 1)));
        assert_eq!(job.error_count, 41);
        assert_eq!(
            job.cancelled_at.unwrap().timestamp_micros(),
            1_700_000_000_000_001
        );
        assert_eq!(
            job.timeout,
            Some(Timeout::After(Duration::from_millis(u64::MAX)))
        );
        row[col::TO] = bulk("0");
        assert_eq!(parse_row(&row).unwrap().timeout, Some(Timeout::Never));
        let token = LeaseToken::random();
        row[col::LT] = bulk(token_arg(token));
        assert_eq!(parse_row(&row).unwrap().lease_token, Some(token));
        assert_eq!(token_arg(LeaseToken::from_u64(1)), "0000000000000001");
        row[col::SN] = bulk("3");
        row[col::PG] = bulk(r#"{"percent":50.0,"at":"2026-01-01T00:00:00Z"}"#);
        row[col::UK] = bulk("k:42");
        row[col::LC] = bulk("acct-1");
        row[col::LCM] = bulk("2");
        row[col::LR] = bulk("tenant");
        row[col::LRM] = bulk("10");
        row[col::LRP] = bulk("60000");
        row[col::LS] = bulk("seq");
        let job = parse_row(&row).unwrap();
        assert_eq!(job.snoozes, 3);
        assert_eq!(job.progress.unwrap().percent, Some(50.0));
        assert_eq!(job.unique_key.as_deref(), Some("k:42"));
        assert_eq!(
            job.limits,
            jobs_core::JobLimits::none()
                .concurrency(ConcurrencyLimit::new("acct-1", 2))
                .rate(RateLimit::new("tenant", 10, Duration::from_secs(60)))
                .sequence("seq")
        );
        row[col::LCM] = Value::Nil;
        let err = parse_row(&row).unwrap_err();
        assert!(
            err.reason.contains("limits.concurrency.max"),
            "{}",
            err.reason
        );
        row[col::LCM] = bulk("2");
        row[col::LT] = bulk("not hex");
        let err = parse_row(&row).unwrap_err();
        assert!(err.reason.contains("lease_token"), "{}", err.reason);
    }

    /// Scores and times are microseconds in Lua doubles: exact below 2^53.
    /// The largest delay, added to Redis's now, stays below that for well
    /// over a century, and the integer formatting path (`%d`, below 9e15)
    /// of `n2s` and `member` in common.lua covers it.
    #[test]
    fn saturated_delays_stay_exact_in_a_double() {
        assert_eq!(micros(Duration::MAX), MAX_DELAY.as_micros() as i64);
        let year_2150 = chrono::NaiveDate::from_ymd_opt(2150, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        let latest = year_2150 + micros(Duration::MAX);
        assert!(latest < 1 << 53, "{latest}");
        assert!((latest as f64) < 9e15);
        assert_eq!(latest as f64 as i64, latest);
    }

    #[test]
    fn lua_logs_a_queue_rate_under_the_core_key() {
        assert_eq!(jobs_core::queue_rate_key("q"), "queue:q");
        assert!(include_str!("claim.lua").contains("local q_rate_key = 'queue:' .. q\n"));
    }

    #[test]
    fn lua_keeps_as_many_errors_as_the_core_says() {
        let common = include_str!("common.lua");
        assert!(
            common.contains(&format!("local MAX_ERRORS = {MAX_ERROR_HISTORY}\n")),
            "common.lua's MAX_ERRORS must equal jobs_core::MAX_ERROR_HISTORY"
        );
    }
}
