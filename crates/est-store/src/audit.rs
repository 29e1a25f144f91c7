//! The hash-chained audit trail (issue 11, item 4; table `audit_log`, migration 0007).
//!
//! A record's hash covers the previous record's hash (see `est_ca::AuditRecord`), so appending
//! means: read the head, compute, insert, with nobody else appending in between. Every append
//! runs in a write transaction that holds the database's serialization first: on SQLite the
//! write lock (`BEGIN IMMEDIATE`, or a write statement before the head is read), on PostgreSQL
//! a transaction-scoped advisory lock ([`LOCK_KEY`], [`lock_chain`]) taken as the
//! transaction's first statement and released by the commit, so nodes sharing the database
//! build one linear chain. Taken first, before any row lock, so that no two transactions wait
//! for each other (a replayed CMC pair inserted on two nodes at once would otherwise be a
//! deadlock for PostgreSQL to break). The primary
//! key on `seq` is the last guard: two appenders that somehow read the same head cannot both
//! commit.
//!
//! Certificates carry their `cert.issue` record into the group-commit writer (see `writer`),
//! which appends it in the same transaction as the certificate: an issued certificate is never
//! without its audit record, and the records share the commit's fsync.

use est_ca::{AuditEvent, AuditRecord, StoreError};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use crate::Backend;
use crate::error::backend_error;

/// The PostgreSQL advisory lock appenders hold from reading the head to their commit
/// (`pg_advisory_xact_lock`): "ESTAUDIT" in ASCII.
pub(crate) const LOCK_KEY: i64 = 0x4553_5441_5544_4954;

pub(crate) const LOCK_POSTGRES: &str = "SELECT pg_advisory_xact_lock($1)";

/// The head: sequence number and hash of the newest record.
pub(crate) const HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// SQLite: the head as the last statement of the first round trip of an audited commit (see
/// `sql::claiming_commit_sqlite_sql`). Three columns, so its row is told apart from the
/// certificates' (one) and the replay records' (two).
pub(crate) const HEAD_SQLITE_TAIL: &str =
    " SELECT seq, hash, 0 FROM audit_log ORDER BY seq DESC LIMIT 1;";

macro_rules! audit_columns {
    () => {
        "seq, prev_hash, hash, at, actor, source, action, target, label, details"
    };
}

const COLUMNS: usize = 10;

pub(crate) const LIST: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
);

pub(crate) const LAST: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log ORDER BY seq DESC LIMIT 1"
);

/// `INSERT INTO audit_log ... VALUES ...` for `rows` records, followed by `tail`.
pub(crate) fn insert_sql(rows: usize, backend: Backend, tail: &str) -> String {
    let mut sql = String::with_capacity(96 + rows * 32 + tail.len());
    sql.push_str(concat!(
        "INSERT INTO audit_log (",
        audit_columns!(),
        ") VALUES "
    ));
    crate::sql::push_value_rows(&mut sql, rows, COLUMNS, backend);
    sql.push_str(tail);
    sql
}

/// The INSERT of `records` (then `tail`, e.g. `; COMMIT;` on SQLite), values bound.
pub(crate) fn insert<'q>(
    records: &'q [AuditRecord],
    backend: Backend,
    tail: &str,
) -> Result<Query<'q, Any, AnyArguments>, StoreError> {
    let sql = insert_sql(records.len(), backend, tail);
    // The text holds only our own column names and placeholders; values are bound.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for r in records {
        query = query
            .bind(seq_to_db(r.seq)?)
            .bind(r.prev_hash.as_str())
            .bind(r.hash.as_str())
            .bind(r.event.time)
            .bind(r.event.actor.as_str())
            .bind(r.event.source.as_str())
            .bind(r.event.action.as_str())
            .bind(r.event.target.as_str())
            .bind(r.event.label.as_str())
            .bind(r.event.details.as_str());
    }
    Ok(query)
}

fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Backend(format!("audit sequence {seq} too large")))
}

fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Backend(format!("negative audit sequence {seq}")))
}

/// The head from a `HEAD` (or `HEAD_SQLITE_TAIL`) row.
pub(crate) fn head_from_row(row: &AnyRow) -> Result<(u64, String), StoreError> {
    let seq: i64 = row.try_get(0).map_err(backend_error)?;
    let hash: String = row.try_get(1).map_err(backend_error)?;
    Ok((seq_from_db(seq)?, hash))
}

pub(crate) fn record_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let get =
        |name: &str| -> Result<String, StoreError> { row.try_get(name).map_err(backend_error) };
    let seq: i64 = row.try_get("seq").map_err(backend_error)?;
    Ok(AuditRecord {
        seq: seq_from_db(seq)?,
        prev_hash: get("prev_hash")?,
        hash: get("hash")?,
        event: AuditEvent {
            time: row.try_get("at").map_err(backend_error)?,
            actor: get("actor")?,
            source: get("source")?,
            action: get("action")?,
            target: get("target")?,
            label: get("label")?,
            details: get("details")?,
        },
    })
}

/// The records for `events`, chained after `head`.
pub(crate) fn chain(
    head: Option<(u64, String)>,
    events: impl IntoIterator<Item = AuditEvent>,
) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::new();
    for event in events {
        let prev = match out.last() {
            Some(r) => Some((r.seq, r.hash.as_str())),
            None => head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        };
        let record = AuditRecord::chain(prev, event);
        out.push(record);
    }
    out
}

/// PostgreSQL: takes the chain's advisory lock for the rest of the open transaction on
/// `conn`; call it first in every transaction that may append. SQLite: nothing (its write lock
/// serializes appenders).
pub(crate) async fn lock_chain(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query(LOCK_POSTGRES)
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}

/// Inside an open write transaction on `conn` that holds the chain's serialization (see
/// [`lock_chain`]; on SQLite a write made earlier in it, or `BEGIN IMMEDIATE`): reads the head
/// and appends `events`. Nothing is committed here.
pub(crate) async fn append_in(
    conn: &mut AnyConnection,
    backend: Backend,
    events: Vec<AuditEvent>,
) -> Result<Vec<AuditRecord>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let head = sqlx::query(HEAD)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend_error)?
        .as_ref()
        .map(head_from_row)
        .transpose()?;
    let records = chain(head, events);
    for chunk in records.chunks(crate::sql::ROWS_PER_STATEMENT) {
        insert(chunk, backend, "")?
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_one_placeholder_per_column() {
        assert_eq!(
            insert_sql(2, Backend::Sqlite, "; COMMIT;"),
            "INSERT INTO audit_log (seq, prev_hash, hash, at, actor, source, action, target, label, details) \
             VALUES (?,?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?,?); COMMIT;"
        );
        let pg = insert_sql(2, Backend::Postgres, "");
        assert!(
            pg.ends_with("$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)"),
            "{pg}"
        );
    }

    #[test]
    fn chain_continues_from_the_head() {
        let first = chain(None, [AuditEvent::new(1, "a", "b", "c")]);
        assert_eq!(first[0].seq, 1);
        let next = chain(
            Some((first[0].seq, first[0].hash.clone())),
            [
                AuditEvent::new(2, "a", "b", "c"),
                AuditEvent::new(3, "a", "b", "c"),
            ],
        );
        assert_eq!(next[0].prev_hash, first[0].hash);
        assert_eq!(next[1].prev_hash, next[0].hash);
        let all: Vec<_> = first.iter().chain(&next).collect();
        assert_eq!(est_ca::verify_chain(all).unwrap().0, 3);
    }
}
