//! Our client library against our server over real TLS: every operation, channel binding on
//! both TLS versions, certificate-authenticated re-enrollment, bootstrap and server checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use est_client::{ClientConfig, ClientError, ClientIdentity, EstClient, KeyKind, San, Trust};
use openssl::x509::X509;
use test_support::*;
use zeroize::Zeroizing;

fn config(s: &TestServer, label: Option<&str>) -> ClientConfig {
    ClientConfig {
        url: s.url(),
        label: label.map(Into::into),
        trust: Trust::Explicit(vec![s.pki.root_x509()]),
        identity: None,
        basic: Some((ALICE.0.into(), Zeroizing::new(ALICE.1.into()))),
        max_tls12: false,
        http_auth: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_operations_and_pop_linking_on_tls12_and_tls13() {
    let s = TestServer::start(ServerOptions::default()).await;
    // cacerts and csrattrs.
    let c = EstClient::new(config(&s, None)).unwrap();
    let mut conn = c.connect().await.unwrap();
    let cas = conn.cacerts().await.unwrap();
    assert_eq!(cas.len(), 2);
    assert!(
        conn.csrattrs().await.unwrap().is_none(),
        "204 on the default label"
    );
    let mut dconn = EstClient::new(config(&s, Some("devices")))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let attrs = dconn.csrattrs().await.unwrap().unwrap();
    assert_eq!(
        attrs.0,
        vec![est_asn1::AttrOrOid::Oid(est_asn1::oids::CHALLENGE_PASSWORD)]
    );

    // The "pop" label requires linking: our client's CSRs carry the binding, on both versions.
    for max_tls12 in [true, false] {
        let cfg = ClientConfig {
            max_tls12,
            ..config(&s, Some("pop"))
        };
        let client = EstClient::new(cfg).unwrap();
        let conn = client.connect().await.unwrap();
        let b = conn.channel_binding().unwrap().clone();
        match (&b, max_tls12) {
            (est_client::ChannelBinding::TlsUnique(v), true) => assert_eq!(v.len(), 12),
            (est_client::ChannelBinding::TlsExporter(v), false) => assert_eq!(v.len(), 32),
            other => panic!("unexpected binding {other:?}"),
        }
        let key = est_client::generate_key(KeyKind::P256).unwrap();
        let certs = est_client::enroll_with_key(
            &client,
            &key,
            "CN=pop-client",
            &[San::Dns("pop.example".into())],
            false,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let x = est_client::to_x509(&certs[0]).unwrap();
        assert!(x.public_key().unwrap().public_eq(&key));
        // A CSR carrying another connection's binding is refused on this one.
        let mut other = client.connect().await.unwrap();
        let csr = est_client::build_csr(&key, "CN=pop-client", &[], Some(&b.challenge_password()))
            .unwrap();
        match other.simple_enroll(&csr).await {
            Err(ClientError::Status {
                status: 400,
                reason,
            }) => assert!(reason.contains("linking"), "{reason}"),
            r => panic!("expected 400, got {r:?}"),
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reenroll_with_tls_client_certificate_and_every_key_type() {
    let s = TestServer::start(ServerOptions::default()).await;
    let client = EstClient::new(config(&s, None)).unwrap();
    for kind in [
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::Rsa3072,
        KeyKind::Ed25519,
    ] {
        let key = est_client::generate_key(kind).unwrap();
        let certs = est_client::enroll_with_key(
            &client,
            &key,
            "CN=kt,O=Acme",
            &[San::Ip("10.1.2.3".parse().unwrap())],
            false,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let cert = est_client::to_x509(&certs[0]).unwrap();
        // Re-enroll authenticated only by the certificate (no Basic credentials).
        let cfg = ClientConfig {
            basic: None,
            identity: Some(ClientIdentity {
                cert: cert.clone(),
                chain: vec![],
                key: key.clone(),
            }),
            ..config(&s, None)
        };
        let rc = EstClient::new(cfg).unwrap();
        let new_key = est_client::generate_key(kind).unwrap();
        let renewed = est_client::enroll_with_key(
            &rc,
            &new_key,
            "CN=kt,O=Acme",
            &[San::Ip("10.1.2.3".parse().unwrap())],
            true,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let x = est_client::to_x509(&renewed[0]).unwrap();
        assert!(x.public_key().unwrap().public_eq(&new_key), "{kind:?}");
        assert_eq!(
            x.subject_name().to_der().unwrap(),
            cert.subject_name().to_der().unwrap()
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_authentication_and_bootstrap_rules() {
    let s = TestServer::start(ServerOptions::default()).await;
    // A trust anchor that is not the server's: the handshake fails.
    let other = TestPki::new();
    let cfg = ClientConfig {
        trust: Trust::Explicit(vec![other.root_x509()]),
        ..config(&s, None)
    };
    match EstClient::new(cfg).unwrap().connect().await {
        Err(ClientError::Tls(m)) => assert!(
            m.contains("not trusted") || m.contains("certificate"),
            "{m}"
        ),
        r => panic!("expected TLS failure, got {:?}", r.map(|_| ())),
    }
    // The URL may name the server by IP: the certificate has an IP SAN for it (RFC 6125).
    let cfg = ClientConfig {
        url: format!("https://127.0.0.1:{}", s.addr.port()),
        ..config(&s, None)
    };
    assert!(
        EstClient::new(cfg).unwrap().connect().await.is_ok(),
        "IP SAN matches"
    );
    // Bootstrap: /cacerts works without trust anchors, anything else is refused locally, and
    // no credentials are ever sent.
    let cfg = ClientConfig {
        trust: Trust::Bootstrap,
        ..config(&s, None)
    };
    let mut conn = EstClient::new(cfg).unwrap().connect().await.unwrap();
    let cas = conn.cacerts().await.unwrap();
    assert!(
        cas.iter()
            .any(|c| der::Encode::to_der(c).unwrap() == s.pki.root.cert_der)
    );
    assert!(matches!(
        conn.simple_enroll(b"x").await,
        Err(ClientError::Config(_))
    ));
    assert!(matches!(conn.csrattrs().await, Err(ClientError::Config(_))));
    let fp = est_client::fingerprint(&X509::from_der(&s.pki.root.cert_der).unwrap()).unwrap();
    assert_eq!(fp.len(), 32 * 3 - 1);
    // Errors carry the server's text.
    let mut conn = EstClient::new(ClientConfig {
        basic: Some(("alice".into(), Zeroizing::new("wrong-one".into()))),
        ..config(&s, None)
    })
    .unwrap()
    .connect()
    .await
    .unwrap();
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let csr = est_client::build_csr(&key, "CN=x", &[], None).unwrap();
    match conn.simple_enroll(&csr).await {
        Err(ClientError::Status {
            status: 401,
            reason,
        }) => assert!(reason.contains("invalid user name or password"), "{reason}"),
        r => panic!("expected 401, got {r:?}"),
    }
    s.shutdown().await;
}

/// HTTP Digest from our client (RFC 7616): on the Digest-only label the automatic mode answers
/// the Digest challenge (strongest algorithm offered); `HttpAuth::Digest` uses it where Basic is
/// offered too; `HttpAuth::Basic` cannot get in where only Digest is; a wrong password is the
/// server's 401 text; /fullcmc with Digest answers the 401 challenge.
#[tokio::test(flavor = "multi_thread")]
async fn digest_authentication_from_our_client() {
    use est_client::HttpAuth;
    let s = TestServer::start(ServerOptions::default()).await;
    let enroll = |label: Option<&'static str>, auth: HttpAuth, password: &'static str| {
        let cfg = ClientConfig {
            http_auth: auth,
            basic: Some((ALICE.0.into(), Zeroizing::new(password.into()))),
            ..config(&s, label)
        };
        async move {
            let client = EstClient::new(cfg).unwrap();
            let key = est_client::generate_key(KeyKind::P256).unwrap();
            est_client::enroll_with_key(
                &client,
                &key,
                "CN=digest-client",
                &[San::Dns("digest.example".into())],
                false,
                Duration::from_secs(5),
            )
            .await
            .map(|certs| (key, certs))
        }
    };
    for (label, auth) in [
        (Some("digest"), HttpAuth::Auto),
        (Some("digest"), HttpAuth::Digest),
        (None, HttpAuth::Digest),
    ] {
        let (key, certs) = enroll(label, auth, ALICE.1)
            .await
            .unwrap_or_else(|e| panic!("{label:?} {auth:?}: {e}"));
        let x = est_client::to_x509(&certs[0]).unwrap();
        assert!(x.public_key().unwrap().public_eq(&key));
    }
    // Basic only where the label offers only Digest: the 401 stands.
    match enroll(Some("digest"), HttpAuth::Basic, ALICE.1).await {
        Err(ClientError::Status { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    // A wrong password under Digest: 401, and the server's reason is shown.
    match enroll(Some("digest"), HttpAuth::Digest, "not-alices-password").await {
        Err(ClientError::Status {
            status: 401,
            reason,
        }) => assert!(!reason.is_empty()),
        other => panic!("{other:?}"),
    }
    // /fullcmc on the Digest-only label: the challenge is answered, then the CMC request
    // is processed (the server's PKIResponse comes back, whatever it says).
    let cfg = ClientConfig {
        http_auth: HttpAuth::Digest,
        ..config(&s, Some("digest"))
    };
    let mut conn = EstClient::new(cfg).unwrap().connect().await.unwrap();
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let ski = est_client::subject_key_id(&key).unwrap();
    let p10 = est_client::build_csr_full(
        &key,
        "CN=digest-cmc.example",
        &[],
        None,
        vec![est_client::subject_key_id_extension(&ski).unwrap()],
        Vec::new(),
    )
    .unwrap();
    let opts = est_cmc::client::RequestOptions::random().unwrap();
    let pki = est_cmc::client::build_pki_data(
        &opts,
        &est_cmc::client::CertRequestBody::Pkcs10(p10),
        &key,
    )
    .unwrap();
    let der = est_cmc::client::sign_request(
        &pki,
        &est_cmc::client::RequestSigner::RequestKey {
            key: &key,
            key_id: &ski,
        },
    )
    .unwrap();
    let (status, _) = conn.full_cmc(&der).await.unwrap();
    assert_eq!(status, 200, "issued after the Digest exchange");
}
