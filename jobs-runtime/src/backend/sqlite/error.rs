//! Mapping the driver's errors to the framework's, with their kind.

use jobs_core::{BackendErrorKind, Error};

pub(super) const BACKEND: &str = "sqlite";

/// The kind of a driver error, by SQLite's primary result code.
pub(super) fn kind_of(e: &sqlx::Error) -> BackendErrorKind {
    use BackendErrorKind::*;
    match e {
        sqlx::Error::Database(db) => {
            kind_of_code(db.code().and_then(|c| c.parse().ok()).unwrap_or(0))
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Unavailable,
        sqlx::Error::WorkerCrashed => Unavailable,
        sqlx::Error::Encode(_) => Data,
        _ => Other,
    }
}

/// The kind of an SQLite (extended) result code, by its primary code.
pub(super) fn kind_of_code(code: i64) -> BackendErrorKind {
    use BackendErrorKind::*;
    match code & 0xff {
        // BUSY, LOCKED: another writer holds the database.
        5 | 6 => Transient,
        // NOMEM, IOERR, CANTOPEN, FULL (the disk): the database is out of reach.
        7 | 10 | 13 | 14 => Unavailable,
        // CONSTRAINT.
        19 => Conflict,
        // TOOBIG, MISMATCH, RANGE: the value cannot be stored.
        18 | 20 | 25 => Data,
        _ => Other,
    }
}

/// The framework's error for a driver error.
pub(super) fn db_err(e: sqlx::Error) -> Error {
    let kind = kind_of(&e);
    Error::backend(BACKEND, kind, e)
}

/// A backend error described by a message alone.
pub(super) fn backend_msg(kind: BackendErrorKind, message: impl Into<String>) -> Error {
    Error::backend_msg(BACKEND, kind, message)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A driver error carrying an SQLite (extended) result code.
    #[derive(Debug)]
    struct Code(&'static str);

    impl std::fmt::Display for Code {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "sqlite error {}", self.0)
        }
    }

    impl std::error::Error for Code {}

    impl sqlx::error::DatabaseError for Code {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    /// A value SQLite refuses (too big, a type mismatch, out of range) is
    /// `Data`, so the runtime isolates the outcome carrying it; a busy
    /// database is worth retrying.
    #[test]
    fn refused_values_are_data_errors() {
        let kind = |code| kind_of(&sqlx::Error::Database(Box::new(Code(code))));
        for (code, want) in [
            ("18", BackendErrorKind::Data),        // TOOBIG
            ("20", BackendErrorKind::Data),        // MISMATCH
            ("25", BackendErrorKind::Data),        // RANGE
            ("5", BackendErrorKind::Transient),    // BUSY
            ("517", BackendErrorKind::Transient),  // BUSY_SNAPSHOT
            ("13", BackendErrorKind::Unavailable), // FULL
            ("2067", BackendErrorKind::Conflict),  // CONSTRAINT_UNIQUE
            ("1", BackendErrorKind::Other),
        ] {
            assert_eq!(kind(code), want, "code {code}");
        }
        assert_eq!(
            kind_of(&sqlx::Error::Encode("too long".into())),
            BackendErrorKind::Data
        );
        assert_eq!(
            db_err(sqlx::Error::Database(Box::new(Code("18"))))
                .as_backend()
                .map(|e| e.kind()),
            Some(BackendErrorKind::Data)
        );
    }
}
