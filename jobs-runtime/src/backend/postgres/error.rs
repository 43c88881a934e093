//! Mapping the driver's errors to the framework's, with their kind.

use jobs_core::{BackendErrorKind, Error, JobId};
use sqlx::postgres::PgDatabaseError;

pub(super) const BACKEND: &str = "postgres";

/// The kind of a driver error: is the database away, did it refuse this
/// time only, or will it refuse the same call again?
pub(super) fn kind_of(e: &sqlx::Error) -> BackendErrorKind {
    use BackendErrorKind::*;
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref().unwrap_or("") {
            // serialization_failure, deadlock_detected, lock_not_available,
            // query_canceled (statement_timeout), insufficient resources.
            "40001" | "40P01" | "55P03" | "57014" => Transient,
            c if c.starts_with("53") => Transient,
            // admin_shutdown, crash_shutdown, cannot_connect_now, connection exceptions.
            "57P01" | "57P02" | "57P03" => Unavailable,
            c if c.starts_with("08") => Unavailable,
            // unique_violation and other integrity constraints.
            c if c.starts_with("23") => Conflict,
            // data exceptions (a NUL in text or jsonb is 22P05), program
            // limits (a value too large), invalid text representation.
            c if c.starts_with("22") || c.starts_with("54") => Data,
            _ => Other,
        },
        // A value too large for the wire protocol, found while encoding.
        sqlx::Error::Protocol(m) if m.starts_with("message size out of range") => Data,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Unavailable,
        sqlx::Error::Encode(_) => Data,
        _ => Other,
    }
}

/// The framework's error for a driver error.
pub(super) fn db_err(e: sqlx::Error) -> Error {
    let kind = kind_of(&e);
    Error::backend(BACKEND, kind, e)
}

/// [`db_err`] for an enqueue: a unique violation on the primary key is a
/// [`Error::DuplicateId`] naming the id.
pub(super) fn enqueue_err(e: sqlx::Error) -> Error {
    if let Some(id) = duplicate_id(&e) {
        return Error::DuplicateId(id);
    }
    db_err(e)
}

fn duplicate_id(e: &sqlx::Error) -> Option<JobId> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    // "Key (id)=(0193...) already exists."
    let detail = db.try_downcast_ref::<PgDatabaseError>()?.detail()?;
    let rest = detail.strip_prefix("Key (id)=(")?;
    rest.split(')').next()?.parse().ok()
}

/// A backend error that the database is out of reach.
pub(super) fn unavailable(message: impl Into<String>) -> Error {
    Error::backend_msg(BACKEND, BackendErrorKind::Unavailable, message)
}

/// A job stored in a form this version cannot read.
pub(super) fn corrupt(id: impl ToString, reason: impl ToString) -> Error {
    Error::Corrupt {
        backend: BACKEND,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}
