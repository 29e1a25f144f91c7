//! Manual approval over real TLS (EST-49, EST-91, EST-92): 202 with Retry-After, retries
//! recognised by identity + label + key + subject (not CSR bytes), approve → the retry gets
//! the certificate (again on a later retry), reject → 403; and our client honours Retry-After.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use est_ca::{KeyType, Store};
use est_client::{ClientConfig, EstClient, Trust};
use openssl::pkey::{PKey, Private};
use test_support::*;
use zeroize::Zeroizing;

const MANUAL: &str = "/.well-known/est/manual/simpleenroll";

async fn ask(s: &TestServer, k: &PKey<Private>, cn: &str) -> RawResponse {
    // A fresh CSR each time: ECDSA signatures differ, so the bytes never repeat.
    let csr = make_csr(k, cn, &[], None);
    raw_request(
        s,
        &RawTls::default(),
        &enroll_request(
            MANUAL,
            Some(ALICE),
            "application/pkcs10",
            b64(&csr).as_bytes(),
        ),
    )
    .await
}

fn serial_of(r: &RawResponse) -> String {
    let der = openssl::base64::decode_block(&r.text().replace(['\r', '\n'], "")).unwrap();
    let p7 = openssl::pkcs7::Pkcs7::from_der(&der).unwrap();
    let c = p7
        .signed()
        .unwrap()
        .certificates()
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .to_owned();
    c.serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn held_then_approved_or_rejected() {
    let s = TestServer::start(ServerOptions::default()).await;
    let k1 = key(KeyType::P256);
    let r = ask(&s, &k1, "m1.example").await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("manual approval"), "{}", r.text());
    // EST-92: the identical retry (new CSR bytes, same key and subject) is the same request.
    assert_eq!(ask(&s, &k1, "m1.example").await.status, 202);
    // Another key is another request.
    let k2 = key(KeyType::P256);
    assert_eq!(ask(&s, &k2, "m2.example").await.status, 202);
    let pending = s.store.list_pending(Some("pending")).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    let p1 = pending
        .iter()
        .find(|p| p.subject == "CN=m1.example")
        .unwrap();
    let p2 = pending
        .iter()
        .find(|p| p.subject == "CN=m2.example")
        .unwrap();
    assert_eq!(p1.requester, "user:alice");
    assert_eq!(
        s.store.count_certificates().await.unwrap(),
        0,
        "nothing issued yet"
    );

    // Approve the first (what `estuary request approve` does): its retry is issued.
    assert!(
        s.store
            .transition_pending(&p1.id, "pending", "approved", Some(1), None)
            .await
            .unwrap()
    );
    let r = ask(&s, &k1, "m1.example").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let serial = serial_of(&r);
    let p = s.store.pending_by_id(&p1.id).await.unwrap().unwrap();
    assert_eq!(
        (p.status.as_str(), p.serial.as_str()),
        ("issued", serial.as_str())
    );
    // A later identical retry (the answer was lost) gets the same certificate, not a second.
    let again = ask(&s, &k1, "m1.example").await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(serial_of(&again), serial);
    assert_eq!(s.store.count_certificates().await.unwrap(), 1);
    // A decided request cannot be decided again.
    assert!(
        !s.store
            .transition_pending(&p1.id, "pending", "rejected", Some(2), None)
            .await
            .unwrap()
    );

    // Reject the second: its retry gets 403 with the reason.
    assert!(
        s.store
            .transition_pending(&p2.id, "pending", "rejected", Some(1), None)
            .await
            .unwrap()
    );
    let r = ask(&s, &k2, "m2.example").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("rejected"), "{}", r.text());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_waits_retry_after_and_gets_the_certificate_once_approved() {
    let s = Arc::new(TestServer::start(ServerOptions::default()).await);
    let client = EstClient::new(ClientConfig {
        url: s.url(),
        label: Some("manual".into()),
        trust: Trust::Explicit(vec![s.pki.root_x509()]),
        identity: None,
        basic: Some((ALICE.0.into(), Zeroizing::new(ALICE.1.into()))),
        max_tls12: false,
        http_auth: Default::default(),
    })
    .unwrap();
    // The operator approves as soon as the request shows up.
    let s2 = s.clone();
    let operator = tokio::spawn(async move {
        for _ in 0..200 {
            if let Some(p) = s2
                .store
                .list_pending(Some("pending"))
                .await
                .unwrap()
                .first()
            {
                assert!(
                    s2.store
                        .transition_pending(&p.id, "pending", "approved", Some(1), None)
                        .await
                        .unwrap()
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no request was held");
    });
    let k = key(KeyType::P256);
    let started = std::time::Instant::now();
    let certs = est_client::enroll_with_key(
        &client,
        &k,
        "CN=waiting.example",
        &[],
        false,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    operator.await.unwrap();
    // It waited Retry-After (1 s) at least once, with a new connection and binding each time.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let leaf = est_client::to_x509(&certs[0]).unwrap();
    assert!(leaf.public_key().unwrap().public_eq(&k));
    let all = s.store.list_pending(None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, "issued");
    Arc::try_unwrap(s).unwrap().shutdown().await;
}
