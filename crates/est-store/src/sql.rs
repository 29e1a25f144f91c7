//! The SQL text and the mapping between rows and records, shared by both backends.
//!
//! Placeholders are written `$1, $2, ...`: PostgreSQL requires that form, and SQLite accepts it
//! (sqlx binds `$N` to the N-th argument), so one string serves both through the Any driver.
//! The one exception is the multi-row INSERT, see [`insert_certificates_sql`].

use est_ca::{
    CertRecord, CertStatus, ClientKeyKind, ClientKeyRecord, CmcSecretRecord, ReplayPair,
    StoreError, UserRecord,
};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};

use crate::Backend;
use crate::error::backend_error;

macro_rules! cert_columns {
    () => {
        "serial, ca, subject, issuer, ski, spki_sha256, requester, \
         not_before, not_after, issued_at, status, der, \
         revoked_at, revocation_reason, invalidity_date, label"
    };
}

/// Columns bound per certificate row in an INSERT.
const CERT_COLUMN_COUNT: usize = 16;

/// Rows per multi-row INSERT statement: 1,000 x 16 = 16,000 parameters (18,000 with claimed
/// replay pairs), under SQLite's 32,766
/// and PostgreSQL's 65,535 limits, and large enough that per-statement costs vanish.
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

pub(crate) const SELECT_BY_SERIAL: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE serial = $1"
);

/// Newest first, like listings, read from the (ski, issued_at) index.
pub(crate) const SELECT_BY_SKI: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE ski = $1 ORDER BY issued_at DESC, serial DESC"
);

pub(crate) const SELECT_COUNT: &str = "SELECT certificate_count FROM store_meta WHERE id = 1";

/// Un-revokes (`set_certificate_status(Valid)`): the revocation details go with the status.
pub(crate) const UPDATE_STATUS_VALID: &str = "UPDATE certificates SET status = 'valid', \
     revoked_at = 0, revocation_reason = 0, invalidity_date = 0 WHERE serial = $1";

/// Valid → revoked in one conditional statement: of concurrent revocations exactly one sees a
/// row affected, and an already revoked certificate keeps its first details.
pub(crate) const REVOKE: &str = "UPDATE certificates SET status = 'revoked', revoked_at = $1, \
     revocation_reason = $2, invalidity_date = $3 WHERE serial = $4 AND status = 'valid'";

/// From the partial index `certificates_revoked` (migration 0006), which covers every column
/// read; the `status = 'revoked'` literal is what lets SQLite use a partial index.
pub(crate) const SELECT_REVOKED: &str = "SELECT serial, revoked_at, revocation_reason, \
     invalidity_date FROM certificates WHERE ca = $1 AND status = 'revoked' \
     ORDER BY revoked_at, serial";

/// Counted on the same partial index: index-only, over the CA's revoked certificates.
pub(crate) const SELECT_REVOCATION_STATE: &str = "SELECT COUNT(*) AS revoked, \
     COALESCE(MAX(revoked_at), 0) AS latest FROM certificates \
     WHERE ca = $1 AND status = 'revoked'";

/// One atomic upsert: the first CRL of a CA is number 1, each later one the previous plus one.
pub(crate) const NEXT_CRL_NUMBER: &str = "INSERT INTO crl_state (ca, crl_number) VALUES ($1, 1) \
     ON CONFLICT (ca) DO UPDATE SET crl_number = crl_state.crl_number + 1 RETURNING crl_number";

pub(crate) const INSERT_USER: &str = "INSERT INTO users (name, password_hash, allowed_names, created_at, digest_secrets) \
     VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_USER: &str = "SELECT name, password_hash, allowed_names, created_at, digest_secrets \
     FROM users WHERE name = $1";
pub(crate) const SELECT_USERS: &str = "SELECT name, password_hash, allowed_names, created_at, digest_secrets \
     FROM users ORDER BY name";
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE name = $1";

pub(crate) const INSERT_CLIENT_KEY: &str = "INSERT INTO client_keys (owner, kind, key_id, sealed, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_CLIENT_KEY: &str = "SELECT owner, kind, key_id, sealed, created_at FROM client_keys \
     WHERE owner = $1 AND kind = $2 AND key_id = $3";
pub(crate) const SELECT_CLIENT_KEYS: &str = "SELECT owner, kind, key_id, sealed, created_at FROM client_keys \
     ORDER BY owner, kind, key_id";
