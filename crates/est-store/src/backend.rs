//! Which database we talk to, and how each of its connections is set up.
//!
//! The SQL is shared; what differs per backend is the URL handling, the session settings that
//! make a commit durable, the pool sizes and the migrations folder.

use std::time::Duration;

use est_ca::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Row};

use crate::error::backend_error;

/// The database behind a [`crate::SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A single SQLite file in WAL mode.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// How long a SQLite connection waits for another writer's lock before failing with
/// `SQLITE_BUSY` (milliseconds). Other processes (an admin CLI) may hold the write lock briefly.
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";

/// Per-connection SQLite settings. `journal_mode` is not here: it is a property of the file,
/// set once by [`prepare_sqlite_file`]. `synchronous = FULL` makes every commit fsync the WAL,
/// which is what "recorded durably before it is returned" means.
const SQLITE_SESSION: &[&str] = &[
    "PRAGMA synchronous = FULL",
    SQLITE_BUSY_TIMEOUT,
    "PRAGMA foreign_keys = ON",
];

/// Page cache of the SQLite write connection ([`crate::SqlStoreOptions::sqlite_writer_cache_kib`],
/// 8 MiB by default). Inserts land on random pages of the key-identifier indexes; with
/// SQLite's 2 MiB default a large store re-reads most of them from the file on every batch.
/// Readers get less ([`SQLITE_READER_CACHE`]). The cache fills as the store grows and stays full: it is resident memory
/// (issue 12 item 7: 64 MiB made most of a 145 MiB steady state under the soak load).
fn sqlite_writer_cache(kib: u32) -> String {
    format!("PRAGMA cache_size = -{}", kib.max(512))
}

/// Page cache of each SQLite read connection, KiB: readers make point lookups (a user, a
/// serial, a key's previous certificates) and the OS page cache serves the file, so SQLite's
/// 2 MiB default per reader only made resident memory creep while each filled (issue 12 item
/// 7: four readers added ~8 MiB over a ten-minute soak).
const SQLITE_READER_CACHE: &str = "PRAGMA cache_size = -512";

/// Keeps the writer's statement journal in memory. A multi-row INSERT inside a transaction
/// keeps a copy of the pages it changes, so that a failing row undoes only its own statement;
/// in a temporary file that copying was a quarter of bulk-load time. It is scratch space, not
/// part of durability (the WAL is).
const SQLITE_WRITER_TEMP_STORE: &str = "PRAGMA temp_store = MEMORY";

/// What a pool's connections are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Read,
    Write,
}

