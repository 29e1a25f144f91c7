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
);