pub(crate) const SELECT_CLIENT_KEYS_OF: &str = "SELECT owner, kind, key_id, sealed, created_at FROM client_keys \
     WHERE owner = $1 ORDER BY owner, kind, key_id";
pub(crate) const DELETE_CLIENT_KEY: &str =
    "DELETE FROM client_keys WHERE owner = $1 AND kind = $2 AND key_id = $3";
pub(crate) const INSERT_TOKEN: &str = "INSERT INTO enrollment_tokens \
     (id, label, secret_sha256, subject, created_at, expires_at, used_at, used_by) \
     VALUES ($1, $2, $3, $4, $5, $6, NULL, '')";
pub(crate) const SELECT_TOKEN: &str = "SELECT id, label, secret_sha256, subject, created_at, \
     expires_at, used_at, used_by FROM enrollment_tokens WHERE id = $1";
pub(crate) const SELECT_TOKENS: &str = "SELECT id, label, secret_sha256, subject, created_at, \
     expires_at, used_at, used_by FROM enrollment_tokens ORDER BY created_at DESC, id";
/// Revocation: like a use, so the single-use condition keeps a revoked token out.
pub(crate) const REVOKE_TOKEN: &str = "UPDATE enrollment_tokens SET used_at = $1, used_by = $2 \
     WHERE id = $3 AND used_at IS NULL";
/// The single-use guarantee: only an unused, unexpired token is updated, and the database
/// applies the condition and the change as one step, so exactly one concurrent caller sees a
/// row affected.
pub(crate) const CONSUME_TOKEN: &str = "UPDATE enrollment_tokens SET used_at = $1, used_by = $2 \
     WHERE id = $3 AND used_at IS NULL AND expires_at > $1";

/// What a multi-row INSERT does when a serial is already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDuplicate {
    /// Skip the row and report which rows went in (`RETURNING serial`): the group-commit writer
    /// uses this so one caller's colliding serial neither aborts nor delays the others.
    Skip,
    /// Fail with a unique violation and roll the whole transaction back: bulk loads want
    /// all-or-error per transaction.
    Fail,
}

/// `(?,?,...),(...)` (SQLite) or `($1,$2,...),(...)` (PostgreSQL): the placeholders of a
/// multi-row VALUES list of `rows` rows of `columns` columns (anonymous on SQLite: see
/// [`insert_certificates_sql`]).
pub(crate) fn push_value_rows(sql: &mut String, rows: usize, columns: usize, backend: Backend) {
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
}

/// `INSERT INTO certificates ... VALUES (...), (...)` for `rows` rows.
///
/// On SQLite the placeholders are anonymous `?`: sqlx binds a `$N` parameter by asking SQLite
/// for its name, a linear search, so a 12,000-parameter statement spent seconds binding (it
/// made bulk loads 20x slower). Anonymous parameters have no name to look up.
pub(crate) fn insert_certificates_sql(
    rows: usize,
    on_duplicate: OnDuplicate,
    backend: Backend,
) -> String {
    let mut sql = String::with_capacity(96 + rows * 64);
    sql.push_str(match (backend, on_duplicate) {
        // A failing bulk statement fails its whole transaction anyway; saying so up front
        // spares SQLite the statement journal (the page copies kept to undo one statement),
        // a third of the CPU time of a bulk load.
        (Backend::Sqlite, OnDuplicate::Fail) => "INSERT OR ROLLBACK",
        _ => "INSERT",
    });
    sql.push_str(concat!(
        " INTO certificates (",
        cert_columns!(),
        ") VALUES "
    ));
    push_value_rows(&mut sql, rows, CERT_COLUMN_COUNT, backend);
    if on_duplicate == OnDuplicate::Skip {
        sql.push_str(" ON CONFLICT (serial) DO NOTHING RETURNING serial");
    }
    sql
}

