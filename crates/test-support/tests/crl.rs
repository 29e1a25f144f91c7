//! GET /crl/<ca>.crl on the EST listener over real TLS (RFC 5280 §4.2.1.13, RFC 2585): DER,
//! application/pkix-crl, signed by the CA, following revocations; 404/405 otherwise. On both
//! store backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use est_ca::{CrlReason, EnrollRequest, Identity, NamePolicy, RevokeOutcome};
use openssl::x509::X509Crl;
use test_support::*;

fn crl_of(r: &RawResponse) -> X509Crl {
    X509Crl::from_der(&r.body).expect("a DER CRL body")
}

fn revoked_serials(crl: &X509Crl) -> Vec<String> {
    crl.get_revoked()
        .map(|s| {
            s.iter()
                .map(|r| {
                    r.serial_number()
                        .to_bn()
                        .unwrap()
                        .to_hex_str()
                        .unwrap()
                        .to_lowercase()
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn crl_endpoint(store: StoreKind) {
    let s = TestServer::start(ServerOptions {
        store,
        ..Default::default()
    })
    .await;
    let tls = RawTls::default();

    let r = raw_request(&s, &tls, &get_request("/crl/main.crl")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/pkix-crl"));
    assert!(r.header("content-transfer-encoding").is_none());
    let crl = crl_of(&r);
    assert!(revoked_serials(&crl).is_empty());
    let issuing_key = s.pki.issuing_x509().public_key().unwrap();
    assert!(
        crl.verify(&issuing_key).unwrap(),
        "signed by the issuing CA"
    );

    // Issue, revoke through the authority (what a CMC revocation request or the CLI does).
    let key = key(est_ca::KeyType::P256);
    let csr = make_csr(&key, "revoke-me", &[], None);
    let id = Identity::User {
        name: "alice".into(),
        names: NamePolicy::new(vec!["*".into()]),
    };
    let issued = s
        .authority
        .enroll(EnrollRequest {
            domain: "main",
            csr_der: &csr,
            identity: &id,
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap();
    let out = s
        .authority
        .revoke(
            &issued.record.serial,
            CrlReason::KeyCompromise,
            None,
            "test",
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(out, RevokeOutcome::Revoked(_)));

    let r = raw_request(&s, &tls, &get_request("/crl/main.crl")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let crl = crl_of(&r);
    assert_eq!(
        revoked_serials(&crl),
        std::slice::from_ref(&issued.record.serial)
    );
    assert!(crl.verify(&issuing_key).unwrap());
    // Each CA has its own CRL, signed by its own key.
    let r = raw_request(&s, &tls, &get_request("/crl/devices.crl")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let devices = crl_of(&r);
    assert!(revoked_serials(&devices).is_empty());
    let devices_key = openssl::x509::X509::from_der(&s.pki.devices.cert_der)
        .unwrap()
        .public_key()
        .unwrap();
    assert!(devices.verify(&devices_key).unwrap());

    // HEAD: the headers without the body.
    let r = raw_request(
        &s,
        &tls,
        b"HEAD /crl/main.crl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/pkix-crl"));
    assert!(r.body.is_empty());

    // Unknown CAs and malformed paths: 404 text/plain; other methods: 405 with Allow.
    for path in [
        "/crl/nonesuch.crl",
        "/crl/main",
        "/crl/main.der",
        "/crl/a%2Fb.crl",
        "/crl/",
    ] {
        let r = raw_request(&s, &tls, &get_request(path)).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "{path}"
        );
    }
    let r = raw_request(
        &s,
        &tls,
        &enroll_request("/crl/main.crl", None, "application/pkix-crl", b"x"),
    )
    .await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET"));
    // EST itself is untouched.
    let r = raw_request(&s, &tls, &get_request("/.well-known/est/cacerts")).await;
    assert_eq!(r.status, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crl_endpoint_sqlite() {
    crl_endpoint(StoreKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crl_endpoint_postgres() {
    crl_endpoint(StoreKind::Postgres(pg_url())).await;
}
