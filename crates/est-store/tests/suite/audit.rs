//! The hash-chained audit trail (issue 11, item 4), through `&dyn Store`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use est_ca::{
    AUDIT_GENESIS, AuditEvent, ChainBreak, ReplayPair, Store, StoreError, audit_action,
    verify_chain,
};
use sqlx::Connection;
use tokio::task::JoinSet;

use super::{open, record};

fn serial(i: u64) -> String {
    format!("{:040x}", 0x6a00_0000_0000_0000_u64 + i)
}

fn event(action: &str, target: &str) -> AuditEvent {
    AuditEvent::new(1_700_000_000, "cli:tester", "cli", action)
        .target(target)
        .details("why: a test")
}

/// Appends chain from the genesis value in order; list pages by sequence number; the head is
/// the newest record; the whole trail verifies.
pub async fn audit_append_list_head(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert!(store.audit_head().await.unwrap().is_none());
    assert!(store.list_audit(0, 0).await.unwrap().is_empty());
    let first = store
        .append_audit(&event(audit_action::USER_ADD, "alice"))
        .await
        .unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(first.prev_hash, AUDIT_GENESIS);
    let second = store
        .append_audit(&event(audit_action::USER_REMOVE, "alice").label("l"))
        .await
        .unwrap();
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev_hash, first.hash);
    let all = store.list_audit(0, 0).await.unwrap();
    assert_eq!(all, vec![first.clone(), second.clone()]);
    assert_eq!(store.list_audit(1, 10).await.unwrap(), vec![second.clone()]);
    assert_eq!(store.list_audit(0, 1).await.unwrap(), vec![first]);
    assert_eq!(store.audit_head().await.unwrap(), Some(second.clone()));
    assert_eq!(verify_chain(&all).unwrap(), (2, second.hash));
    sql.close().await;
}

/// Certificates with their audit records, standalone records and revocations, concurrently
/// from two store instances on one database (two nodes): one linear chain that verifies, one
/// `cert.issue` record per certificate stored and none for a certificate refused (duplicate
/// serial, replayed pair).
pub async fn audit_chain_is_linear_across_instances(url: &str) {
    let a = Arc::new(open(url).await);
    let b = Arc::new(open(url).await);
    let mut tasks = JoinSet::new();
    for i in 0..48u64 {
        let store: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            let r = record(serial(i));
            let e = event(audit_action::CERT_ISSUE, &r.serial);
            store
                .insert_certificate_audited(&r, None, &e)
                .await
                .unwrap();
        });
    }
    for i in 0..16u64 {
        let store: Arc<dyn Store> = if i % 2 == 0 { b.clone() } else { a.clone() };
        tasks.spawn(async move {
            store
                .append_audit(&event(audit_action::TOKEN_CREATE, &format!("tok{i}")))
                .await
                .unwrap();
        });
    }
    for i in 0..8u64 {
        let store: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            let r = record(serial(1_000 + i));
            let pair = ReplayPair {
                transaction_id: i.to_string(),
                sender_nonce: vec![1, 2, 3],
                seen_at: 1_700_000_000,
            };
            let e = event(audit_action::CERT_ISSUE, &r.serial);
            store
                .insert_certificate_audited(&r, Some(&pair), &e)
                .await
                .unwrap();
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let store: &dyn Store = a.as_ref();
    // Refused: nothing is audited.
    let dup = record(serial(0));
    let refused = store
        .insert_certificate_audited(&dup, None, &event(audit_action::CERT_ISSUE, "dup"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::DuplicateSerial)),
        "{refused:?}"
    );
    let replay = ReplayPair {
        transaction_id: "0".into(),
        sender_nonce: vec![1, 2, 3],
        seen_at: 1_700_000_000,
    };
    let replayed = store
        .insert_certificate_audited(
            &record(serial(2_000)),
            Some(&replay),
            &event(audit_action::CERT_ISSUE, "replayed"),
        )
        .await;
    assert!(
        matches!(replayed, Err(StoreError::Replayed)),
        "{replayed:?}"
    );
    // Revocation and its record in one commit; a second revocation changes nothing and is
    // not audited.
    let revoke = event(audit_action::CERT_REVOKE, &serial(3)).details("reason=keyCompromise");
    assert!(
        store
            .revoke_certificate_audited(&serial(3), 1, 1_700_000_100, None, &revoke)
            .await
            .unwrap()
    );
    assert!(
        !b.revoke_certificate_audited(&serial(3), 1, 1_700_000_100, None, &revoke)
            .await
            .unwrap()
    );

    let all = b.list_audit(0, 0).await.unwrap();
    assert_eq!(verify_chain(&all).unwrap().0, 48 + 16 + 8 + 1);
    let issued: HashSet<&str> = all
        .iter()
        .filter(|r| r.event.action == audit_action::CERT_ISSUE)
        .map(|r| r.event.target.as_str())
        .collect();
    assert_eq!(issued.len(), 48 + 8);
    for i in (0..48).chain(1_000..1_008) {
        assert!(issued.contains(serial(i).as_str()), "record of {i}");
    }
    assert!(!issued.contains("dup") && !issued.contains("replayed"));
    let revocations: Vec<_> = all
        .iter()
        .filter(|r| r.event.action == audit_action::CERT_REVOKE)
        .collect();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].event.details, "reason=keyCompromise");
    // Paging gives the same records.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = a.list_audit(after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    Arc::into_inner(a).unwrap().close().await;
    Arc::into_inner(b).unwrap().close().await;
}

/// Editing or deleting a row behind the store's back is found, at the record concerned.
pub async fn audit_tampering_is_detected(url: &str) {
    let sql = open(url).await;
    for i in 0..5 {
        sql.append_audit(&event(audit_action::USER_ADD, &format!("u{i}")))
            .await
            .unwrap();
    }
    let mut raw = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query("UPDATE audit_log SET details = 'forged' WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    let all = sql.list_audit(0, 0).await.unwrap();
    assert_eq!(verify_chain(&all), Err(ChainBreak::Edited { seq: 3 }));
    sqlx::query("DELETE FROM audit_log WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    let all = sql.list_audit(0, 0).await.unwrap();
    assert_eq!(
        verify_chain(&all),
        Err(ChainBreak::Gap {
            expected: 3,
            found: 4
        })
    );
    raw.close().await.unwrap();
    sql.close().await;
}