/// SQLite: certificates and replay records of one group commit in one statement list, sent to
/// the database in one round trip: `BEGIN IMMEDIATE`, the certificates whose claimed pair
/// (columns 17 and 18; NULL for none) is not yet recorded, the pairs, `COMMIT`. The writer
/// holds SQLite's write lock from the first statement on, so no pair can appear in between;
/// the pairs' `RETURNING` then says which were new. Rows: `serial` (one column) for each
/// certificate inserted, `transaction_id, sender_nonce` (two) for each new pair.
/// (`BEGIN`/`COMMIT` and two INSERTs through sqlx's transaction API are four round trips to
/// SQLite's worker thread, each a thread hand-off on a busy machine: docs/performance.md.)
///
/// `tail` ends the list: `" COMMIT;"`, or for an audited commit the head of the audit trail
/// (see `audit::HEAD_SQLITE_TAIL`), read under the same write lock, the transaction left open
/// for the audit records.
pub(crate) fn claiming_commit_sqlite_sql(certificates: usize, pairs: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(256 + certificates * 48 + pairs * 8);
    sql.push_str("BEGIN IMMEDIATE;");
    if certificates > 0 {
        sql.push_str(concat!(
            " INSERT INTO certificates (",
            cert_columns!(),
            ") SELECT "
        ));
        for column in 1..=CERT_COLUMN_COUNT {
            if column > 1 {
                sql.push(',');
            }
            sql.push_str("column");
            sql.push_str(&column.to_string());
        }
        sql.push_str(" FROM (VALUES ");
        for row in 0..certificates {
            if row > 0 {
                sql.push(',');
            }
            sql.push('(');
            for column in 0..CERT_COLUMN_COUNT + 2 {
                if column > 0 {
                    sql.push(',');
                }
                sql.push('?');
            }
            sql.push(')');
        }
        // The WHERE also settles SQLite's INSERT ... SELECT ... ON CONFLICT parsing ambiguity.
        sql.push_str(&format!(
            ") WHERE NOT EXISTS (SELECT 1 FROM cmc_nonces n WHERE n.transaction_id = column{} \
             AND n.sender_nonce = column{}) ON CONFLICT (serial) DO NOTHING RETURNING serial;",
            CERT_COLUMN_COUNT + 1,
            CERT_COLUMN_COUNT + 2
        ));
    }
    if pairs > 0 {
        sql.push(' ');
        sql.push_str(&crate::nonces::insert_sql(pairs, Backend::Sqlite));
        sql.push(';');
    }
    sql.push_str(tail);
    sql
}

/// The INSERT for `records`, with every row's values bound in column order.
pub(crate) fn insert_certificates<'q>(
    records: &[&'q CertRecord],
    on_duplicate: OnDuplicate,
    backend: Backend,
) -> Query<'q, Any, AnyArguments> {
    let sql = insert_certificates_sql(records.len(), on_duplicate, backend);
    // The text holds only our own column names and placeholders; values are bound.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for record in records {
        query = bind_record(query, record);
    }
    query
}

/// Binds the values of `record` in column order (`cert_columns!`).
fn bind_record<'q>(
    query: Query<'q, Any, AnyArguments>,
    record: &'q CertRecord,
) -> Query<'q, Any, AnyArguments> {
    query
        .bind(record.serial.as_str())
        .bind(record.ca.as_str())
        .bind(record.subject.as_str())
        .bind(record.issuer.as_str())
        .bind(record.ski.as_str())
        .bind(record.spki_sha256.as_str())
        .bind(record.requester.as_str())
        .bind(record.not_before)
        .bind(record.not_after)
        .bind(record.issued_at)
        .bind(record.status.as_str())
        .bind(record.der.as_slice())
        .bind(record.revocation.map_or(0, |r| r.revoked_at))
        .bind(record.revocation.map_or(0, |r| i64::from(r.reason)))
        .bind(
            record
                .revocation
                .and_then(|r| r.invalidity_date)
                .unwrap_or(0),
        )
        .bind(record.label.as_str())
}

/// The statement list of [`claiming_commit_sqlite_sql`] with its values bound: each
/// certificate with the pair it claims (or NULLs), then the pairs.
pub(crate) fn claiming_commit_sqlite<'q>(
    certificates: &[(&'q CertRecord, Option<&'q ReplayPair>)],
    pairs: &[&'q ReplayPair],
    tail: &str,
) -> Query<'q, Any, AnyArguments> {
    let sql = claiming_commit_sqlite_sql(certificates.len(), pairs.len(), tail);
    // The text holds only our own column names and placeholders; values are bound.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (record, claim) in certificates {
        query = bind_record(query, record)
            .bind(claim.map(|p| p.transaction_id.as_str()))
            .bind(claim.map(|p| p.sender_nonce.as_slice()));
    }
    for pair in pairs {
        query = query
            .bind(pair.transaction_id.as_str())
            .bind(pair.sender_nonce.as_slice())
            .bind(pair.seen_at);
    }
    query
}

