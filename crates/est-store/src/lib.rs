//! Durable storage for the Estuary authority: [`SqlStore`] implements [`est_ca::Store`] on
//! SQLite (the default, one file) and PostgreSQL, through one code path (sqlx's `Any` driver).
//!
//! Design points, each there for a reason:
//! - **Durable before acknowledged.** SQLite runs in WAL mode with `synchronous = FULL`, and
//!   PostgreSQL write sessions refuse `synchronous_commit = off`: when `insert_certificate`
//!   returns, the row survives a crash. A certificate handed out but not recorded could never be
//!   revoked.
//! - **Group commit.** Certificate inserts go to a single writer task that commits whatever has
//!   queued in one transaction, so concurrent issuance shares fsyncs instead of queueing for
//!   them (see [`StoreStats`]). Reads go straight to a pool.
//! - **O(log n).** Every lookup has an index ending in `issued_at` (newest first without a
//!   sort), and the certificate count is a maintained counter: no operation reads a number of
//!   rows that grows with the store, so costs grow only with the depth of the B-trees.
//! - **Checkpoints off the commit path** on SQLite (see the `checkpoint` module), so a commit
//!   pays for its own WAL frames only; the writer itself only finishes the last frames when
//!   the WAL is due to start over.
//! - **Appends, not random inserts.** Serials start with the issuing time (`est_ca::new_serial`),
//!   so the unique serial index grows at its end; with a million rows stored a random key there
//!   cost every issuance a cold index page.
//! - **An audit trail no certificate escapes.** Each certificate's hash-chained audit record
//!   is appended in the certificate's own transaction (see the `audit` module); the chain is
//!   serialized by SQLite's write lock or, on PostgreSQL, a transaction-scoped advisory lock,
//!   so stateless nodes sharing a database build one chain.
//! - **Portable SQL.** Integers for times and flags, TEXT/BLOB/BYTEA for the rest, `$N`
//!   placeholders (but see `sql::insert_certificates_sql`), one migrations folder per backend
//!   (`migrations/sqlite`, `migrations/postgres`), embedded in the binary.

mod audit;
mod backend;
mod checkpoint;
mod error;
mod nonces;
mod sql;
mod writer;

use async_trait::async_trait;
use est_ca::{
    AuditEvent, AuditRecord, CertFilter, CertRecord, CertStatus, ClientKeyKind, ClientKeyRecord,
    CmcSecretRecord, RevokedEntry, Store, StoreError, UserRecord,
};
use sqlx::any::AnyConnectOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection, Row, SqlSafeStr};

pub use backend::Backend;
pub use writer::StoreStats;

use backend::Role;
use error::{backend_error, certificate_insert_error, is_unique_violation};
use sql::OnDuplicate;
use writer::Writer;

/// Rows per transaction in [`SqlStore::bulk_insert`]: large enough that commits are rare, small
/// enough that the SQLite WAL (which holds a whole transaction) stays around 100 MB.
const BULK_ROWS_PER_TRANSACTION: usize = 100_000;

/// Migrations, oldest first: (version, description, SQLite SQL, PostgreSQL SQL). Embedded so a
/// deployed binary needs no migrations folder; never edit a released entry (sqlx checks
/// checksums), add a new one.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "client keys",
        include_str!("../migrations/sqlite/0002_client_keys.sql"),
        include_str!("../migrations/postgres/0002_client_keys.sql"),
    ),
    (
        3,
        "auth",
        include_str!("../migrations/sqlite/0003_auth.sql"),
        include_str!("../migrations/postgres/0003_auth.sql"),
    ),
    (
        4,
        "count trigger",
        include_str!("../migrations/sqlite/0004_count_trigger.sql"),
        include_str!("../migrations/postgres/0004_count_trigger.sql"),
    ),
    (
        5,
        "cmc",
        include_str!("../migrations/sqlite/0005_cmc.sql"),
        include_str!("../migrations/postgres/0005_cmc.sql"),
    ),
    (
        6,
        "revocation",
        include_str!("../migrations/sqlite/0006_revocation.sql"),
        include_str!("../migrations/postgres/0006_revocation.sql"),
    ),
    (
        7,
        "audit",
        include_str!("../migrations/sqlite/0007_audit.sql"),
        include_str!("../migrations/postgres/0007_audit.sql"),
    ),
    (
        8,
        "console",
        include_str!("../migrations/sqlite/0008_console.sql"),
        include_str!("../migrations/postgres/0008_console.sql"),
    ),
];

