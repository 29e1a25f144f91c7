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

/// A Full PKI Request (PKCS#10 with its SKI, signed with its own key, CMC-17) with a fresh
/// transactionId and senderNonce.
fn full_pki_request(cn: &str) -> Vec<u8> {
    use est_cmc::client::{CertRequestBody, RequestOptions, RequestSigner};
    let key = est_client::generate_key(est_client::KeyKind::P256).unwrap();
    let ski = est_client::subject_key_id(&key).unwrap();
    let csr = est_client::build_csr_full(
        &key,
        &format!("CN={cn}"),
        &[],
        None,
        vec![est_client::subject_key_id_extension(&ski).unwrap()],
        Vec::new(),
    )
    .unwrap();
    let opts = RequestOptions::random().unwrap();
    let pki = est_cmc::client::build_pki_data(&opts, &CertRequestBody::Pkcs10(csr), &key).unwrap();
    est_cmc::client::sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &key,
            key_id: &ski,
        },
    )
    .unwrap()
}

async fn full_cmc(s: &TestServer, label: &str, cred: (&str, &str), der: &[u8]) -> u16 {
    let cfg = est_client::ClientConfig {
        url: s.url(),
        label: (!label.is_empty()).then(|| label.into()),
        trust: est_client::Trust::Explicit(vec![s.pki.root_x509()]),
        identity: None,
        basic: Some((cred.0.into(), zeroize::Zeroizing::new(cred.1.into()))),
        max_tls12: false,
        http_auth: Default::default(),
    };
    let mut c = est_client::EstClient::new(cfg)
        .unwrap()
        .connect()
        .await
        .unwrap();
    match c.full_cmc(der).await {
        Ok((status, _)) => status,
        Err(est_client::ClientError::Status { status, .. }) => status,
        Err(e) => panic!("/fullcmc: {e}"),
    }
}

/// CMC-53 with one-time tokens and with passwords: a replayed /fullcmc request issues
/// nothing, and a replay sent with a fresh token does not spend that token (the replay check
/// comes before authorization spends it); the token then works for its own request.
#[tokio::test(flavor = "multi_thread")]
async fn fullcmc_replays_issue_nothing_and_spend_no_token() {
    let s = TestServer::start(ServerOptions::default()).await;
    let cn = "tok-cmc.example";
    let (id1, secret1) = new_token(&s, "devices", &format!("CN={cn}"), 3600).await;
    let req = full_pki_request(cn);
    assert_eq!(full_cmc(&s, "devices", (&id1, &secret1), &req).await, 200);
    let issued = s.store.count_certificates().await.unwrap();

    let (id2, secret2) = new_token(&s, "devices", &format!("CN={cn}"), 3600).await;
    assert_eq!(full_cmc(&s, "devices", (&id2, &secret2), &req).await, 400);
    assert_eq!(s.store.count_certificates().await.unwrap(), issued);
    // The second token is unspent: it enrolls once, then it is used up.
    let fresh = full_pki_request(cn);
    assert_eq!(full_cmc(&s, "devices", (&id2, &secret2), &fresh).await, 200);
    assert_eq!(s.store.count_certificates().await.unwrap(), issued + 1);
    let again = full_pki_request(cn);
    assert_eq!(full_cmc(&s, "devices", (&id2, &secret2), &again).await, 401);

    // A password-authenticated request (its pair rides in the certificate's commit): the
    // replay is refused and issues nothing.
    let req = full_pki_request("alice-cmc.example");
    assert_eq!(full_cmc(&s, "", ALICE, &req).await, 200);
    let issued = s.store.count_certificates().await.unwrap();
    for _ in 0..2 {
        assert_eq!(full_cmc(&s, "", ALICE, &req).await, 400);
    }
    assert_eq!(s.store.count_certificates().await.unwrap(), issued);
}
