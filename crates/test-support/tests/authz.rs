//! Per-label authorization policy (EST-47) over real TLS: which users and which client
//! certificates may enroll on a label, and for which names; 403 with a reason otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use est_ca::KeyType;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use test_support::*;

const P10: &str = "application/pkcs10";
const RESTRICTED: &str = "/.well-known/est/restricted/simpleenroll";

async fn basic(s: &TestServer, path: &str, user: (&str, &str), cn: &str) -> RawResponse {
    let csr = make_csr(&key(KeyType::P256), cn, &[], None);
    raw_request(
        s,
        &RawTls::default(),
        &enroll_request(path, Some(user), P10, b64(&csr).as_bytes()),
    )
    .await
}

async fn with_cert(s: &TestServer, client: &(X509, PKey<Private>), cn: &str) -> RawResponse {
    let csr = make_csr(&key(KeyType::P256), cn, &[], None);
    let tls = RawTls {
        client_cert: Some(client.clone()),
        max_tls12: false,
    };
    raw_request(
        s,
        &tls,
        &enroll_request(RESTRICTED, None, P10, b64(&csr).as_bytes()),
    )
    .await
}

async fn cert_for(s: &TestServer, cn: &str) -> (X509, PKey<Private>) {
    let k = key(KeyType::P256);
    let csr = make_csr(&k, cn, &[], None);
    let r = raw_request(
        s,
        &RawTls::default(),
        &enroll_request(
            "/.well-known/est/simpleenroll",
            Some(ALICE),
            P10,
            b64(&csr).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
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
    (c, k)
}

#[tokio::test(flavor = "multi_thread")]
async fn label_policy_admits_users_and_certificates_by_rule() {
    let s = TestServer::start(ServerOptions::default()).await;
    // alice: only *.team.example here, although her own policy allows any name.
    assert_eq!(
        basic(&s, RESTRICTED, ALICE, "a.team.example").await.status,
        200
    );
    let r = basic(&s, RESTRICTED, ALICE, "a.other.example").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("a.other.example"), "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    // The same request is fine on a label without rules.
    assert_eq!(
        basic(
            &s,
            "/.well-known/est/simpleenroll",
            ALICE,
            "a.other.example"
        )
        .await
        .status,
        200
    );
    // bob is authenticated but no rule admits him.
    let r = basic(&s, RESTRICTED, BOB, "x.bob.example").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("not authorized on this CA label"),
        "{}",
        r.text()
    );

    // Certificates: subjects under devices.example are admitted, for their own names.
    let dev = cert_for(&s, "x.devices.example").await;
    assert_eq!(with_cert(&s, &dev, "x.devices.example").await.status, 200);
    let other = cert_for(&s, "x.example").await;
    let r = with_cert(&s, &other, "x.example").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("cert:"), "{}", r.text());
    s.shutdown().await;
}