/// Tuning for [`SqlStore::connect_with`]; [`SqlStoreOptions::default`] suits most deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStoreOptions {
    /// Connections in the read pool; `None` picks a per-backend default from the core count.
    pub read_connections: Option<u32>,
    /// Most certificate inserts committed in one transaction.
    pub max_batch: usize,
    /// Inserts that may wait for the writer before callers are held back (backpressure).
    pub queue_capacity: usize,
    /// SQLite: WAL size (pages) past which the writer catches up with the checkpoints so that
    /// the WAL starts over, keeping it bounded under sustained load (see the `checkpoint`
    /// module).
    pub wal_restart_pages: i64,
    /// Under load, how long the group-commit writer waits for more certificates before it
    /// commits a small batch while batches have been small (default 2 ms; zero never waits). An
    /// idle store commits at once.
    pub commit_delay: std::time::Duration,
    /// How long a caller waits for a database connection before the request fails (the server
    /// then answers 503 with `Retry-After`; issue 12: a prompt refusal during an outage, not a
    /// request stuck for the pool's default 30 s).
    pub acquire_timeout: std::time::Duration,
    /// SQLite: the write connection's page cache, KiB (default 8 MiB). It fills as the store
    /// grows and stays resident; larger helps a store of millions of certificates a little.
    pub sqlite_writer_cache_kib: u32,
}

impl Default for SqlStoreOptions {
    fn default() -> Self {
        SqlStoreOptions {
            read_connections: None,
            max_batch: 256,
            queue_capacity: 1_024,
            wal_restart_pages: checkpoint::RESTART_FRAMES,
            commit_delay: std::time::Duration::from_millis(2),
            acquire_timeout: std::time::Duration::from_secs(3),
            sqlite_writer_cache_kib: 8 * 1024,
        }
    }
}

/// A [`Store`] on SQLite or PostgreSQL.
///
/// All writes (the group-commit writer, status changes, users, bulk loads) share a pool of
/// exactly one connection: one writer is all SQLite allows anyway, our own writes then queue
/// fairly instead of spinning on SQLite's busy timeout, and on PostgreSQL it keeps the batches
/// large. Reads use a separate pool so they never wait behind a commit.
///
/// Dropping the store closes the insert queue; the writer commits what was queued and stops.
/// [`SqlStore::close`] does the same and waits for it.
pub struct SqlStore {
    backend: Backend,
    read_pool: AnyPool,
    write_pool: AnyPool,
    /// Group commit of certificates and CMC replay records (CMC-53).
    writer: Writer,
}

