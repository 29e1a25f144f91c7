//! Revocation and CRL numbers (RFC 5280 §5), through `&dyn Store`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use est_ca::{CertStatus, Revocation, RevokedEntry, Store};
use tokio::task::JoinSet;

use super::{open, record, serial};

/// Revoked once: `true`, the record carries the details, the CRL listing shows it; a second
/// revocation is `false` and keeps the first details; an unknown serial is `false`.
pub async fn revoke_once_then_already_revoked(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let r = record(serial(1));
    store.insert_certificate(&r).await.unwrap();
    store.insert_certificate(&record(serial(2))).await.unwrap();

    assert!(
        store
            .revoke_certificate(&r.serial, 1, 1_700_000_500, Some(1_700_000_100))
            .await
            .unwrap()
    );
    let got = store
        .certificate_by_serial(&r.serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.status, CertStatus::Revoked);
    let details = Revocation {
        revoked_at: 1_700_000_500,
        reason: 1,
        invalidity_date: Some(1_700_000_100),
    };
    assert_eq!(got.revocation, Some(details));

    // Twice: refused, the first revocation stands.
    assert!(
        !store
            .revoke_certificate(&r.serial, 4, 1_700_000_900, None)
            .await
            .unwrap()
    );
    let again = store
        .certificate_by_serial(&r.serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revocation, Some(details));
    assert!(
        !store
            .revoke_certificate(&serial(99), 1, 1_700_000_500, None)
            .await
            .unwrap()
    );
    let other = store
        .certificate_by_serial(&serial(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((other.status, other.revocation), (CertStatus::Valid, None));
    // A revocation time must be a real one (0 means "not revoked").
    assert!(
        store
            .revoke_certificate(&serial(2), 1, 0, None)
            .await
            .is_err()
    );
    sql.close().await;
}

/// The listing holds exactly the revoked certificates of one CA, oldest revocation first, with
/// their details; un-revoking removes an entry.
pub async fn revoked_certificates_of_one_ca(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.revoked_certificates("default").await.unwrap(), vec![]);
    for i in 1..=6 {
        let mut r = record(serial(i));
        if i > 4 {
            r.ca = "devices".into();
        }
        store.insert_certificate(&r).await.unwrap();
    }
    // Revoked out of order; serial 3 stays valid.
    store
        .revoke_certificate(&serial(4), 0, 1_700_000_300, None)
        .await
        .unwrap();
    store
        .revoke_certificate(&serial(1), 9, 1_700_000_400, Some(1_699_999_000))
        .await
        .unwrap();
    store
        .revoke_certificate(&serial(2), 4, 1_700_000_300, None)
        .await
        .unwrap();
    store
        .revoke_certificate(&serial(5), 1, 1_700_000_100, None)
        .await
        .unwrap();
    let entry = |i, revoked_at, reason, invalidity_date| RevokedEntry {
        serial: serial(i),
        revoked_at,
        reason,
        invalidity_date,
    };
    assert_eq!(
        store.revoked_certificates("default").await.unwrap(),
        vec![
            entry(2, 1_700_000_300, 4, None),
            entry(4, 1_700_000_300, 0, None),
            entry(1, 1_700_000_400, 9, Some(1_699_999_000)),
        ]
    );
    assert_eq!(
        store.revoked_certificates("devices").await.unwrap(),
        vec![entry(5, 1_700_000_100, 1, None)]
    );
    assert_eq!(store.revoked_certificates("other").await.unwrap(), vec![]);

    assert!(
        store
            .set_certificate_status(&serial(2), CertStatus::Valid)
            .await
            .unwrap()
    );
    let back = store
        .certificate_by_serial(&serial(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back.status, back.revocation), (CertStatus::Valid, None));
    assert_eq!(
        store.revoked_certificates("default").await.unwrap(),
        vec![
            entry(4, 1_700_000_300, 0, None),
            entry(1, 1_700_000_400, 9, Some(1_699_999_000)),
        ]
    );
    sql.close().await;
}

/// The state is (count, latest revocation time) per CA and changes with each revocation.
pub async fn revocation_state_changes_with_revocations(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.revocation_state("default").await.unwrap(), (0, 0));
    for i in 1..=3 {
        store.insert_certificate(&record(serial(i))).await.unwrap();
    }
    store
        .revoke_certificate(&serial(1), 1, 1_700_000_200, None)
        .await
        .unwrap();
    assert_eq!(
        store.revocation_state("default").await.unwrap(),
        (1, 1_700_000_200)
    );
    // Revoked "earlier" (a clock behind): the count still moves.
    store
        .revoke_certificate(&serial(2), 1, 1_700_000_100, None)
        .await
        .unwrap();
    assert_eq!(
        store.revocation_state("default").await.unwrap(),
        (2, 1_700_000_200)
    );
    store
        .revoke_certificate(&serial(3), 1, 1_700_000_300, None)
        .await
        .unwrap();
    assert_eq!(
        store.revocation_state("default").await.unwrap(),
        (3, 1_700_000_300)
    );
    // A refused second revocation changes nothing; other CAs are separate.
    store
        .revoke_certificate(&serial(3), 1, 1_700_000_900, None)
        .await
        .unwrap();
    assert_eq!(
        store.revocation_state("default").await.unwrap(),
        (3, 1_700_000_300)
    );
    assert_eq!(store.revocation_state("devices").await.unwrap(), (0, 0));
    sql.close().await;
}

/// CRL numbers start at 1, count up per CA, survive reopening, and 16 concurrent callers get
/// 16 distinct numbers (the increment is atomic in the database).
pub async fn crl_numbers_increase_atomically(url: &str) {
    let sql = Arc::new(open(url).await);
    assert_eq!(sql.next_crl_number("default").await.unwrap(), 1);
    assert_eq!(sql.next_crl_number("default").await.unwrap(), 2);
    assert_eq!(sql.next_crl_number("devices").await.unwrap(), 1);

    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let store = Arc::clone(&sql);
        tasks.spawn(async move { store.next_crl_number("default").await.unwrap() });
    }
    let mut seen = HashSet::new();
    while let Some(n) = tasks.join_next().await {
        assert!(seen.insert(n.unwrap()), "a CRL number was handed out twice");
    }
    assert_eq!(seen, (3..=18).collect::<HashSet<u64>>());
    Arc::into_inner(sql).unwrap().close().await;

    let reopened = open(url).await;
    assert_eq!(reopened.next_crl_number("default").await.unwrap(), 19);
    reopened.close().await;
}

/// Two store instances on one database (two nodes, or a server and `estuary cert revoke`):
/// a revocation through one is seen by the other, and they share the CRL counter.
pub async fn revocation_seen_across_store_instances(url: &str) {
    let a = open(url).await;
    let b = open(url).await;
    a.insert_certificate(&record(serial(1))).await.unwrap();
    assert_eq!(b.revocation_state("default").await.unwrap(), (0, 0));
    assert!(
        b.revoke_certificate(&serial(1), 1, 1_700_000_200, None)
            .await
            .unwrap()
    );
    assert!(
        !a.revoke_certificate(&serial(1), 1, 1_700_000_300, None)
            .await
            .unwrap()
    );
    assert_eq!(
        a.revocation_state("default").await.unwrap(),
        (1, 1_700_000_200)
    );
    assert_eq!(a.revoked_certificates("default").await.unwrap().len(), 1);
    let n = a.next_crl_number("default").await.unwrap();
    assert_eq!(b.next_crl_number("default").await.unwrap(), n + 1);
    a.close().await;
    b.close().await;
}