/// A value bound into a dynamically built query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text plus the values for its `$N` placeholders, in order.
#[derive(Debug, Clone)]
pub(crate) struct DynamicQuery {
    pub(crate) sql: String,
    pub(crate) args: Vec<Arg>,
}

impl DynamicQuery {
    /// `prefix` goes before the SQL text (`EXPLAIN ...` in the plan tests).
    pub(crate) fn into_query(self, prefix: &str) -> Query<'static, Any, AnyArguments> {
        // The text is built from literals only (column names, operators, `$N`); every value
        // that came from a caller is bound, never spliced.
        let mut query = sqlx::query(AssertSqlSafe(format!("{prefix}{}", self.sql)));
        for arg in self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        query
    }
}

/// The listing query for `filter`: every condition is an equality or range on an indexed
/// column, ordered newest first with a deterministic tie-break so LIMIT/OFFSET pages are stable.
///
/// `limit == 0` means "no limit" (the `Default` filter lists everything).
pub(crate) fn list_certificates(filter: &est_ca::CertFilter) -> DynamicQuery {
    let mut args = Vec::new();
    let mut conditions = Vec::new();
    let mut condition = |column: &str, op: &str, arg: Arg| {
        args.push(arg);
        conditions.push(format!("{column} {op} ${}", args.len()));
    };
    if let Some(ca) = &filter.ca {
        condition("ca", "=", Arg::Text(ca.clone()));
    }
    if let Some(requester) = &filter.requester {
        condition("requester", "=", Arg::Text(requester.clone()));
    }
    if let Some(subject) = &filter.subject {
        condition("subject", "=", Arg::Text(subject.clone()));
    }
    if let Some(label) = &filter.label {
        condition("label", "=", Arg::Text(label.clone()));
    }
    if let Some(valid_at) = filter.valid_at {
        condition("not_after", ">=", Arg::Int(valid_at));
    }
    if let Some(before) = filter.expires_before {
        condition("not_after", "<", Arg::Int(before));
    }
    if let Some(status) = filter.status {
        condition("status", "=", Arg::Text(status.as_str().to_owned()));
    }
    let mut sql = String::from(concat!("SELECT ", cert_columns!(), " FROM certificates"));
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let limit = match filter.limit {
        0 => i64::MAX,
        n => i64::from(n),
    };
    args.push(Arg::Int(limit));
    args.push(Arg::Int(i64::from(filter.offset)));
    sql.push_str(&format!(
        " ORDER BY issued_at DESC, serial DESC LIMIT ${} OFFSET ${}",
        args.len() - 1,
        args.len()
    ));
    DynamicQuery { sql, args }
}

pub(crate) fn certificate_from_row(row: &AnyRow) -> Result<CertRecord, StoreError> {
    let status: String = row.try_get("status").map_err(backend_error)?;
    let status = CertStatus::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("unknown certificate status {status:?}")))?;
    Ok(CertRecord {
        serial: row.try_get("serial").map_err(backend_error)?,
        ca: row.try_get("ca").map_err(backend_error)?,
        subject: row.try_get("subject").map_err(backend_error)?,
        issuer: row.try_get("issuer").map_err(backend_error)?,
        ski: row.try_get("ski").map_err(backend_error)?,
        spki_sha256: row.try_get("spki_sha256").map_err(backend_error)?,
        requester: row.try_get("requester").map_err(backend_error)?,
        label: row.try_get("label").map_err(backend_error)?,
        not_before: row.try_get("not_before").map_err(backend_error)?,
        not_after: row.try_get("not_after").map_err(backend_error)?,
        issued_at: row.try_get("issued_at").map_err(backend_error)?,
        status,
        revocation: revocation_from_row(row, "revoked_at")?,
        der: row.try_get("der").map_err(backend_error)?,
    })
}

