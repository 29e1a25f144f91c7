//! Mapping sqlx errors onto [`StoreError`], by database error code rather than message text.

use est_ca::StoreError;
use sqlx::error::ErrorKind;

/// Whether the database refused a row because a unique or primary key already holds its key.
/// SQLite reports `SQLITE_CONSTRAINT_PRIMARYKEY`/`_UNIQUE`, PostgreSQL SQLSTATE 23505; sqlx
/// folds both into [`ErrorKind::UniqueViolation`], so no message matching is needed.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation)
}

/// Any other failure. sqlx messages name the failing operation and the database's own message;
/// they never carry bound values, so no password hash can leak through here.
///
/// Failures to reach the database at all (no connection within the acquire timeout, a socket
/// error, a connection the server closed) are [`StoreError::Unavailable`]: an outage, which the
/// writer fails fast on and the server answers with 503 + `Retry-After`.
pub(crate) fn backend_error(error: sqlx::Error) -> StoreError {
    if is_unreachable(&error) {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Backend(error.to_string())
    }
}

/// Whether `error` means the database could not be reached or the connection broke.
pub(crate) fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL shutting down or restarting (SQLSTATE class 57P: admin_shutdown,
        // crash_shutdown, cannot_connect_now) and connection exceptions (class 08).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}

/// For inserts into `certificates`: the only unique key there is the serial.
pub(crate) fn certificate_insert_error(error: sqlx::Error) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::DuplicateSerial
    } else {
        backend_error(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_databases_are_outages_not_refusals() {
        assert!(backend_error(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(backend_error(sqlx::Error::PoolClosed).is_unavailable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(backend_error(sqlx::Error::Io(io)).is_unavailable());
        assert!(!backend_error(sqlx::Error::RowNotFound).is_unavailable());
        assert!(matches!(
            certificate_insert_error(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
    }
}
