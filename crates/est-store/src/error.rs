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
pub(crate) fn backend_error(error: sqlx::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// For inserts into `certificates`: the only unique key there is the serial.
pub(crate) fn certificate_insert_error(error: sqlx::Error) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::DuplicateSerial
    } else {
        backend_error(error)
    }
}