/// The revocation columns (0 = none): `None` while `revoked_at` is 0.
fn revocation_from_row(
    row: &AnyRow,
    revoked_at_column: &str,
) -> Result<Option<est_ca::Revocation>, StoreError> {
    let revoked_at: i64 = row.try_get(revoked_at_column).map_err(backend_error)?;
    if revoked_at == 0 {
        return Ok(None);
    }
    let reason: i64 = row.try_get("revocation_reason").map_err(backend_error)?;
    let reason = i32::try_from(reason)
        .map_err(|_| StoreError::Backend(format!("revocation reason {reason} out of range")))?;
    let invalidity_date: i64 = row.try_get("invalidity_date").map_err(backend_error)?;
    Ok(Some(est_ca::Revocation {
        revoked_at,
        reason,
        invalidity_date: (invalidity_date != 0).then_some(invalidity_date),
    }))
}

pub(crate) fn revoked_entry_from_row(row: &AnyRow) -> Result<est_ca::RevokedEntry, StoreError> {
    let serial: String = row.try_get("serial").map_err(backend_error)?;
    let revocation = revocation_from_row(row, "revoked_at")?;
    // Rows revoked with no recorded time (inserted already revoked) still belong on the CRL.
    let r = revocation.unwrap_or(est_ca::Revocation {
        revoked_at: 0,
        reason: 0,
        invalidity_date: None,
    });
    Ok(est_ca::RevokedEntry {
        serial,
        revoked_at: r.revoked_at,
        reason: r.reason,
        invalidity_date: r.invalidity_date,
    })
}

/// `allowed_names` is a JSON array: name patterns may contain any character, so no separator
/// would be safe, and JSON reads the same on both backends.
pub(crate) fn encode_allowed_names(names: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(names)
        .map_err(|e| StoreError::Backend(format!("encoding allowed names: {e}")))
}

pub(crate) const INSERT_PENDING: &str = "INSERT INTO pending_requests \
     (id, match_key, label, requester, subject, spki_sha256, csr, status, created_at, decided_at, serial, \
     client_addr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
macro_rules! pending_select {
    () => {
        "SELECT id, match_key, label, requester, subject, spki_sha256, csr, status, created_at, \
         decided_at, serial, client_addr, reason FROM pending_requests"
    };
}
pub(crate) const SELECT_PENDING_BY_KEY: &str = concat!(pending_select!(), " WHERE match_key = $1");
pub(crate) const SELECT_PENDING_BY_ID: &str = concat!(pending_select!(), " WHERE id = $1");
pub(crate) const LIST_PENDING: &str = concat!(pending_select!(), " ORDER BY created_at, id");
pub(crate) const LIST_PENDING_STATUS: &str = concat!(
    pending_select!(),
    " WHERE status = $1 ORDER BY created_at, id"
);
/// Conditional on the current status: the winner of concurrent transitions is decided here.
pub(crate) const TRANSITION_PENDING: &str = "UPDATE pending_requests SET status = $1, \
     decided_at = CASE WHEN $2 > 0 THEN $2 ELSE decided_at END, \
     serial = CASE WHEN $3 <> '' THEN $3 ELSE serial END \
     WHERE id = $4 AND status = $5";

pub(crate) fn pending_from_row(row: &AnyRow) -> Result<est_ca::PendingRecord, StoreError> {
    Ok(est_ca::PendingRecord {
        id: row.try_get("id").map_err(backend_error)?,
        match_key: row.try_get("match_key").map_err(backend_error)?,
        label: row.try_get("label").map_err(backend_error)?,
        requester: row.try_get("requester").map_err(backend_error)?,
        subject: row.try_get("subject").map_err(backend_error)?,
        spki_sha256: row.try_get("spki_sha256").map_err(backend_error)?,
        csr: row.try_get("csr").map_err(backend_error)?,
        status: row.try_get("status").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
        decided_at: row.try_get("decided_at").map_err(backend_error)?,
        serial: row.try_get("serial").map_err(backend_error)?,
        client_addr: row.try_get("client_addr").map_err(backend_error)?,
        reason: row.try_get("reason").map_err(backend_error)?,
    })
}

/// An operator's decision, only on a request still pending.
pub(crate) const DECIDE_PENDING: &str = "UPDATE pending_requests SET status = $1, \
     decided_at = $2, reason = $3 WHERE id = $4 AND status = 'pending'";

pub(crate) const INSERT_ADMIN: &str = "INSERT INTO admins \
     (name, password_hash, totp_sealed, totp_last_step, created_at) VALUES ($1, $2, $3, $4, $5)";
