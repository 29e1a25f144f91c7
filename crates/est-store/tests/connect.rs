//! Opening stores: URL handling and refusals that do not depend on a running database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use est_ca::{Store, StoreError};
use est_store::{Backend, SqlStore};

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_file_is_created_if_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let store = SqlStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    assert_eq!(store.backend(), Backend::Sqlite);
    assert_eq!(store.count_certificates().await.unwrap(), 0);
    store.close().await;
    // The short form works too, and reopening runs no migration twice.
    let store = SqlStore::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_in_memory_is_refused() {
    let err = SqlStore::connect("sqlite::memory:").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("WAL")),
        "got {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_scheme_is_refused_without_echoing_the_url() {
    let err = SqlStore::connect("mysql://root:hunter2@db/estuary")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "got {err:?}");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_backend_is_reported() {
    let db = harness::PgDb::create().await;
    let store = SqlStore::connect(db.url()).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    store.close().await;
}
