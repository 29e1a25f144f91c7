//! Runs the store conformance suite (`suite/`) against SQLite and PostgreSQL.
//!
//! Each test gets a fresh location: a SQLite file in a temporary directory, or a new
//! PostgreSQL database (from `ESTUARY_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/test`).
//! PostgreSQL being unreachable fails the PostgreSQL tests; nothing is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod suite;

use std::time::Duration;

/// A hung writer must fail the test, not hang the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    let db = crate::harness::SqliteDb::new();
                    tokio::time::timeout(crate::TEST_TIMEOUT, crate::suite::$test(db.url()))
                        .await
                        .expect("test timed out");
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    let db = crate::harness::PgDb::create().await;
                    tokio::time::timeout(crate::TEST_TIMEOUT, crate::suite::$test(db.url()))
                        .await
                        .expect("test timed out");
                }
            )*
        }
    };
}

on_every_backend!(
    insert_and_get_round_trip,
    duplicate_serial_rejected,
    concurrent_duplicates_fail_only_offenders,
    certificates_by_ski,
    list_filters_limit_offset_newest_first,
    count_certificates,
    set_certificate_status,
    users_add_get_list_remove,
    client_keys_add_get_list_remove,
    concurrent_inserts_group_commit_durable,
    drop_then_reopen,
    bulk_insert_then_lookups,
    tokens_single_use_under_concurrency,
    tokens_listed_and_revoked,
    pending_requests_lifecycle,
    cmc_secrets_add_get_list_remove,
    cmc_nonces_new_then_replayed,
    cmc_nonces_concurrent_exactly_one_new,
    cmc_nonces_batched_distinct_pairs,
    cmc_nonces_pruned_before,
    cmc_nonces_and_certificates_commit_together,
    certificates_claiming_replay_records,
    revoke_once_then_already_revoked,
    revoked_certificates_of_one_ca,
    revocation_state_changes_with_revocations,
    crl_numbers_increase_atomically,
    revocation_seen_across_store_instances,
    audit_append_list_head,
    audit_chain_is_linear_across_instances,
    audit_tampering_is_detected,
    admins_and_console_counts,
);

/// SQLite's one-round-trip commit of certificates with their replay records: a statement
/// that fails inside it (here a trigger refusing one subject) rolls the whole list back on
/// its connection, which stays usable; the failing caller alone gets the error, the others
/// their certificates, and the failed caller's pair is not recorded.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_claiming_commit_rolls_back_a_failed_statement_list() {
    use est_ca::{ReplayPair, Store, StoreError};
    use sqlx::Connection;
    let db = harness::SqliteDb::new();
    let store = std::sync::Arc::new(est_store::SqlStore::connect(db.url()).await.unwrap());
    let mut raw = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON certificates WHEN NEW.subject = 'CN=poison' \
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    let pair = |n: &str| ReplayPair {
        transaction_id: "5".into(),
        sender_nonce: n.as_bytes().to_vec(),
        seen_at: 1_700_000_000,
    };
    for round in 0..3u64 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8u64 {
            let store = store.clone();
            tasks.spawn(async move {
                let mut r = suite::record(suite::serial(round * 100 + i));
                if i == 3 {
                    r.subject = "CN=poison".into();
                }
                let result = store
                    .insert_certificate_claiming(&r, &pair(&format!("{round}-{i}")))
                    .await;
                (i, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.unwrap();
            if i == 3 {
                assert!(
                    matches!(result, Err(StoreError::Backend(_))),
                    "round {round}: got {result:?}"
                );
            } else {
                result.unwrap();
            }
        }
        for i in 0..8u64 {
            let stored = store
                .certificate_by_serial(&suite::serial(round * 100 + i))
                .await
                .unwrap();
            assert_eq!(stored.is_some(), i != 3, "round {round}, certificate {i}");
            // Recorded with its certificate, or (the poisoned one) not at all.
            let fresh = store
                .record_cmc_nonce("5", format!("{round}-{i}").as_bytes(), 1)
                .await
                .unwrap();
            assert_eq!(fresh, i == 3, "round {round}, pair {i}");
        }
    }
    std::sync::Arc::try_unwrap(store).unwrap().close().await;
}

/// The audited group commit (certificates with their audit records, standalone audit records,
/// issue 11 item 4): a row that fails inside it (a trigger refusing one subject) rolls the
/// transaction back, the writer retries the work one by one, the failing caller alone gets the
/// error, everyone else their certificate or record, and the chain has no record of the
/// refused certificate and no gap.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_audited_commit_survives_a_failed_row() {
    use est_ca::{AuditEvent, Store, StoreError, audit_action};
    use sqlx::Connection;
    let db = harness::SqliteDb::new();
    let store = std::sync::Arc::new(est_store::SqlStore::connect(db.url()).await.unwrap());
    let mut raw = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON certificates WHEN NEW.subject = 'CN=poison' \
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    for round in 0..3u64 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8u64 {
            let store = store.clone();
            tasks.spawn(async move {
                let mut r = suite::record(suite::serial(round * 100 + i));
                if i == 3 {
                    r.subject = "CN=poison".into();
                }
                let e = AuditEvent::new(1, "user:a", "192.0.2.1:1", audit_action::CERT_ISSUE)
                    .target(r.serial.clone());
                (i, store.insert_certificate_audited(&r, None, &e).await)
            });
        }
        for i in 0..4u64 {
            let store = store.clone();
            tasks.spawn(async move {
                let e = AuditEvent::new(1, "cli:x", "cli", audit_action::USER_ADD)
                    .target(format!("u{round}-{i}"));
                (100 + i, store.append_audit(&e).await.map(drop))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.unwrap();
            if i == 3 {
                assert!(
                    matches!(result, Err(StoreError::Backend(_))),
                    "round {round}: got {result:?}"
                );
            } else {
                result.unwrap();
            }
        }
    }
    let all = store.list_audit(0, 0).await.unwrap();
    assert_eq!(est_ca::verify_chain(&all).unwrap().0, 3 * (7 + 4));
    for round in 0..3u64 {
        for i in 0..8u64 {
            let serial = suite::serial(round * 100 + i);
            let audited = all.iter().filter(|r| r.event.target == serial).count();
            assert_eq!(
                audited,
                usize::from(i != 3),
                "round {round}, certificate {i}"
            );
        }
    }
    std::sync::Arc::try_unwrap(store).unwrap().close().await;
}