macro_rules! admin_select {
    () => {
        "SELECT name, password_hash, totp_sealed, totp_last_step, created_at FROM admins"
    };
}
pub(crate) const SELECT_ADMIN: &str = concat!(admin_select!(), " WHERE name = $1");
pub(crate) const SELECT_ADMINS: &str = concat!(admin_select!(), " ORDER BY name");
pub(crate) const DELETE_ADMIN: &str = "DELETE FROM admins WHERE name = $1";
/// Conditional: of two logins with the same code, only one raises the step.
pub(crate) const CLAIM_TOTP_STEP: &str =
    "UPDATE admins SET totp_last_step = $1 WHERE name = $2 AND totp_last_step < $1";
pub(crate) const COUNT_ISSUED_SINCE: &str =
    "SELECT COUNT(*) AS n FROM certificates WHERE issued_at >= $1";
pub(crate) const COUNT_EXPIRING: &str = "SELECT COUNT(*) AS n FROM certificates \
     WHERE not_after >= $1 AND not_after < $2 AND status = 'valid'";

pub(crate) fn admin_from_row(row: &AnyRow) -> Result<est_ca::AdminRecord, StoreError> {
    Ok(est_ca::AdminRecord {
        name: row.try_get("name").map_err(backend_error)?,
        password_hash: row.try_get("password_hash").map_err(backend_error)?,
        totp_sealed: row.try_get("totp_sealed").map_err(backend_error)?,
        totp_last_step: row.try_get("totp_last_step").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
    })
}

pub(crate) fn token_from_row(row: &AnyRow) -> Result<est_ca::TokenRecord, StoreError> {
    Ok(est_ca::TokenRecord {
        id: row.try_get("id").map_err(backend_error)?,
        label: row.try_get("label").map_err(backend_error)?,
        secret_sha256: row.try_get("secret_sha256").map_err(backend_error)?,
        subject: row.try_get("subject").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
        expires_at: row.try_get("expires_at").map_err(backend_error)?,
        used_at: row.try_get("used_at").map_err(backend_error)?,
        used_by: row.try_get("used_by").map_err(backend_error)?,
    })
}

pub(crate) fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let allowed_names: String = row.try_get("allowed_names").map_err(backend_error)?;
    let allowed_names = serde_json::from_str(&allowed_names).map_err(|e| {
        StoreError::Backend(format!("stored allowed names are not a JSON array: {e}"))
    })?;
    Ok(UserRecord {
        name: row.try_get("name").map_err(backend_error)?,
        password_hash: row.try_get("password_hash").map_err(backend_error)?,
        allowed_names,
        created_at: row.try_get("created_at").map_err(backend_error)?,
        digest_secrets: row.try_get("digest_secrets").map_err(backend_error)?,
    })
}

pub(crate) fn client_key_from_row(row: &AnyRow) -> Result<ClientKeyRecord, StoreError> {
    let kind: String = row.try_get("kind").map_err(backend_error)?;
    Ok(ClientKeyRecord {
        owner: row.try_get("owner").map_err(backend_error)?,
        kind: ClientKeyKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown client key kind {kind:?}")))?,
        key_id: row.try_get("key_id").map_err(backend_error)?,
        sealed: row.try_get("sealed").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
    })
}

pub(crate) const INSERT_CMC_SECRET: &str = "INSERT INTO cmc_secrets \
     (ident, label, subject, sealed, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_CMC_SECRET: &str =
    "SELECT ident, label, subject, sealed, created_at FROM cmc_secrets WHERE ident = $1";
pub(crate) const SELECT_CMC_SECRETS: &str =
    "SELECT ident, label, subject, sealed, created_at FROM cmc_secrets ORDER BY ident";
pub(crate) const DELETE_CMC_SECRET: &str = "DELETE FROM cmc_secrets WHERE ident = $1";
/// CMC-53: the primary key (transaction_id, sender_nonce) decides; a replayed pair inserts
/// nothing (no row affected) instead of failing, so no error path is needed for it.
pub(crate) const PRUNE_CMC_NONCES: &str = "DELETE FROM cmc_nonces WHERE seen_at < $1";

pub(crate) fn cmc_secret_from_row(row: &AnyRow) -> Result<CmcSecretRecord, StoreError> {
    Ok(CmcSecretRecord {
        ident: row.try_get("ident").map_err(backend_error)?,
        label: row.try_get("label").map_err(backend_error)?,
        subject: row.try_get("subject").map_err(backend_error)?,
        sealed: row.try_get("sealed").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
    })
}
