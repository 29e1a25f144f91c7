//! Throwaway databases for the conformance suite: a SQLite file in a temporary directory, or a
//! fresh PostgreSQL database per test (created from `ESTUARY_TEST_PG`, dropped afterwards), so
//! tests run in parallel without seeing each other's rows.
//!
//! PostgreSQL being unreachable is a test failure, never a skip: a suite that silently skips one
//! backend proves nothing about it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::hash::{BuildHasher, Hasher};

use sqlx::{AnyConnection, Connection};

/// Default for `ESTUARY_TEST_PG`: the local server with trust authentication.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A SQLite store location that lives as long as this value.
#[derive(Debug)]
pub struct SqliteDb {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    url: String,
}

impl SqliteDb {
    pub fn new() -> SqliteDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.db");
        let url = format!("sqlite://{}", path.display());
        SqliteDb {
            _dir: dir,
            path,
            url,
        }
    }

    /// The database file (its WAL is next to it, with `-wal` appended).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A PostgreSQL database created for one test and dropped (best effort) when this value is.
#[derive(Debug)]
pub struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        sqlx::any::install_default_drivers();
        let admin_url =
            std::env::var("ESTUARY_TEST_PG").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let mut admin = AnyConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for the est-store tests and is unreachable at {} ({e}). \
                 Start it, or point ESTUARY_TEST_PG at a server where this user may CREATE DATABASE.",
                redact(&admin_url)
            )
        });
        let name = format!("estuary_t_{}", random_hex());
        // `name` is ours: a fixed prefix and hex digits, safe to splice.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redact(&admin_url)));
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        PgDb {
            admin_url,
            name,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDb {
    /// Drops the database from a separate thread with its own runtime: `Drop` cannot await,
    /// and this also runs when the test panicked. `WITH (FORCE)` ends connections a failed test
    /// left open.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = AnyConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()?;
                admin.close().await.ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// 64 random bits as hex, from the standard library's randomly keyed hasher.
pub fn random_hex() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}
