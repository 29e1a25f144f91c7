//! TLS client certificates over real TLS on loopback: explicit vs implicit trust anchors
//! (EST-28, EST-29, SEC-2, SEC-23), the TLS client purpose (SEC-23), registration authorities
//! (id-kp-cmcRA, EST-48) and revocation by store lookup. The third-party "manufacturer" PKI
//! is built here with OpenSSL directly, independent of our CA code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use est_ca::{KeyType, Store};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509Name, X509NameBuilder, X509ReqBuilder};
use test_support::*;

const P10: &str = "application/pkcs10";

fn name(entries: &[(&str, &str)]) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    for (k, v) in entries {
        b.append_entry_by_text(k, v).unwrap();
    }
    b.build()
}

/// A certificate signed by `issuer` (or self-signed), CA or end entity with the given EKU.
fn cert(
    subject: &X509Name,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    eku: Option<&str>,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.set_issuer_name(subject).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ic, ik)) => {
            b.set_issuer_name(ic.subject_name()).unwrap();
            b.append_extension(BasicConstraints::new().critical().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let mut e = ExtendedKeyUsage::new();
            match eku {
                Some("clientAuth") => e.client_auth(),
                Some("serverAuth") => e.server_auth(),
                _ => &mut e,
            };
            if eku.is_some() {
                b.append_extension(e.build().unwrap()).unwrap();
            }
            b.sign(ik, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

/// A manufacturer root and an IDevID-like device certificate (subject serialNumber SN-0042).
struct Manufacturer {
    root: X509,
    device: (X509, PKey<Private>),
    server_auth_only: (X509, PKey<Private>),
}

fn manufacturer() -> Manufacturer {
    let rk = key(KeyType::P256);
    let root = cert(
        &name(&[("O", "Acme Devices"), ("CN", "Acme IDevID Root")]),
        &rk,
        None,
        None,
    );
    let dk = key(KeyType::P256);
    let device = cert(
        &name(&[("CN", "Acme Sensor"), ("serialNumber", "SN-0042")]),
        &dk,
        Some((&root, &rk)),
        Some("clientAuth"),
    );
    let sk = key(KeyType::P256);
    let server_auth_only = cert(
        &name(&[("CN", "Acme Sensor"), ("serialNumber", "SN-0043")]),
        &sk,
        Some((&root, &rk)),
        Some("serverAuth"),
    );
    Manufacturer {
        root,
        device: (device, dk),
        server_auth_only: (server_auth_only, sk),
    }
}

/// A CSR built by OpenSSL with the given subject entries.
fn openssl_csr(key: &PKey<Private>, subject: &[(&str, &str)]) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_subject_name(&name(subject)).unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

async fn post_with_cert(
    s: &TestServer,
    path: &str,
    client: &(X509, PKey<Private>),
    csr: &[u8],
) -> RawResponse {
    let tls = RawTls {
        client_cert: Some(client.clone()),
        max_tls12: false,
    };
    raw_request(
        s,
        &tls,
        &enroll_request(path, None, P10, b64(csr).as_bytes()),
    )
    .await
}

fn issued(r: &RawResponse) -> X509 {
    certs_only(r).into_iter().next().unwrap()
}

fn to_x509_cert(x: &X509) -> x509_cert::Certificate {
    <x509_cert::Certificate as der::Decode>::from_der(&x.to_der().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn implicit_trust_anchor_clients_only_enroll_where_allowed() {
    let m = manufacturer();
    let s = TestServer::start(ServerOptions {
        implicit_trust_anchors: vec![to_x509_cert(&m.root)],
        ..Default::default()
    })
    .await;
    let k = key(KeyType::P256);
    // Allowed on the "idevid" label, keeping the serialNumber (other attributes are free).
    let ok = openssl_csr(&k, &[("CN", "sensor-42.acme"), ("serialNumber", "SN-0042")]);
    let r = post_with_cert(&s, "/.well-known/est/idevid/simpleenroll", &m.device, &ok).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = issued(&r);
    assert!(c.public_key().unwrap().public_eq(&k));
    let serial = c.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    let rec = s
        .store
        .certificate_by_serial(&serial.to_lowercase())
        .await
        .unwrap()
        .unwrap();
    assert!(
        rec.requester.starts_with("implicit-cert:"),
        "{}",
        rec.requester
    );

    // Another serialNumber, or none, or a SAN: 403.
    for (subject, why) in [
        (
            vec![("CN", "sensor-42.acme"), ("serialNumber", "SN-9999")],
            "other serial",
        ),
        (vec![("CN", "sensor-42.acme")], "no serial"),
    ] {
        let csr = openssl_csr(&key(KeyType::P256), &subject);
        let r = post_with_cert(&s, "/.well-known/est/idevid/simpleenroll", &m.device, &csr).await;
        assert_eq!(r.status, 403, "{why}: {}", r.text());
        assert!(r.text().contains("serialNumber"), "{why}: {}", r.text());
    }
    let with_san = make_csr(
        &key(KeyType::P256),
        "sensor-42.acme",
        &["evil.example"],
        None,
    );
    let r = post_with_cert(
        &s,
        "/.well-known/est/idevid/simpleenroll",
        &m.device,
        &with_san,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // Not on labels without an implicit policy, and never re-enrollment (SEC-23).
    let r = post_with_cert(&s, "/.well-known/est/simpleenroll", &m.device, &ok).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("implicit trust anchors"), "{}", r.text());
    let r = post_with_cert(&s, "/.well-known/est/idevid/simplereenroll", &m.device, &ok).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("initial enrollment only"), "{}", r.text());

    // The TLS client purpose is checked: a serverAuth-only certificate is no client identity.
    let r = post_with_cert(
        &s,
        "/.well-known/est/idevid/simpleenroll",
        &m.server_auth_only,
        &openssl_csr(&key(KeyType::P256), &[("serialNumber", "SN-0043")]),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("purpose"), "{}", r.text());
    // SEC-6: no server-generated keys for implicit-TA clients, even where they may enroll.
    let r = post_with_cert(
        &s,
        "/.well-known/est/idevid-skg/simpleenroll",
        &m.device,
        &ok,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_with_cert(
        &s,
        "/.well-known/est/idevid-skg/serverkeygen",
        &m.device,
        &ok,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("implicit trust anchor"), "{}", r.text());
    s.shutdown().await;

    // With the implicit database off (the default), the same device is unknown.
    let s = TestServer::start(ServerOptions::default()).await;
    let r = post_with_cert(&s, "/.well-known/est/idevid/simpleenroll", &m.device, &ok).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("client certificate rejected"),
        "{}",
        r.text()
    );
    s.shutdown().await;
}

/// Enrolls with Basic on `label` and returns the certificate and key.
async fn basic_cert(s: &TestServer, label: &str, cn: &str) -> (X509, PKey<Private>) {
    let k = key(KeyType::P256);
    let r = raw_request(
        s,
        &RawTls::default(),
        &enroll_request(
            &format!("/.well-known/est/{label}simpleenroll"),
            Some(ALICE),
            P10,
            b64(&make_csr(&k, cn, &[], None)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    (issued(&r), k)
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_authorities_enroll_for_others_with_foreign_bindings() {
    let s = TestServer::start(ServerOptions::default()).await;
    let ra = basic_cert(&s, "ra/", "ra1.example").await;
    let ee = basic_cert(&s, "", "ee1.example").await;
    // A tls-unique-shaped value from some other connection (the RA's client's).
    let foreign = "AAECAwQFBgcICQoL";

    // EST-48: the RA enrolls another subject with a binding that is not its own connection's.
    let csr = make_csr(&key(KeyType::P256), "device-9.example", &[], Some(foreign));
    let r = post_with_cert(&s, "/.well-known/est/simpleenroll", &ra, &csr).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // An ordinary end entity may do neither.
    let r = post_with_cert(&s, "/.well-known/est/simpleenroll", &ee, &csr).await;
    assert_eq!(r.status, 400, "binding mismatch: {}", r.text());
    let csr = make_csr(&key(KeyType::P256), "device-9.example", &[], None);
    let r = post_with_cert(&s, "/.well-known/est/simpleenroll", &ee, &csr).await;
    assert_eq!(r.status, 403, "other subject: {}", r.text());

    // Revocation is looked up in the store: a revoked RA is refused.
    let serial = ra.0.serial_number().to_bn().unwrap().to_hex_str().unwrap();
    assert!(
        s.store
            .set_certificate_status(&serial.to_lowercase(), est_ca::CertStatus::Revoked)
            .await
            .unwrap()
    );
    let r = post_with_cert(&s, "/.well-known/est/simpleenroll", &ra, &csr).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("revoked"), "{}", r.text());
    s.shutdown().await;
}

/// SEC-23: a certificate that chains to our CA but is not in our records (issued by another
/// installation sharing the CA, or lost with a restored database) has no knowable revocation
/// status: it is a valid TLS client, but authorizes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_unknown_to_the_store_authorize_nothing() {
    use std::sync::Arc;
    let s = TestServer::start(ServerOptions::default()).await;
    let other_db = s.pki.dir.path().join("other.db");
    let other_store = Arc::new(
        est_store::SqlStore::connect(&format!("sqlite://{}", other_db.display()))
            .await
            .unwrap(),
    );
    let other = est_ca::Authority::new(
        vec![est_ca::CaDomain {
            name: "main".into(),
            issuer: s.pki.issuing.clone(),
            profile: est_ca::Profile::default(),
        }],
        other_store,
        Arc::new(est_ca::SystemClock),
    )
    .unwrap();
    let k = key(KeyType::P256);
    let csr = make_csr(&k, "ghost.example", &[], None);
    let issued = other
        .enroll(est_ca::EnrollRequest {
            domain: "main",
            csr_der: &csr,
            identity: &est_ca::Identity::User {
                name: "ops".into(),
                names: est_ca::NamePolicy::any(),
            },
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap();
    let ghost = (X509::from_der(&issued.der).unwrap(), k);
    let r = post_with_cert(
        &s,
        "/.well-known/est/simpleenroll",
        &ghost,
        &make_csr(&key(KeyType::P256), "ghost.example", &[], None),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("not in this CA's records"),
        "{}",
        r.text()
    );
    s.shutdown().await;
}
