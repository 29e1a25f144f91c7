//! TLS properties of the server over real sockets: only TLS 1.2 and 1.3 (EST-21, SEC-4),
//! no renegotiation (EST-37, SEC-5), and PoP linking checked by an independent TLS 1.3 stack:
//! rustls computes the RFC 9266 tls-exporter itself, and the server must accept exactly that
//! value in challengePassword and refuse any other (EST-54, EST-59).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::Arc;

use base64::Engine;
use est_ca::KeyType;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use test_support::*;

/// A handshake with `version` as both the minimum and the maximum the client offers.
async fn handshake(s: &TestServer, version: SslVersion) -> Result<(), String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    // Let the client itself offer the old versions (OpenSSL 3 refuses them by default).
    b.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn only_tls12_and_tls13_are_negotiated() {
    let s = TestServer::start(ServerOptions::default()).await;
    for v in [SslVersion::TLS1, SslVersion::TLS1_1] {
        // Refused by the server (its protocol_version alert), not by our own client.
        let err = handshake(&s, v)
            .await
            .expect_err("old TLS must be refused (EST-21)");
        assert!(err.contains("alert protocol version"), "{v:?}: {err}");
    }
    for v in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        handshake(&s, v)
            .await
            .unwrap_or_else(|e| panic!("{v:?}: {e}"));
    }
    s.shutdown().await;
}

/// `openssl s_client`'s `R` command asks for a renegotiation on a TLS 1.2 connection; the
/// server must refuse it (EST-37) and the connection must not carry on renegotiated.
#[tokio::test(flavor = "multi_thread")]
async fn client_initiated_renegotiation_is_refused() {
    let s = TestServer::start(ServerOptions::default()).await;
    let script = format!(
        "(printf 'R\\n'; sleep 2) | openssl s_client -connect 127.0.0.1:{} -servername localhost -tls1_2 -CAfile {} 2>&1",
        s.addr.port(),
        s.pki.root_pem.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("verify return code: 0"), "{text}");
    assert!(text.contains("renegotiating"), "the client did ask: {text}");
    assert!(text.contains("no renegotiation"), "refused: {text}");
    s.shutdown().await;
}

/// One enrollment over a rustls TLS 1.3 connection whose challengePassword carries the
/// base64 tls-exporter that rustls computed (optionally corrupted). Returns status and body.
fn rustls_enroll(s: &TestServer, corrupt: bool) -> (u16, String) {
    use rustls::pki_types::{CertificateDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(s.pki.root.cert_der.clone()))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let tcp = std::net::TcpStream::connect(s.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    assert_eq!(
        tls.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    // RFC 9266: label "EXPORTER-Channel-Binding", empty context, 32 bytes.
    let mut ekm = tls
        .conn
        .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", Some(&[]))
        .unwrap();
    if corrupt {
        ekm[31] ^= 0x80;
    }
    let cp = base64::engine::general_purpose::STANDARD.encode(ekm);
    assert_eq!(cp.len(), 44);
    let csr = make_csr(&key(KeyType::P256), "rustls.example", &[], Some(&cp));
    // The "pop" label requires the binding (EST-55).
    let req = enroll_request(
        "/.well-known/est/pop/simpleenroll",
        Some(ALICE),
        "application/pkcs10",
        b64(&csr).as_bytes(),
    );
    tls.write_all(&req).unwrap();
    tls.flush().unwrap();
    let mut buf = Vec::new();
    // The server may close without close_notify after `Connection: close`; keep what came.
    let mut chunk = [0u8; 4096];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let r = parse_response(&buf);
    (r.status, r.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn rustls_tls13_exporter_binding_is_accepted_and_a_wrong_one_refused() {
    let s = Arc::new(TestServer::start(ServerOptions::default()).await);
    let s2 = s.clone();
    let (good, bad) =
        tokio::task::spawn_blocking(move || (rustls_enroll(&s2, false), rustls_enroll(&s2, true)))
            .await
            .unwrap();
    assert_eq!(good.0, 200, "{}", good.1);
    let der = openssl::base64::decode_block(&good.1.replace(['\r', '\n'], "")).unwrap();
    let p7 = openssl::pkcs7::Pkcs7::from_der(&der).unwrap();
    let certs = p7.signed().unwrap().certificates().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(bad.0, 400, "{}", bad.1);
    assert!(bad.1.contains("tls-exporter"), "{}", bad.1);
    Arc::try_unwrap(s).unwrap().shutdown().await;
}

/// EST-22, SEC-5: tls-unique is only trusted with the extended master secret (RFC 7627).
/// A TLS 1.2 client that turns EMS off and sends its correct tls-unique is refused; the same
/// client with EMS is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn tls_unique_requires_extended_master_secret() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start(ServerOptions::default()).await;
    for ems in [true, false] {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(s.pki.root_x509()).unwrap();
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        if !ems {
            // SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3), not named by the openssl crate.
            b.set_options(openssl::ssl::SslOptions::from_bits_retain(0x1));
        }
        let ssl = b
            .build()
            .configure()
            .unwrap()
            .into_ssl("localhost")
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let mut st = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut st).connect().await.unwrap();
        assert_eq!(st.ssl().extms_support(), Some(ems));
        // tls-unique on the client of a full handshake: its own Finished.
        let mut fin = [0u8; 64];
        let n = st.ssl().finished(&mut fin);
        let cp = base64::engine::general_purpose::STANDARD.encode(&fin[..n]);
        let csr = make_csr(&key(KeyType::P256), "ems.example", &[], Some(&cp));
        let req = enroll_request(
            "/.well-known/est/simpleenroll",
            Some(ALICE),
            "application/pkcs10",
            b64(&csr).as_bytes(),
        );
        st.write_all(&req).await.unwrap();
        let mut buf = Vec::new();
        let _ = st.read_to_end(&mut buf).await;
        let r = parse_response(&buf);
        if ems {
            assert_eq!(r.status, 200, "{}", r.text());
        } else {
            assert_eq!(r.status, 400, "{}", r.text());
            assert!(r.text().contains("extended master secret"), "{}", r.text());
        }
    }
    s.shutdown().await;
}