impl Backend {
    /// Picks the backend from the URL scheme and returns the URL to hand to sqlx.
    ///
    /// A SQLite URL without a `mode` parameter gets `mode=rwc`, so a missing file is created
    /// (sqlx's default is to fail).
    pub(crate) fn from_url(url: &str) -> Result<(Backend, String), StoreError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let has_mode = rest
                .split_once('?')
                .is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("mode=")));
            let url = match (has_mode, rest.contains('?')) {
                (true, _) => url.to_owned(),
                (false, true) => format!("{url}&mode=rwc"),
                (false, false) => format!("{url}?mode=rwc"),
            };
            Ok((Backend::Sqlite, url))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Backend::Postgres, url.to_owned()))
        } else {
            // Do not echo the URL: a PostgreSQL URL may carry a password.
            Err(StoreError::Backend(
                "unsupported store URL: expected sqlite://<path> or postgres://...".into(),
            ))
        }
    }

    /// Readers in the shared pool. SQLite in WAL mode lets readers run beside the one writer,
    /// each on its own worker thread, so a handful is plenty on small machines; PostgreSQL
    /// serves more, but every connection is a server process.
    pub(crate) fn default_read_connections(self) -> u32 {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cores = u32::try_from(cores).unwrap_or(u32::MAX);
        match self {
            Backend::Sqlite => cores.clamp(4, 8),
            Backend::Postgres => (cores * 2).clamp(4, 16),
        }
    }

    /// Applies the per-connection session settings.
    async fn init_session(
        self,
        conn: &mut AnyConnection,
        role: Role,
        writer_cache_kib: u32,
    ) -> Result<(), sqlx::Error> {
        let statements: &[&str] = match (self, role) {
            (Backend::Sqlite, Role::Read) => {
                for pragma in SQLITE_SESSION {
                    sqlx::raw_sql(*pragma).execute(&mut *conn).await?;
                }
                &[SQLITE_READER_CACHE]
            }
            (Backend::Sqlite, Role::Write) => {
                for pragma in SQLITE_SESSION {
                    sqlx::raw_sql(*pragma).execute(&mut *conn).await?;
                }
                let cache = sqlite_writer_cache(writer_cache_kib);
                sqlx::raw_sql(sqlx::AssertSqlSafe(cache))
                    .execute(&mut *conn)
                    .await?;
                &[
                    SQLITE_WRITER_TEMP_STORE,
                    crate::checkpoint::DISABLE_AUTOCHECKPOINT,
                    crate::checkpoint::JOURNAL_SIZE_LIMIT,
                ]
            }
            (Backend::Postgres, Role::Read) => &[],
            (Backend::Postgres, Role::Write) => {
                // A server configured with synchronous_commit = off would acknowledge commits
                // before they reach the disk; our contract is that an acknowledged certificate
                // survives a crash. Stronger settings (remote_apply, ...) are left alone.
                let row = sqlx::query("SHOW synchronous_commit")
                    .fetch_one(&mut *conn)
                    .await?;
                let current: String = row.try_get(0)?;
                if current == "off" {
                    &["SET synchronous_commit = on"]
                } else {
                    &[]
                }
            }
        };
        for statement in statements {
            sqlx::raw_sql(*statement).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// A pool whose every connection gets [`Backend::init_session`].
    pub(crate) async fn pool(
        self,
        options: &AnyConnectOptions,
        max_connections: u32,
        role: Role,
        acquire_timeout: Duration,
        writer_cache_kib: u32,
    ) -> Result<AnyPool, StoreError> {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            // sqlx pings every connection it hands out. A PostgreSQL connection can die with
            // the server or the network, and the ping replaces it unseen. A SQLite connection
            // lives in this process; its ping is only a round trip to sqlx's worker thread
            // (two thread wake-ups) before every statement.
            .test_before_acquire(self == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(self.init_session(conn, role, writer_cache_kib))
            })
            .connect_with(options.clone())
            .await
            .map_err(backend_error)
    }
}

/// Puts the SQLite file in WAL mode, once, before any pool exists.
///
/// WAL lets readers proceed while the writer commits, and with `synchronous = FULL` a commit is
/// one append plus one fsync of the WAL. The mode is persistent in the file; switching needs an
/// exclusive lock that `busy_timeout` cannot wait for, which is why it is done on a lone
/// connection here rather than in every pooled connection. In-memory databases cannot use WAL
/// and are refused: they would silently lose every "durable" certificate.
pub(crate) async fn prepare_sqlite_file(
    options: &AnyConnectOptions,
    url: &str,
) -> Result<(), StoreError> {
    // The database holds password hashes and sealed secrets: owner-only whatever the umask.
    // SQLite creates the -wal and -shm files with the database file's permissions.
    let path = sqlite_path(url);
    if let Some(path) = &path {
        create_private(path)?;
    }
    let mut conn = AnyConnection::connect_with(options)
        .await
        .map_err(backend_error)?;
    sqlx::raw_sql(SQLITE_BUSY_TIMEOUT)
        .execute(&mut conn)
        .await
        .map_err(backend_error)?;
    let row = sqlx::query("PRAGMA journal_mode = WAL")
        .fetch_one(&mut conn)
        .await
        .map_err(backend_error)?;
    let mode: String = row.try_get(0).map_err(backend_error)?;
    conn.close().await.map_err(backend_error)?;
    if let Some(path) = &path {
        for suffix in ["", "-wal", "-shm"] {
            restrict(&std::path::PathBuf::from(format!(
                "{}{suffix}",
                path.display()
            )))?;
        }
    }
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "SQLite store needs a file database in WAL mode, got journal mode {mode:?}"
        )))
    }
}

/// The file of a `sqlite:` URL (`sqlite://PATH?query`), `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Creates `path` empty with mode 0600 if it does not exist yet.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "creating the database file {}: {e}",
            path.display()
        ))),
    }
}

/// Takes group and other permissions away from `path` if it exists.
fn restrict(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)).map_err(
            |e| StoreError::Backend(format!("restricting {} to its owner: {e}", path.display())),
        )?;
    }
    Ok(())
}
