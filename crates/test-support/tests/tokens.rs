//! One-time enrollment tokens over real TLS (SEC-1, SEC-9): valid once, on their label, before
//! they expire, for their subject; single use holds under concurrent requests on SQLite and
//! PostgreSQL (the store's conditional UPDATE decides).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use est_ca::{KeyType, Store, TokenRecord};
use test_support::*;

const P10: &str = "application/pkcs10";

async fn new_token(s: &TestServer, label: &str, subject: &str, ttl: i64) -> (String, String) {
    let mut raw = [0u8; 8];
    openssl::rand::rand_bytes(&mut raw).unwrap();
    let id = format!("tok_{}", hex::encode(raw));
    let secret = format!("secret-{}", hex::encode(raw));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s.store
        .add_token(&TokenRecord {
            id: id.clone(),
            label: label.into(),
            secret_sha256: est_ca::token_secret_hash(secret.as_bytes()),
            subject: subject.into(),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
            used_by: String::new(),
        })
        .await
        .unwrap();
    (id, secret)
}

async fn enroll(s: &TestServer, path: &str, cred: (&str, &str), cn: &str) -> RawResponse {
    let csr = make_csr(&key(KeyType::P256), cn, &[], None);
    raw_request(
        s,
        &RawTls::default(),
        &enroll_request(path, Some(cred), P10, b64(&csr).as_bytes()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn token_works_once_on_its_label_for_its_subject() {
    let s = TestServer::start(ServerOptions::default()).await;
    let devices = "/.well-known/est/devices/simpleenroll";
    let (id, secret) = new_token(&s, "devices", "CN=dev1.example", 3600).await;
    // Wrong secret, wrong label: 401, and the token survives.
    let r = enroll(&s, devices, (&id, "wrong-secret"), "dev1.example").await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = enroll(
        &s,
        "/.well-known/est/simpleenroll",
        (&id, &secret),
        "dev1.example",
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // Another subject: 403, not consumed.
    let r = enroll(&s, devices, (&id, &secret), "dev2.example").await;
    assert_eq!(r.status, 403, "{}", r.text());
    // The one use.
    let r = enroll(&s, devices, (&id, &secret), "dev1.example").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = s.store.get_token(&id).await.unwrap().unwrap();
    assert!(t.used_at.is_some());
    assert_eq!(t.used_by, format!("token:{id}"));
    assert_eq!(t.secret_sha256.len(), 64);
    assert!(!t.secret_sha256.contains(&secret));
    // Never again.
    let r = enroll(&s, devices, (&id, &secret), "dev1.example").await;
    assert_eq!(r.status, 401, "{}", r.text());
    // Expired tokens do nothing.
    let (old, old_secret) = new_token(&s, "devices", "", -1).await;
    let r = enroll(&s, devices, (&old, &old_secret), "x.example").await;
    assert_eq!(r.status, 401, "{}", r.text());
    s.shutdown().await;
}

async fn race(store: StoreKind) {
    let s = Arc::new(
        TestServer::start(ServerOptions {
            store,
            ..Default::default()
        })
        .await,
    );
    let (id, secret) = new_token(&s, "", "", 3600).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (s, id, secret) = (s.clone(), id.clone(), secret.clone());
        tasks.spawn(async move {
            enroll(
                &s,
                "/.well-known/est/simpleenroll",
                (&id, &secret),
                &format!("race-{i}.example"),
            )
            .await
            .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(st) = tasks.join_next().await {
        statuses.push(st.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|&&c| c == 200).count(),
        1,
        "exactly one winner: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&c| c == 200 || c == 401 || c == 403),
        "{statuses:?}"
    );
    let issued = s
        .store
        .list_certificates(&est_ca::CertFilter {
            requester: Some(format!("token:{id}")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(issued.len(), 1, "one certificate for one token");
    Arc::try_unwrap(s).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uses_of_one_token_exactly_one_wins_sqlite() {
    race(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uses_of_one_token_exactly_one_wins_postgres() {
    race(StoreKind::Postgres(pg_url())).await;
}
