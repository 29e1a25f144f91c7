//! End-to-end tests of the EST server over real TLS on loopback, with requests written byte
//! for byte (so malformed ones can be sent too) and responses checked with OpenSSL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use est_ca::{CertFilter, KeyType, Store};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use test_support::*;

const P10: &str = "application/pkcs10";

/// Verifies a certificate with OpenSSL against the fixture root and the given intermediate.
fn verify(server: &TestServer, leaf: &X509, intermediate_der: &[u8]) -> bool {
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(server.pki.root_x509()).unwrap();
    let store = store.build();
    let mut chain = Stack::new().unwrap();
    chain
        .push(X509::from_der(intermediate_der).unwrap())
        .unwrap();
    let mut ctx = openssl::x509::X509StoreContext::new().unwrap();
    ctx.init(&store, leaf, &chain, |c| c.verify_cert()).unwrap()
}

async fn enroll_basic(
    server: &TestServer,
    path: &str,
    user: (&str, &str),
    csr: &[u8],
) -> RawResponse {
    raw_request(
        server,
        &RawTls::default(),
        &enroll_request(path, Some(user), P10, b64(csr).as_bytes()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn cacerts_returns_full_chain_without_authentication() {
    let s = TestServer::start(ServerOptions::default()).await;
    for path in ["/.well-known/est/cacerts", "/.well-known/est/main/cacerts"] {
        let r = raw_request(&s, &RawTls::default(), &get_request(path)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/pkcs7-mime")
        );
        assert_eq!(r.header("content-transfer-encoding"), Some("base64"));
        let certs = certs_only(&r);
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().unwrap()).collect();
        assert_eq!(ders.len(), 2, "issuing CA + root (EST-65)");
        assert!(ders.contains(&s.pki.issuing.cert_der) && ders.contains(&s.pki.root.cert_der));
    }
    // The devices label serves its own issuing CA.
    let r = raw_request(
        &s,
        &RawTls::default(),
        &get_request("/.well-known/est/devices/cacerts"),
    )
    .await;
    let ders: Vec<Vec<u8>> = certs_only(&r).iter().map(|c| c.to_der().unwrap()).collect();
    assert!(ders.contains(&s.pki.devices.cert_der));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn simpleenroll_with_basic_auth_issues_and_records() {
    let s = TestServer::start(ServerOptions::default()).await;
    for (i, kt) in [
        KeyType::P256,
        KeyType::P384,
        KeyType::Rsa2048,
        KeyType::Ed25519,
    ]
    .into_iter()
    .enumerate()
    {
        let k = key(kt);
        let cn = format!("device-{i}");
        let csr = make_csr(&k, &cn, &["dev.example.com"], None);
        let r = enroll_basic(&s, "/.well-known/est/simpleenroll", ALICE, &csr).await;
        assert_eq!(r.status, 200, "{kt:?}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/pkcs7-mime; smime-type=certs-only")
        );
        let certs = certs_only(&r);
        assert_eq!(certs.len(), 1, "only the issued certificate (EST-87)");
        let c = &certs[0];
        assert!(verify(&s, c, &s.pki.issuing.cert_der), "chains to the root");
        assert!(c.public_key().unwrap().public_eq(&k));
        assert_eq!(
            c.subject_name()
                .entries()
                .next()
                .unwrap()
                .data()
                .as_slice()
                .to_vec(),
            cn.as_bytes()
        );
        let serial = c.serial_number().to_bn().unwrap();
        assert!(
            serial.num_bits() >= 64 && !serial.is_negative(),
            "random positive serial"
        );
        let rec = s
            .store
            .certificate_by_serial(&serial.to_hex_str().unwrap().to_lowercase())
            .await
            .unwrap()
            .expect("recorded");
        assert_eq!(rec.der, c.to_der().unwrap());
        assert_eq!(rec.requester, "user:alice");
        let san = c.subject_alt_names().expect("SAN copied");
        assert_eq!(
            san.iter().next().unwrap().dnsname(),
            Some("dev.example.com")
        );
    }
    assert_eq!(s.store.count_certificates().await.unwrap(), 4);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_and_authorization_failures() {
    let s = TestServer::start(ServerOptions::default()).await;
    let csr = make_csr(&key(KeyType::P256), "x.example.com", &[], None);
    let body = b64(&csr);
    // No credentials: 401 with a Basic challenge (EST-41).
    let r = raw_request(
        &s,
        &RawTls::default(),
        &enroll_request("/.well-known/est/simpleenroll", None, P10, body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate")
                && v.starts_with("Basic realm="))
    );
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    // Wrong password and unknown user give the same answer.
    let r1 = enroll_basic(
        &s,
        "/.well-known/est/simpleenroll",
        ("alice", "wrong-password"),
        &csr,
    )
    .await;
    let r2 = enroll_basic(
        &s,
        "/.well-known/est/simpleenroll",
        ("mallory", "whatever-pw"),
        &csr,
    )
    .await;
    assert_eq!((r1.status, r2.status), (401, 401));
    assert_eq!(r1.text(), r2.text());
    // Bob may only ask for names under bob.example (name policy per user): 403.
    let r = enroll_basic(&s, "/.well-known/est/simpleenroll", BOB, &csr).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("x.example.com"));
    let ok = make_csr(&key(KeyType::P256), "a.bob.example", &["bob.example"], None);
    assert_eq!(
        enroll_basic(&s, "/.well-known/est/simpleenroll", BOB, &ok)
            .await
            .status,
        200
    );
    let bad_san = make_csr(
        &key(KeyType::P256),
        "a.bob.example",
        &["evil.example"],
        None,
    );
    assert_eq!(
        enroll_basic(&s, "/.well-known/est/simpleenroll", BOB, &bad_san)
            .await
            .status,
        403
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_clear_4xx_and_server_keeps_serving() {
    let s = TestServer::start(ServerOptions::default()).await;
    let csr = make_csr(&key(KeyType::P256), "m.example", &[], None);
    let good = b64(&csr);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown op", get_request("/.well-known/est/nosuchop"), 404),
        (
            "unknown label",
            get_request("/.well-known/est/nolabel/cacerts"),
            404,
        ),
        (
            "label named like an op",
            get_request("/.well-known/est/simpleenroll/cacerts"),
            404,
        ),
        ("not EST", get_request("/index.html"), 404),
        (
            "POST to cacerts",
            enroll_request("/.well-known/est/cacerts", Some(ALICE), P10, b""),
            405,
        ),
        (
            "GET simpleenroll",
            get_request("/.well-known/est/simpleenroll"),
            405,
        ),
        (
            "wrong content type",
            enroll_request(
                "/.well-known/est/simpleenroll",
                Some(ALICE),
                "application/json",
                good.as_bytes(),
            ),
            415,
        ),
        (
            "bad base64",
            enroll_request(
                "/.well-known/est/simpleenroll",
                Some(ALICE),
                P10,
                b"@@@not base64@@@",
            ),
            400,
        ),
        (
            "not DER",
            enroll_request(
                "/.well-known/est/simpleenroll",
                Some(ALICE),
                P10,
                b64(b"hello world").as_bytes(),
            ),
            400,
        ),
        (
            "truncated CSR",
            enroll_request(
                "/.well-known/est/simpleenroll",
                Some(ALICE),
                P10,
                b64(&csr[..csr.len() / 2]).as_bytes(),
            ),
            400,
        ),
        (
            "empty body",
            enroll_request("/.well-known/est/simpleenroll", Some(ALICE), P10, b""),
            400,
        ),
        (
            "too large",
            enroll_request(
                "/.well-known/est/simpleenroll",
                Some(ALICE),
                P10,
                &vec![b'A'; 300 * 1024],
            ),
            413,
        ),
    ];
    for (what, req, want) in cases {
        let r = raw_request(&s, &RawTls::default(), &req).await;
        assert_eq!(r.status, want, "{what}: {}", r.text());
        if want != 405 || r.header("allow").is_some() {
            assert!(
                r.header("content-type")
                    .unwrap_or("")
                    .starts_with("text/plain"),
                "{what}: text/plain reason"
            );
            assert!(!r.text().trim().is_empty(), "{what}: has a reason");
        }
        if want == 405 {
            assert!(r.header("allow").is_some(), "{what}: Allow header");
        }
    }
    // A CSR whose signature does not verify: flip a bit in the signature.
    let mut bad = csr.clone();
    let n = bad.len() - 3;
    bad[n] ^= 0x01;
    let r = enroll_basic(&s, "/.well-known/est/simpleenroll", ALICE, &bad).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("signature"), "{}", r.text());
    // RFC 8951: whitespace-wrapped and unwrapped base64 are both accepted; CTE ignored.
    let unwrapped = good.replace("\r\n", "");
    let r = raw_request(
        &s,
        &RawTls::default(),
        &enroll_request(
            "/.well-known/est/simpleenroll",
            Some(ALICE),
            "Application/PKCS10; foo=bar",
            unwrapped.as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let spaced: String = unwrapped
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            if i % 10 == 9 {
                vec![c, ' ', '\t', '\n']
            } else {
                vec![c]
            }
        })
        .collect();
    let r = raw_request(
        &s,
        &RawTls::default(),
        &enroll_request(
            "/.well-known/est/simpleenroll",
            Some(ALICE),
            P10,
            spaced.as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Still serving.
    assert_eq!(
        raw_request(
            &s,
            &RawTls::default(),
            &get_request("/.well-known/est/cacerts")
        )
        .await
        .status,
        200
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_apply_their_own_ca_and_profile() {
    let s = TestServer::start(ServerOptions::default()).await;
    let k = key(KeyType::P256);
    let r = enroll_basic(
        &s,
        "/.well-known/est/devices/simpleenroll",
        ALICE,
        &make_csr(&k, "d1", &[], None),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = &certs_only(&r)[0];
    assert!(
        verify(&s, c, &s.pki.devices.cert_der),
        "issued by the devices CA"
    );
    assert!(!verify(&s, c, &s.pki.issuing.cert_der));
    let days = c.not_before().diff(c.not_after()).unwrap().days;
    assert!(
        (89..=91).contains(&days),
        "devices profile validity is 90 days, got {days}"
    );
    // The devices profile refuses RSA keys.
    let r = enroll_basic(
        &s,
        "/.well-known/est/devices/simpleenroll",
        ALICE,
        &make_csr(&key(KeyType::Rsa2048), "d2", &[], None),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("RSA"), "{}", r.text());
    // csrattrs: 200 + DER on devices, 204 on the default label.
    let r = raw_request(
        &s,
        &RawTls::default(),
        &get_request("/.well-known/est/devices/csrattrs"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/csrattrs"));
    let der = openssl::base64::decode_block(&r.text().replace(['\r', '\n'], "")).unwrap();
    assert_eq!(
        der,
        [
            0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07
        ]
    );
    let r = raw_request(
        &s,
        &RawTls::default(),
        &get_request("/.well-known/est/csrattrs"),
    )
    .await;
    assert_eq!(r.status, 204);
    s.shutdown().await;
}

async fn enroll_cert(
    s: &TestServer,
    cn: &str,
    sans: &[&str],
) -> (X509, openssl::pkey::PKey<openssl::pkey::Private>) {
    let k = key(KeyType::P256);
    let r = enroll_basic(
        s,
        "/.well-known/est/simpleenroll",
        ALICE,
        &make_csr(&k, cn, sans, None),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    (certs_only(&r).remove(0), k)
}

#[tokio::test(flavor = "multi_thread")]
async fn simplereenroll_with_client_certificate_renews_and_rekeys() {
    let s = TestServer::start(ServerOptions::default()).await;
    let (old, old_key) = enroll_cert(&s, "renew-me", &["renew-me.example"]).await;
    let tls = RawTls {
        client_cert: Some((old.clone(), old_key.clone())),
        max_tls12: false,
    };
    // Rekey: new key, same subject and SAN.
    let new_key = key(KeyType::P384);
    let r = raw_request(
        &s,
        &tls,
        &enroll_request(
            "/.well-known/est/simplereenroll",
            None,
            P10,
            b64(&make_csr(&new_key, "renew-me", &["renew-me.example"], None)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = certs_only(&r).remove(0);
    assert!(new.public_key().unwrap().public_eq(&new_key));
    assert_eq!(
        new.subject_name().to_der().unwrap(),
        old.subject_name().to_der().unwrap()
    );
    assert_ne!(
        new.serial_number().to_bn().unwrap(),
        old.serial_number().to_bn().unwrap()
    );
    // Renew: same key.
    let r = raw_request(
        &s,
        &tls,
        &enroll_request(
            "/.well-known/est/simplereenroll",
            None,
            P10,
            b64(&make_csr(&old_key, "renew-me", &["renew-me.example"], None)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A renewal CSR whose signature is broken (one bit of it flipped): 400 with a reason,
    // nothing issued (issue 12; EST-75).
    let before = s.store.count_certificates().await.unwrap();
    let mut broken = make_csr(&old_key, "renew-me", &["renew-me.example"], None);
    let n = broken.len() - 3;
    broken[n] ^= 0x01;
    let r = raw_request(
        &s,
        &tls,
        &enroll_request(
            "/.well-known/est/simplereenroll",
            None,
            P10,
            b64(&broken).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    assert!(r.text().contains("signature"), "{}", r.text());
    assert_eq!(s.store.count_certificates().await.unwrap(), before);
    // A different subject or SAN is refused (EST-82).
    for (cn, sans) in [
        ("someone-else", vec!["renew-me.example"]),
        ("renew-me", vec!["other.example"]),
        ("renew-me", vec![]),
    ] {
        let r = raw_request(
            &s,
            &tls,
            &enroll_request(
                "/.well-known/est/simplereenroll",
                None,
                P10,
                b64(&make_csr(&key(KeyType::P256), cn, &sans, None)).as_bytes(),
            ),
        )
        .await;
        assert_eq!(r.status, 400, "{cn} {sans:?}: {}", r.text());
        assert!(r.text().contains("differs"), "{}", r.text());
    }
    // Revoked certificates cannot renew.
    let serial = old
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_lowercase();
    assert!(
        s.store
            .set_certificate_status(&serial, est_ca::CertStatus::Revoked)
            .await
            .unwrap()
    );
    let r = raw_request(
        &s,
        &tls,
        &enroll_request(
            "/.well-known/est/simplereenroll",
            None,
            P10,
            b64(&make_csr(
                &key(KeyType::P256),
                "renew-me",
                &["renew-me.example"],
                None,
            ))
            .as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("revoked"));
    // A certificate-authenticated client may enroll for its own subject (EST-80) but not others.
    let (c2, k2) = enroll_cert(&s, "holder", &[]).await;
    let tls2 = RawTls {
        client_cert: Some((c2, k2)),
        max_tls12: false,
    };
    let r = raw_request(
        &s,
        &tls2,
        &enroll_request(
            "/.well-known/est/simpleenroll",
            None,
            P10,
            b64(&make_csr(&key(KeyType::P256), "holder", &[], None)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = raw_request(
        &s,
        &tls2,
        &enroll_request(
            "/.well-known/est/simpleenroll",
            None,
            P10,
            b64(&make_csr(&key(KeyType::P256), "not-holder", &[], None)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn simplereenroll_with_basic_auth_finds_the_current_certificate() {
    let s = TestServer::start(ServerOptions::default()).await;
    let _ = enroll_cert(&s, "basic-renew", &[]).await;
    let r = enroll_basic(
        &s,
        "/.well-known/est/simplereenroll",
        ALICE,
        &make_csr(&key(KeyType::P256), "basic-renew", &[], None),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Nothing to renew under this name.
    let r = enroll_basic(
        &s,
        "/.well-known/est/simplereenroll",
        ALICE,
        &make_csr(&key(KeyType::P256), "never-issued", &[], None),
    )
    .await;
    assert_eq!(r.status, 400);
    // Now two current certificates match: ambiguous.
    let r = enroll_basic(
        &s,
        "/.well-known/est/simplereenroll",
        ALICE,
        &make_csr(&key(KeyType::P256), "basic-renew", &[], None),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("several"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_client_certificate_is_not_an_identity() {
    let s = TestServer::start(ServerOptions::default()).await;
    // A self-signed certificate the server does not trust.
    let k = key(KeyType::P256);
    let mut b = openssl::x509::X509Builder::new().unwrap();
    let mut n = openssl::x509::X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", "intruder").unwrap();
    let n = n.build();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&k).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&k, openssl::hash::MessageDigest::sha256()).unwrap();
    let tls = RawTls {
        client_cert: Some((b.build(), k.clone())),
        max_tls12: false,
    };
    // The handshake completes (certificates are requested, not required) and /cacerts works.
    assert_eq!(
        raw_request(&s, &tls, &get_request("/.well-known/est/cacerts"))
            .await
            .status,
        200
    );
    let r = raw_request(
        &s,
        &tls,
        &enroll_request(
            "/.well-known/est/simplereenroll",
            None,
            P10,
            b64(&make_csr(&k, "intruder", &[], None)).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("client certificate rejected"),
        "{}",
        r.text()
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pop_linking_is_checked_when_present_and_required_by_label() {
    let s = TestServer::start(ServerOptions::default()).await;
    // A challengePassword that is not this connection's binding is rejected (EST-54).
    let csr = make_csr(
        &key(KeyType::P256),
        "pop.example",
        &[],
        Some("AAAAAAAAAAAAAAAA"),
    );
    for max_tls12 in [true, false] {
        let r = raw_request(
            &s,
            &RawTls {
                client_cert: None,
                max_tls12,
            },
            &enroll_request(
                "/.well-known/est/simpleenroll",
                Some(ALICE),
                P10,
                b64(&csr).as_bytes(),
            ),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("linking"), "{}", r.text());
    }
    // The "pop" label requires linking.
    let csr = make_csr(&key(KeyType::P256), "pop.example", &[], None);
    let r = enroll_basic(&s, "/.well-known/est/pop/simpleenroll", ALICE, &csr).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("linking of identity and POP required"),
        "{}",
        r.text()
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_clients_are_cut_off() {
    let s = TestServer::start(ServerOptions::default()).await;
    // A TCP client that never starts TLS: dropped after the handshake timeout (2 s here).
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let t0 = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "server closed the connection"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(8));
    // A TLS client that sends half a request head and stalls: cut off by the header timeout.
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(s.pki.root_x509()).unwrap();
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls).connect().await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut tls,
        b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\n",
    )
    .await
    .unwrap();
    let t0 = std::time::Instant::now();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut rest),
    )
    .await;
    assert!(r.is_ok(), "server closed the stalled connection");
    assert!(t0.elapsed() < std::time::Duration::from_secs(8));
    // A TLS client that completes the handshake and then sends nothing is closed too.
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(s.pki.root_x509()).unwrap();
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls).connect().await.unwrap();
    let t0 = std::time::Instant::now();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut rest),
    )
    .await;
    assert!(r.is_ok(), "server closed the idle connection");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t0.elapsed()
    );
    // Meanwhile and afterwards the server serves others.
    assert_eq!(
        raw_request(
            &s,
            &RawTls::default(),
            &get_request("/.well-known/est/cacerts")
        )
        .await
        .status,
        200
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_enrollments_all_recorded_on_postgres() {
    let s = TestServer::start(ServerOptions {
        store: StoreKind::Postgres(pg_url()),
        ..ServerOptions::default()
    })
    .await;
    let before = s.store.count_certificates().await.unwrap();
    let mut tasks = Vec::new();
    let s = std::sync::Arc::new(s);
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let csr = make_csr(&key(KeyType::P256), &format!("pg-{i}"), &[], None);
            let r = enroll_basic(&s, "/.well-known/est/simpleenroll", ALICE, &csr).await;
            assert_eq!(r.status, 200, "{}", r.text());
            certs_only(&r)
                .remove(0)
                .serial_number()
                .to_bn()
                .unwrap()
                .to_hex_str()
                .unwrap()
                .to_lowercase()
        }));
    }
    let mut serials = Vec::new();
    for t in tasks {
        serials.push(t.await.unwrap());
    }
    for serial in &serials {
        assert!(
            s.store
                .certificate_by_serial(serial)
                .await
                .unwrap()
                .is_some(),
            "recorded before returned"
        );
    }
    assert_eq!(s.store.count_certificates().await.unwrap(), before + 24);
    let listed = s
        .store
        .list_certificates(&CertFilter {
            requester: Some("user:alice".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        serials
            .iter()
            .all(|x| listed.iter().any(|r| &r.serial == x))
    );
}

/// EST-55: a label that requires PoP linking lists challengePassword in /csrattrs, even when
/// its configuration names no attributes (the label-less path here), and says so in DER that
/// the openssl CLI decodes.
#[tokio::test(flavor = "multi_thread")]
async fn labels_requiring_pop_linking_list_challenge_password() {
    let s = TestServer::start(ServerOptions {
        require_pop_linking: true,
        ..ServerOptions::default()
    })
    .await;
    let r = raw_request(
        &s,
        &RawTls::default(),
        &get_request("/.well-known/est/csrattrs"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/csrattrs"));
    let der = openssl::base64::decode_block(&r.text().replace(['\r', '\n'], "")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("attrs.der");
    std::fs::write(&f, &der).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-in"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("challengePassword"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s.shutdown().await;
}

/// Header names go out in canonical case (`Content-Type`, `Content-Length`,
/// `WWW-Authenticate`), read from the raw response bytes: clients such as libest's estclient
/// compare them case-sensitively (issue 12).
#[tokio::test(flavor = "multi_thread")]
async fn response_header_names_are_title_case() {
    let s = TestServer::start(ServerOptions::default()).await;
    let r = raw_request(
        &s,
        &RawTls::default(),
        &get_request("/.well-known/est/cacerts"),
    )
    .await;
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    for must in [
        "Content-Type",
        "Content-Length",
        "Content-Transfer-Encoding",
    ] {
        assert!(names.contains(&must), "{must} in {names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|n| n.chars().next().is_some_and(|c| c.is_ascii_lowercase())),
        "{names:?}"
    );
    // A 401 with Basic and Digest challenges (three WWW-Authenticate lines), on a keep-alive
    // connection after another response: the exact bytes, and the body untouched.
    let two = [
        "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\n\r\n".to_string(),
        "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\nContent-Length: 4\r\nConnection: close\r\n\r\nAAAA".to_string(),
    ]
    .concat();
    let raw = raw_bytes(&s, &RawTls::default(), two.as_bytes()).await;
    let text = String::from_utf8_lossy(&raw);
    let second = &text[text.find("HTTP/1.1 401").expect("a 401")..];
    let head = &second[..second.find("\r\n\r\n").unwrap()];
    assert_eq!(head.matches("\r\nWWW-Authenticate: ").count(), 3, "{head}");
    assert!(
        head.contains("\r\nWWW-Authenticate: Basic realm="),
        "{head}"
    );
    assert!(
        head.contains("\r\nWWW-Authenticate: Digest realm="),
        "{head}"
    );
    assert!(head.contains("\r\nContent-Type: text/plain"), "{head}");
    assert!(!text.contains("Www-Authenticate"), "{text}");
    s.shutdown().await;
}

/// Requests hyper refuses before any handler runs (issue 12, item 8) still get a `text/plain`
/// reason: a malformed Content-Length, a bad header line, conflicting framing, a head over
/// the 64 KiB limit.
#[tokio::test(flavor = "multi_thread")]
async fn requests_hyper_cannot_parse_get_a_text_reason() {
    let s = TestServer::start(ServerOptions::default()).await;
    let huge = format!(
        "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    for (request, status, words) in [
        (
            "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_string(),
            "400",
            "malformed HTTP request",
        ),
        (
            "GET /x HTTP/1.1\r\nHo st: x\r\n\r\n".to_string(),
            "400",
            "malformed HTTP request",
        ),
        (
            "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nAAAA".to_string(),
            "400",
            "malformed HTTP request",
        ),
        (huge, "431", "too large"),
    ] {
        let raw = raw_bytes(&s, &RawTls::default(), request.as_bytes()).await;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
        assert!(head.contains("\r\nContent-Type: text/plain"), "{text}");
        assert!(body.contains(words), "{text}");
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{text}"
        );
    }
    s.shutdown().await;
}