impl std::fmt::Debug for SqlStore {
    // The URL is deliberately absent: it may hold a PostgreSQL password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .field("stats", &self.writer.stats())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens the store at `url` with default options: `sqlite://<path>` (the file is created if
    /// missing) or `postgres://...`. Runs pending migrations. Must be called inside a tokio
    /// runtime, where the group-commit writer task is spawned.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        SqlStore::connect_with(url, SqlStoreOptions::default()).await
    }

    /// [`SqlStore::connect`] with explicit tuning.
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = Backend::from_url(url)?;
        let connect_options: AnyConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid store URL: {e}")))?;
        if backend == Backend::Sqlite {
            backend::prepare_sqlite_file(&connect_options, &url).await?;
        }
        let write_pool = backend
            .pool(
                &connect_options,
                1,
                Role::Write,
                options.acquire_timeout,
                options.sqlite_writer_cache_kib,
            )
            .await?;
        migrator(backend)
            .run(&write_pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the store schema: {e}")))?;
        let read_connections = options
            .read_connections
            .unwrap_or_else(|| backend.default_read_connections())
            .max(1);
        let read_pool = backend
            .pool(
                &connect_options,
                read_connections,
                Role::Read,
                options.acquire_timeout,
                options.sqlite_writer_cache_kib,
            )
            .await?;
        let checkpoint_pool = (backend == Backend::Sqlite).then(|| read_pool.clone());
        let writer = Writer::spawn(write_pool.clone(), backend, &options, checkpoint_pool);
        tracing::debug!(?backend, read_connections, "store opened");
        Ok(SqlStore {
            backend,
            read_pool,
            write_pool,
            writer,
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Group-commit counters since this store was opened.
    pub fn stats(&self) -> StoreStats {
        self.writer.stats()
    }

    /// Inserts many certificates quickly, for prefilling benchmarks and imports: multi-row
    /// statements in transactions of 100,000 rows, bypassing the group-commit queue.
    ///
    /// Not atomic as a whole: on error, the transactions already committed stay. A serial that
    /// is already stored (or repeated in `records`) fails its transaction with
    /// [`StoreError::DuplicateSerial`]. Holds the write connection throughout, so concurrent
    /// `insert_certificate` calls wait until it returns.
    pub async fn bulk_insert(&self, records: &[CertRecord]) -> Result<(), StoreError> {
        let mut conn = self.write_pool.acquire().await.map_err(backend_error)?;
        let result = self.bulk_transactions(&mut conn, records).await;
        if result.is_err() && self.backend == Backend::Sqlite {
            // SQLite's `INSERT OR ROLLBACK` (see `sql::insert_certificates_sql`) ended the
            // transaction itself, behind the back of sqlx's transaction bookkeeping; a fresh
            // connection is the simple way to be sure nothing of that lingers.
            conn.close_on_drop();
        }
        result
    }

    async fn bulk_transactions(
        &self,
        conn: &mut PoolConnection<Any>,
        records: &[CertRecord],
    ) -> Result<(), StoreError> {
        for transaction in records.chunks(BULK_ROWS_PER_TRANSACTION) {
            let mut tx = conn.begin().await.map_err(backend_error)?;
            for statement in transaction.chunks(sql::ROWS_PER_STATEMENT) {
                let rows: Vec<&CertRecord> = statement.iter().collect();
                sql::insert_certificates(&rows, OnDuplicate::Fail, self.backend)
                    .execute(&mut *tx)
                    .await
                    .map_err(certificate_insert_error)?;
            }
            // store_meta's count follows by trigger (migration 0004).
            tx.commit().await.map_err(backend_error)?;
            if self.backend == Backend::Sqlite {
                // The write connection does not checkpoint by itself (see `checkpoint`); without
                // this the WAL would grow by the whole load.
                sqlx::raw_sql(checkpoint::CHECKPOINT)
                    .execute(&mut **conn)
                    .await
                    .map_err(backend_error)?;
            }
        }
        Ok(())
    }

    /// Stops the writer after it has committed every queued insert, then closes all
    /// connections. Prefer this to a plain drop when the process is about to exit or the same
    /// SQLite file is about to be reopened.
    pub async fn close(self) {
        let SqlStore {
            read_pool,
            write_pool,
            writer,
            ..
        } = self;
        writer.shutdown().await;
        write_pool.close().await;
        read_pool.close().await;
    }
}

fn migrator(backend: Backend) -> Migrator {
    migrator_of(backend, MIGRATIONS)
}

/// A migrator for `migrations` (all of them in production; tests also build earlier schemas).
fn migrator_of(
    backend: Backend,
    migrations: &[(i64, &'static str, &'static str, &'static str)],
) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match backend {
                Backend::Sqlite => sqlite,
                Backend::Postgres => postgres,
            };
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[async_trait]
impl Store for SqlStore {
    /// Queued to the group-commit writer; returns once the transaction holding it committed.
    async fn insert_certificate(&self, record: &CertRecord) -> Result<(), StoreError> {
        self.writer.insert(record.clone(), None, None).await
    }

    /// Queued to the writer with its audit record (and replay record): one transaction holds
    /// them all, and the audit record is appended only if the certificate was recorded.
    async fn insert_certificate_audited(
        &self,
        record: &CertRecord,
        pair: Option<&est_ca::ReplayPair>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.writer
            .insert(record.clone(), pair.cloned(), Some(event.clone()))
            .await
    }

    /// Queued to the writer, so audit records share the group commits of certificates.
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        self.writer.append_audit(event.clone()).await
    }

    /// One transaction on the write connection: the conditional UPDATE and, if it changed the
    /// certificate, the audit record.
    async fn revoke_certificate_audited(
        &self,
        serial: &str,
        reason: i32,
        revoked_at: i64,
        invalidity_date: Option<i64>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        if revoked_at <= 0 {
            return Err(StoreError::Backend(format!(
                "revocation time {revoked_at} is not after 1970"
            )));
        }
        // PostgreSQL: the chain's lock first (see `audit`). SQLite: the UPDATE is the first
        // statement, so the write lock is held before the audit head is read.
        let mut tx = self.write_pool.begin().await.map_err(backend_error)?;
        audit::lock_chain(&mut tx, self.backend).await?;
        let done = sqlx::query(sql::REVOKE)
            .bind(revoked_at)
            .bind(i64::from(reason))
            .bind(invalidity_date.unwrap_or(0))
            .bind(serial)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        let changed = done.rows_affected() == 1;
        if changed {
            audit::append_in(&mut tx, self.backend, vec![event.clone()]).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(changed)
    }

    async fn list_audit(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = if limit == 0 {
            i64::MAX
        } else {
            i64::from(limit)
        };
        let rows = sqlx::query(audit::LIST)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(audit::record_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        let row = sqlx::query(audit::LAST)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(audit::record_from_row).transpose()
    }

    /// Queued to the writer with its replay record: one transaction holds both (see `nonces`).
    async fn insert_certificate_claiming(
        &self,
        record: &CertRecord,
        pair: &est_ca::ReplayPair,
    ) -> Result<(), StoreError> {
        self.writer
            .insert(record.clone(), Some(pair.clone()), None)
            .await
    }

    async fn certificate_by_serial(&self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_BY_SERIAL)
            .bind(serial)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::certificate_from_row).transpose()
    }

    /// An empty `ski` finds nothing: certificates without the extension are recorded with an
    /// empty identifier, and they are not "the same key".
    async fn certificates_by_ski(&self, ski: &str) -> Result<Vec<CertRecord>, StoreError> {
        if ski.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql::SELECT_BY_SKI)
            .bind(ski)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::certificate_from_row).collect()
    }

    /// Newest first (ties by serial, descending). `limit == 0` means no limit.
    async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<CertRecord>, StoreError> {
        let rows = sql::list_certificates(filter)
            .into_query("")
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::certificate_from_row).collect()
    }

    async fn count_certificates(&self) -> Result<u64, StoreError> {
        let row = sqlx::query(sql::SELECT_COUNT)
            .fetch_one(&self.read_pool)
            .await
            .map_err(backend_error)?;
        let count: i64 = row.try_get(0).map_err(backend_error)?;
        u64::try_from(count)
            .map_err(|_| StoreError::Backend(format!("negative certificate count {count}")))
    }

    /// Returns whether a certificate with this serial exists (and now has `status`). Revoking
    /// goes through [`Store::revoke_certificate`] (reason unspecified, now); an already revoked
    /// certificate keeps its details.
    async fn set_certificate_status(
        &self,
        serial: &str,
        status: CertStatus,
    ) -> Result<bool, StoreError> {
        match status {
            CertStatus::Revoked => {
                if self.revoke_certificate(serial, 0, unix_now(), None).await? {
                    return Ok(true);
                }
                Ok(self.certificate_by_serial(serial).await?.is_some())
            }
            CertStatus::Valid => {
                let done = sqlx::query(sql::UPDATE_STATUS_VALID)
                    .bind(serial)
                    .execute(&self.write_pool)
                    .await
                    .map_err(backend_error)?;
                Ok(done.rows_affected() > 0)
            }
        }
    }

    /// One autocommit conditional UPDATE on the write connection (see [`sql::REVOKE`]).
    async fn revoke_certificate(
        &self,
        serial: &str,
        reason: i32,
        revoked_at: i64,
        invalidity_date: Option<i64>,
    ) -> Result<bool, StoreError> {
        if revoked_at <= 0 {
            return Err(StoreError::Backend(format!(
                "revocation time {revoked_at} is not after 1970"
            )));
        }
        let done = sqlx::query(sql::REVOKE)
            .bind(revoked_at)
            .bind(i64::from(reason))
            .bind(invalidity_date.unwrap_or(0))
            .bind(serial)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoked_certificates(&self, ca: &str) -> Result<Vec<RevokedEntry>, StoreError> {
        let rows = sqlx::query(sql::SELECT_REVOKED)
            .bind(ca)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::revoked_entry_from_row).collect()
    }

    async fn revocation_state(&self, ca: &str) -> Result<(u64, i64), StoreError> {
        let row = sqlx::query(sql::SELECT_REVOCATION_STATE)
            .bind(ca)
            .fetch_one(&self.read_pool)
            .await
            .map_err(backend_error)?;
        let count: i64 = row.try_get("revoked").map_err(backend_error)?;
        let latest: i64 = row.try_get("latest").map_err(backend_error)?;
        let count = u64::try_from(count)
            .map_err(|_| StoreError::Backend(format!("negative revocation count {count}")))?;
        Ok((count, latest))
    }

    /// On the write connection, so the increment commits (and syncs) before the number is used.
    async fn next_crl_number(&self, ca: &str) -> Result<u64, StoreError> {
        let row = sqlx::query(sql::NEXT_CRL_NUMBER)
            .bind(ca)
            .fetch_one(&self.write_pool)
            .await
            .map_err(backend_error)?;
        let number: i64 = row.try_get(0).map_err(backend_error)?;
        u64::try_from(number)
            .map_err(|_| StoreError::Backend(format!("negative CRL number {number}")))
    }

    async fn add_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let allowed_names = sql::encode_allowed_names(&user.allowed_names)?;
        let result = sqlx::query(sql::INSERT_USER)
            .bind(user.name.as_str())
            .bind(user.password_hash.as_str())
            .bind(allowed_names)
            .bind(user.created_at)
            .bind(user.digest_secrets.as_slice())
            .execute(&self.write_pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("user {:?}", user.name)))
            }
            Err(e) => Err(backend_error(e)),
        }
    }

    async fn add_token(&self, token: &est_ca::TokenRecord) -> Result<(), StoreError> {
        let result = sqlx::query(sql::INSERT_TOKEN)
            .bind(token.id.as_str())
            .bind(token.label.as_str())
            .bind(token.secret_sha256.as_str())
            .bind(token.subject.as_str())
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&self.write_pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("token {:?}", token.id)))
            }
            Err(e) => Err(backend_error(e)),
        }
    }

    async fn get_token(&self, id: &str) -> Result<Option<est_ca::TokenRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_TOKEN)
            .bind(id)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::token_from_row).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<est_ca::TokenRecord>, StoreError> {
        let rows = sqlx::query(sql::SELECT_TOKENS)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::REVOKE_TOKEN)
            .bind(now)
            .bind(est_ca::TOKEN_REVOKED_BY)
            .bind(id)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn consume_token(&self, id: &str, now: i64, used_by: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::CONSUME_TOKEN)
            .bind(now)
            .bind(used_by)
            .bind(id)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_pending(&self, p: &est_ca::PendingRecord) -> Result<(), StoreError> {
        let result = sqlx::query(sql::INSERT_PENDING)
            .bind(p.id.as_str())
            .bind(p.match_key.as_str())
            .bind(p.label.as_str())
            .bind(p.requester.as_str())
            .bind(p.subject.as_str())
            .bind(p.spki_sha256.as_str())
            .bind(p.csr.as_slice())
            .bind(p.status.as_str())
            .bind(p.created_at)
            .bind(p.decided_at)
            .bind(p.serial.as_str())
            .bind(p.client_addr.as_str())
            .execute(&self.write_pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("pending request".into()))
            }
            Err(e) => Err(backend_error(e)),
        }
    }

    async fn pending_by_match_key(
        &self,
        key: &str,
    ) -> Result<Option<est_ca::PendingRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_PENDING_BY_KEY)
            .bind(key)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::pending_from_row).transpose()
    }

    async fn pending_by_id(&self, id: &str) -> Result<Option<est_ca::PendingRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_PENDING_BY_ID)
            .bind(id)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::pending_from_row).transpose()
    }

    async fn list_pending(
        &self,
        status: Option<&str>,
    ) -> Result<Vec<est_ca::PendingRecord>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(sql::LIST_PENDING_STATUS)
                    .bind(s)
                    .fetch_all(&self.read_pool)
                    .await
            }
            None => {
                sqlx::query(sql::LIST_PENDING)
                    .fetch_all(&self.read_pool)
                    .await
            }
        }
        .map_err(backend_error)?;
        rows.iter().map(sql::pending_from_row).collect()
    }

    async fn transition_pending(
        &self,
        id: &str,
        from: &str,
        to: &str,
        now: Option<i64>,
        serial: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::TRANSITION_PENDING)
            .bind(to)
            .bind(now.unwrap_or(0))
            .bind(serial.unwrap_or(""))
            .bind(id)
            .bind(from)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_USER)
            .bind(name)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::user_from_row).transpose()
    }

    /// Sorted by name.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(sql::SELECT_USERS)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::user_from_row).collect()
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DELETE_USER)
            .bind(name)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_client_key(&self, key: &ClientKeyRecord) -> Result<(), StoreError> {
        let result = sqlx::query(sql::INSERT_CLIENT_KEY)
            .bind(key.owner.as_str())
            .bind(key.kind.as_str())
            .bind(key.key_id.clone())
            .bind(key.sealed.clone())
            .bind(key.created_at)
            .execute(&self.write_pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "{} {} of {:?}",
                key.kind.as_str(),
                hex_id(&key.key_id),
                key.owner
            ))),
            Err(e) => Err(backend_error(e)),
        }
    }

    async fn get_client_key(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        key_id: &[u8],
    ) -> Result<Option<ClientKeyRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_CLIENT_KEY)
            .bind(owner)
            .bind(kind.as_str())
            .bind(key_id.to_vec())
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::client_key_from_row).transpose()
    }

    async fn list_client_keys(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<ClientKeyRecord>, StoreError> {
        let rows = match owner {
            Some(o) => sqlx::query(sql::SELECT_CLIENT_KEYS_OF).bind(o),
            None => sqlx::query(sql::SELECT_CLIENT_KEYS),
        }
        .fetch_all(&self.read_pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(sql::client_key_from_row).collect()
    }

    async fn remove_client_key(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        key_id: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DELETE_CLIENT_KEY)
            .bind(owner)
            .bind(kind.as_str())
            .bind(key_id.to_vec())
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_cmc_secret(&self, secret: &CmcSecretRecord) -> Result<(), StoreError> {
        let result = sqlx::query(sql::INSERT_CMC_SECRET)
            .bind(secret.ident.as_str())
            .bind(secret.label.as_str())
            .bind(secret.subject.as_str())
            .bind(secret.sealed.as_slice())
            .bind(secret.created_at)
            .execute(&self.write_pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "CMC shared secret {:?}",
                secret.ident
            ))),
            Err(e) => Err(backend_error(e)),
        }
    }

    async fn get_cmc_secret(&self, ident: &str) -> Result<Option<CmcSecretRecord>, StoreError> {
        let row = sqlx::query(sql::SELECT_CMC_SECRET)
            .bind(ident)
            .fetch_optional(&self.read_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::cmc_secret_from_row).transpose()
    }

    async fn list_cmc_secrets(&self) -> Result<Vec<CmcSecretRecord>, StoreError> {
        let rows = sqlx::query(sql::SELECT_CMC_SECRETS)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::cmc_secret_from_row).collect()
    }

    async fn remove_cmc_secret(&self, ident: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DELETE_CMC_SECRET)
            .bind(ident)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn decide_pending(
        &self,
        id: &str,
        to: &str,
        decided_at: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DECIDE_PENDING)
            .bind(to)
            .bind(decided_at)
            .bind(reason)
            .bind(id)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_admin(&self, a: &est_ca::AdminRecord) -> Result<(), StoreError> {
        let result = sqlx::query(sql::INSERT_ADMIN)
            .bind(a.name.as_str())
            .bind(a.password_hash.as_str())
            .bind(a.totp_sealed.as_slice())
            .bind(a.totp_last_step)
            .bind(a.created_at)
            .execute(&self.write_pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("administrator {:?}", a.name)))
            }
            Err(e) => Err(backend_error(e)),
        }
    }

    async fn get_admin(&self, name: &str) -> Result<Option<est_ca::AdminRecord>, StoreError> {
        // The write pool: a login right after `admin add` or a claim must see it.
        let row = sqlx::query(sql::SELECT_ADMIN)
            .bind(name)
            .fetch_optional(&self.write_pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(sql::admin_from_row).transpose()
    }

    async fn list_admins(&self) -> Result<Vec<est_ca::AdminRecord>, StoreError> {
        let rows = sqlx::query(sql::SELECT_ADMINS)
            .fetch_all(&self.read_pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sql::admin_from_row).collect()
    }

    async fn remove_admin(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::DELETE_ADMIN)
            .bind(name)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::CLAIM_TOTP_STEP)
            .bind(step)
            .bind(name)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_issued_since(&self, since: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(sql::COUNT_ISSUED_SINCE)
            .bind(since)
            .fetch_one(&self.read_pool)
            .await
            .map_err(backend_error)?;
        let n: i64 = row.try_get("n").map_err(backend_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn count_expiring(&self, from: i64, before: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(sql::COUNT_EXPIRING)
            .bind(from)
            .bind(before)
            .fetch_one(&self.read_pool)
            .await
            .map_err(backend_error)?;
        let n: i64 = row.try_get("n").map_err(backend_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// INSERT ... ON CONFLICT DO NOTHING in the writer's next group commit (see `nonces`): the
    /// primary key lets exactly one of concurrent callers (on any node sharing the database)
    /// insert the pair.
    async fn record_cmc_nonce(
        &self,
        transaction_id: &str,
        sender_nonce: &[u8],
        seen_at: i64,
    ) -> Result<bool, StoreError> {
        self.writer
            .record_nonce(transaction_id, sender_nonce, seen_at)
            .await
    }

    async fn prune_cmc_nonces(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(sql::PRUNE_CMC_NONCES)
            .bind(before)
            .execute(&self.write_pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected())
    }
}

/// The wall clock in unix seconds, for the legacy [`Store::set_certificate_status`] path only
/// (every other time comes from the caller's clock).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
