//! Tests that need the store's insides: the session settings on pooled connections, the query
//! plans behind the O(log n) promise, and the writer's shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::Duration;

use est_ca::{CertFilter, CertStatus};
use sqlx::Row;
use sqlx::pool::PoolConnection;

use crate::{Backend, SqlStore, sql};

async fn pragma(conn: &mut PoolConnection<sqlx::Any>, name: &'static str) -> String {
    let row = sqlx::query(name).fetch_one(&mut **conn).await.unwrap();
    match row.try_get::<String, _>(0) {
        Ok(text) => text,
        Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_connections_are_wal_full_sync() {
    let db = harness::SqliteDb::new();
    let store = SqlStore::connect(db.url()).await.unwrap();
    for pool in [&store.read_pool, &store.write_pool] {
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(pragma(&mut conn, "PRAGMA journal_mode").await, "wal");
        // 2 = FULL: every commit fsyncs the WAL.
        assert_eq!(pragma(&mut conn, "PRAGMA synchronous").await, "2");
        assert_eq!(pragma(&mut conn, "PRAGMA foreign_keys").await, "1");
        assert_eq!(pragma(&mut conn, "PRAGMA busy_timeout").await, "5000");
    }
    // Readers keep a small page cache (resident memory, issue 12 item 7).
    let mut reader = store.read_pool.acquire().await.unwrap();
    assert_eq!(pragma(&mut reader, "PRAGMA cache_size").await, "-512");
    drop(reader);
    // The writer leaves checkpoints to the checkpoint task and keeps scratch data in memory.
    let mut writer = store.write_pool.acquire().await.unwrap();
    assert_eq!(pragma(&mut writer, "PRAGMA wal_autocheckpoint").await, "0");
    assert_eq!(pragma(&mut writer, "PRAGMA temp_store").await, "2");
    assert_eq!(pragma(&mut writer, "PRAGMA cache_size").await, "-8192");
    drop(writer);
    store.close().await;
}

/// A device certificate record numbered `i` (serial and key identifier `i` in hex), with a
/// DER body of `der_len` bytes.
fn device_record(i: u64, der_len: usize) -> est_ca::CertRecord {
    est_ca::CertRecord {
        serial: format!("{i:040x}"),
        ca: "default".into(),
        subject: format!("CN=device-{i}"),
        issuer: "CN=CA".into(),
        ski: format!("{i:040x}"),
        spki_sha256: format!("{i:064x}"),
        requester: "user:alice".into(),
        label: String::new(),
        not_before: 0,
        not_after: 1,
        issued_at: 0,
        status: CertStatus::Valid,
        revocation: None,
        der: vec![0x30; der_len],
    }
}

/// With the writer's automatic checkpoints off, only the checkpoint task moves committed pages
/// from the WAL into the database file: if it did not run, the file would stay at its empty
/// size while the WAL grew without bound.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_checkpoints_run_after_commits() {
    use est_ca::Store;
    let db = harness::SqliteDb::new();
    let store = std::sync::Arc::new(SqlStore::connect(db.url()).await.unwrap());
    let empty_size = std::fs::metadata(db.path()).unwrap().len();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2_000u64 {
        let store = std::sync::Arc::clone(&store);
        tasks.spawn(async move { store.insert_certificate(&device_record(i, 500)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap();
    }
    // 2,000 rows of ~700 bytes: well over 1 MB once in the database file.
    tokio::time::timeout(Duration::from_secs(10), async {
        while std::fs::metadata(db.path()).unwrap().len() < empty_size + 1_000_000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("no checkpoint copied the committed rows into the database file");
    std::sync::Arc::into_inner(store).unwrap().close().await;
}

/// Under sustained writes with readers always active, the WAL is restarted and stays bounded
/// (it grew without limit before: passive checkpoints never got a quiet moment to let SQLite
/// start it over).
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_wal_stays_bounded_under_load_with_readers() {
    use est_ca::Store;
    let db = harness::SqliteDb::new();
    let options = crate::SqlStoreOptions {
        wal_restart_pages: 256,
        ..Default::default()
    };
    let store = std::sync::Arc::new(SqlStore::connect_with(db.url(), options).await.unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.count_certificates().await.unwrap();
                store.get_user("alice").await.unwrap();
            }
        });
    }
    let mut max_wal = 0;
    let wal = std::path::PathBuf::from(format!("{}-wal", db.path().display()));
    for round in 0..100u64 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200u64 {
            let store = store.clone();
            let n = round * 1000 + i;
            tasks.spawn(async move {
                // Randomly spread serials and key identifiers, as real ones are.
                let record = est_ca::CertRecord {
                    serial: format!("{:040x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    ski: format!("{:040x}", n.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)),
                    ..device_record(n, 1000)
                };
                store.insert_certificate(&record).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap().unwrap();
        }
        max_wal = max_wal.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(joined) = readers.join_next().await {
        joined.unwrap();
    }
    let db_size = std::fs::metadata(db.path()).unwrap().len();
    // 20,000 certificates of ~1.2 kB: the database holds over 20 MB, and the WAL grew to
    // 130 MB here without restarts; restarted past 256 pages it stays near what one checkpoint
    // interval writes (about 20 MB here).
    assert!(db_size > 20_000_000, "database {db_size} bytes");
    assert!(max_wal < 48 << 20, "WAL reached {max_wal} bytes");
    std::sync::Arc::into_inner(store).unwrap().close().await;
}

/// Even on a database whose default is `synchronous_commit = off`, the store's writes wait for
/// the WAL flush.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_commits_are_synchronous() {
    use sqlx::Connection;
    let db = harness::PgDb::create().await;
    let mut admin = sqlx::AnyConnection::connect(db.url()).await.unwrap();
    let name: String = sqlx::query("SELECT current_database()::text")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let alter = format!("ALTER DATABASE {name} SET synchronous_commit = off");
    sqlx::raw_sql(sqlx::AssertSqlSafe(alter))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();

    let store = SqlStore::connect(db.url()).await.unwrap();
    let mut reader = store.read_pool.acquire().await.unwrap();
    assert_eq!(
        pragma(&mut reader, "SHOW synchronous_commit").await,
        "off",
        "the setup took"
    );
    let mut writer = store.write_pool.acquire().await.unwrap();
    assert_eq!(pragma(&mut writer, "SHOW synchronous_commit").await, "on");
    drop((reader, writer));
    store.close().await;
}

/// The store's lookups, as (label, SQL, bound values).
fn lookups() -> Vec<(String, sql::DynamicQuery)> {
    let text = |s: &str| sql::Arg::Text(s.to_owned());
    let fixed = |label: &str, sql: &str, args: Vec<sql::Arg>| {
        (
            label.to_owned(),
            sql::DynamicQuery {
                sql: sql.to_owned(),
                args,
            },
        )
    };
    let mut out = vec![
        fixed("by serial", sql::SELECT_BY_SERIAL, vec![text("00ff")]),
        fixed("by ski", sql::SELECT_BY_SKI, vec![text("00ff")]),
        fixed(
            "revoke",
            sql::REVOKE,
            vec![
                sql::Arg::Int(1_700_000_000),
                sql::Arg::Int(1),
                sql::Arg::Int(0),
                text("00ff"),
            ],
        ),
        fixed("un-revoke", sql::UPDATE_STATUS_VALID, vec![text("00ff")]),
        fixed(
            "revoked of a ca",
            sql::SELECT_REVOKED,
            vec![text("default")],
        ),
        fixed(
            "revocation state",
            sql::SELECT_REVOCATION_STATE,
            vec![text("default")],
        ),
        fixed("count", sql::SELECT_COUNT, vec![]),
        fixed("get user", sql::SELECT_USER, vec![text("bob")]),
        fixed("remove user", sql::DELETE_USER, vec![text("bob")]),
        fixed(
            "get cmc secret",
            sql::SELECT_CMC_SECRET,
            vec![text("dev-1")],
        ),
        fixed(
            "remove cmc secret",
            sql::DELETE_CMC_SECRET,
            vec![text("dev-1")],
        ),
        fixed(
            "prune cmc nonces",
            sql::PRUNE_CMC_NONCES,
            vec![sql::Arg::Int(1_700_000_000)],
        ),
    ];
    let filters = [
        (
            "list newest",
            CertFilter {
                limit: 50,
                ..Default::default()
            },
        ),
        (
            "list by ca",
            CertFilter {
                ca: Some("a".into()),
                limit: 50,
                ..Default::default()
            },
        ),
        (
            "list by subject",
            CertFilter {
                subject: Some("CN=x".into()),
                limit: 50,
                ..Default::default()
            },
        ),
        (
            "renewal lookup",
            CertFilter {
                requester: Some("user:a".into()),
                subject: Some("CN=x".into()),
                valid_at: Some(1),
                status: Some(CertStatus::Valid),
                limit: 2,
                ..Default::default()
            },
        ),
        (
            "list by ca and status",
            CertFilter {
                ca: Some("a".into()),
                status: Some(CertStatus::Revoked),
                limit: 50,
                ..Default::default()
            },
        ),
    ];
    for (label, filter) in filters {
        out.push((label.to_owned(), sql::list_certificates(&filter)));
    }
    out
}

/// Every lookup on SQLite is an index search (or a backwards index scan stopped by LIMIT), and
/// no listing sorts the table: that is what keeps issuance as fast with a million certificates
/// as with none. The SQLite planner does not depend on table size without ANALYZE data, so an
/// empty database shows the production plans.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_lookups_use_indexes() {
    let db = harness::SqliteDb::new();
    let store = SqlStore::connect(db.url()).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    for (label, query) in lookups() {
        let rows = query
            .into_query("EXPLAIN QUERY PLAN ")
            .fetch_all(&store.read_pool)
            .await
            .unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        for step in &plan {
            let on_table = step.contains("certificates")
                || step.contains("users")
                || step.contains("store_meta")
                || step.contains("cmc_");
            let indexed = step.contains("USING INDEX")
                || step.contains("USING COVERING INDEX")
                || step.contains("USING INTEGER PRIMARY KEY")
                || step.contains("USING PRIMARY KEY");
            assert!(
                !on_table || indexed,
                "{label}: unindexed step {step:?} in {plan:?}"
            );
            // "FOR LAST TERM OF ORDER BY" only breaks ties in issued_at, group by group, and
            // stops at the LIMIT; a plain "FOR ORDER BY" would sort every matching row first.
            assert_ne!(
                step, "USE TEMP B-TREE FOR ORDER BY",
                "{label}: sorts all matches: {plan:?}"
            );
        }
    }
    store.close().await;
}

/// The same on PostgreSQL, with sequential scans and full sorts disabled: if a lookup still
/// needs one, or reads an index without an index condition, no index serves it. (On a near-empty table the planner would rightly prefer a
/// sequential scan, so this checks the indexes exist and fit, not the planner's choice.)
#[tokio::test(flavor = "multi_thread")]
async fn postgres_lookups_use_indexes() {
    let db = harness::PgDb::create().await;
    let store = SqlStore::connect(db.url()).await.unwrap();
    let mut conn = store.read_pool.acquire().await.unwrap();
    sqlx::raw_sql("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql("SET enable_sort = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (label, query) in lookups() {
        let rows = query
            .into_query("EXPLAIN ")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap())
            .collect();
        let plan = plan.join("\n");
        assert!(
            !plan.contains("Seq Scan"),
            "{label}: sequential scan:\n{plan}"
        );
        // Without a condition on the index, an "Index Scan" reads the whole index.
        assert!(
            plan.contains("Index Cond") || label == "list newest",
            "{label}: no index condition:\n{plan}"
        );
        let full_sort = plan
            .lines()
            .map(|line| line.trim_start().trim_start_matches("->").trim_start())
            .any(|node| {
                node.strip_prefix("Sort")
                    .is_some_and(|rest| rest.trim_start().starts_with('('))
            });
        assert!(!full_sort, "{label}: sorts all matches:\n{plan}");
    }
    drop(conn);
    store.close().await;
}

/// Dropping the store closes the insert queue; the writer then stops and closes its pool.
#[tokio::test(flavor = "multi_thread")]
async fn writer_stops_when_store_is_dropped() {
    let db = harness::SqliteDb::new();
    let store = SqlStore::connect(db.url()).await.unwrap();
    let write_pool = store.write_pool.clone();
    assert!(!write_pool.is_closed());
    drop(store);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !write_pool.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the writer did not stop after the store was dropped");
}

/// An INSERT as versions before migration 0006 made them (no revocation columns).
async fn insert_without_revocation_columns(pool: &sqlx::AnyPool, r: &est_ca::CertRecord) {
    sqlx::query(
        "INSERT INTO certificates (serial, ca, subject, issuer, ski, spki_sha256, requester, \
         not_before, not_after, issued_at, status, der) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(r.serial.as_str())
    .bind(r.ca.as_str())
    .bind(r.subject.as_str())
    .bind(r.issuer.as_str())
    .bind(r.ski.as_str())
    .bind(r.spki_sha256.as_str())
    .bind(r.requester.as_str())
    .bind(r.not_before)
    .bind(r.not_after)
    .bind(r.issued_at)
    .bind(r.status.as_str())
    .bind(r.der.as_slice())
    .execute(pool)
    .await
    .unwrap();
}

/// A certificate revoked before migration 0006 (status only, no details) gets the upgrade time
/// as its revocation time and reason unspecified, so it is on the CRL; valid ones stay valid.
async fn revoked_before_0006_are_listed_after_it(url: &str) {
    use est_ca::Store;
    sqlx::any::install_default_drivers();
    let (backend, url) = Backend::from_url(url).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        crate::migrator_of(backend, &crate::MIGRATIONS[..5])
            .run(&pool)
            .await
            .unwrap();
        let mut revoked = device_record(1, 10);
        revoked.status = CertStatus::Revoked;
        insert_without_revocation_columns(&pool, &revoked).await;
        insert_without_revocation_columns(&pool, &device_record(2, 10)).await;
        pool.close().await;
    }
    let store = SqlStore::connect(&url).await.unwrap();
    let listed = store.revoked_certificates("default").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].serial, format!("{:040x}", 1));
    assert!(listed[0].revoked_at >= before, "{listed:?}");
    assert_eq!((listed[0].reason, listed[0].invalidity_date), (0, None));
    let valid = store
        .certificate_by_serial(&format!("{:040x}", 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((valid.status, valid.revocation), (CertStatus::Valid, None));
    assert_eq!(store.revocation_state("default").await.unwrap().0, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_revoked_before_0006_are_listed_after_it() {
    let db = harness::SqliteDb::new();
    revoked_before_0006_are_listed_after_it(db.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_revoked_before_0006_are_listed_after_it() {
    let db = harness::PgDb::create().await;
    revoked_before_0006_are_listed_after_it(db.url()).await;
}

/// A store made by the previous version (schema v3, the count kept by the writer's own UPDATE)
/// keeps an exact count once migration 0004 moves the counting into a trigger.
async fn count_survives_the_upgrade_to_the_count_trigger(url: &str) {
    use est_ca::Store;
    sqlx::any::install_default_drivers();
    let (backend, url) = Backend::from_url(url).unwrap();
    let record = |i: u64| device_record(i, 100);
    {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        crate::migrator_of(backend, &crate::MIGRATIONS[..3])
            .run(&pool)
            .await
            .unwrap();
        // What the v3 writer did: the insert (of the v3 columns), then its own count update.
        insert_without_revocation_columns(&pool, &record(1)).await;
        sqlx::query("UPDATE store_meta SET certificate_count = certificate_count + 1 WHERE id = 1")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let store = SqlStore::connect(&url).await.unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), 1);
    store.insert_certificate(&record(2)).await.unwrap();
    assert!(store.insert_certificate(&record(2)).await.is_err());
    store
        .bulk_insert(&[record(3), record(4), record(5)])
        .await
        .unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), 5);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_count_survives_the_upgrade_to_the_count_trigger() {
    let db = harness::SqliteDb::new();
    count_survives_the_upgrade_to_the_count_trigger(db.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_count_survives_the_upgrade_to_the_count_trigger() {
    let db = harness::PgDb::create().await;
    count_survives_the_upgrade_to_the_count_trigger(db.url()).await;
}

/// Issue 12: the database, its WAL and its shared-memory file are owner-only (0600) whatever
/// the umask, and a database file found group/world-readable is restricted on open.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let wal = |p: &std::path::Path| std::path::PathBuf::from(format!("{}-wal", p.display()));
    let shm = |p: &std::path::Path| std::path::PathBuf::from(format!("{}-shm", p.display()));
    // A new database.
    let db = harness::SqliteDb::new();
    let store = SqlStore::connect(db.url()).await.unwrap();
    use est_ca::Store;
    store.record_cmc_nonce("1", b"n", 1).await.unwrap();
    for p in [db.path().to_path_buf(), wal(db.path()), shm(db.path())] {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    store.close().await;
    // An existing one, left 0644 by an older version or by hand.
    std::fs::set_permissions(db.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqlStore::connect(db.url()).await.unwrap();
    store.record_cmc_nonce("1", b"m", 1).await.unwrap();
    assert_eq!(mode(db.path()), 0o600);
    assert_eq!(mode(&wal(db.path())), 0o600);
    store.close().await;
}
