//! A client that behaves as Cisco's libest `estclient` does (it is not packaged for Debian, so it
//! is emulated here; docs/interop.md): it finds response headers by their exact names
//! (`Content-Type:`, `Content-Length:`, `WWW-Authenticate:`, byte for byte), reads only the
//! first `WWW-Authenticate` challenge and answers it with Basic or with MD5 Digest only, speaks
//! TLS 1.2 and puts tls-unique into the CSR's challengePassword for proof-of-possession (RFC 7030
//! §3.5). Against the real `estuary serve` demo, with the label settings docs/interop.md gives,
//! it completes /cacerts, Basic /simpleenroll, /simplereenroll, /csrattrs, RSA /serverkeygen
//! with MD5 Digest, and PoP-linked enrollment; a wrong tls-unique is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::X509;

use common::start_demo;

struct Resp {
    status: u16,
    /// Header lines as received (name: value), names untouched.
    head: Vec<String>,
    body: Vec<u8>,
}

impl Resp {
    /// Asserts 200, showing the head and body otherwise.
    fn ok(&self) {
        assert_eq!(
            self.status,
            200,
            "{:?} {}",
            self.head,
            String::from_utf8_lossy(&self.body)
        );
    }

    /// The value of the first header named exactly `name` (libest: case-sensitive).
    fn exact(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}:");
        self.head
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::trim))
    }
}

struct Client {
    addr: String,
    root: X509,
    cert: Option<(X509, PKey<Private>)>,
}

fn md5_hex(s: &str) -> String {
    hex::encode(hash(MessageDigest::md5(), s.as_bytes()).unwrap())
}

/// `name="value"` or `name=value` from a challenge.
fn param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    Some(if let Some(q) = rest.strip_prefix('"') {
        q[..q.find('"')?].to_string()
    } else {
        rest.split([',', ' ']).next()?.to_string()
    })
}

impl Client {
    fn connect(&self) -> SslStream<TcpStream> {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(self.root.clone()).unwrap();
        b.set_verify(SslVerifyMode::PEER);
        // libest's PoP is tls-unique, a TLS 1.2 value.
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        if let Some((c, k)) = &self.cert {
            b.set_certificate(c).unwrap();
            b.set_private_key(k).unwrap();
        }
        let ssl = b
            .build()
            .configure()
            .unwrap()
            .into_ssl("localhost")
            .unwrap();
        ssl.connect(TcpStream::connect(&self.addr).unwrap())
            .unwrap()
    }

    fn tls_unique(tls: &SslStream<TcpStream>) -> String {
        let mut v = vec![0u8; 64];
        let n = tls.ssl().finished(&mut v);
        v.truncate(n);
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    fn send(
        tls: &mut SslStream<TcpStream>,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        if !body.is_empty() {
            req.push_str("Content-Type: application/pkcs10\r\n");
        }
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        tls.write_all(req.as_bytes()).unwrap();
        tls.write_all(body).unwrap();
        // Read the head, then exactly Content-Length body bytes (found by its exact name).
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            assert_eq!(
                tls.read(&mut byte).unwrap(),
                1,
                "connection closed in the head"
            );
            raw.push(byte[0]);
        }
        let text = String::from_utf8(raw).unwrap();
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let head: Vec<String> = lines.map(str::to_string).collect();
        let mut r = Resp {
            status,
            head,
            body: Vec::new(),
        };
        let len: usize = r
            .exact("Content-Length")
            .expect("libest needs the exact name Content-Length")
            .parse()
            .unwrap();
        r.body = vec![0u8; len];
        tls.read_exact(&mut r.body).unwrap();
        r
    }

    /// One request, answering a 401 as libest does: only the first WWW-Authenticate, Basic, or
    /// Digest with MD5 (an absent algorithm means MD5); anything else fails.
    fn request(
        &self,
        method: &str,
        path: &str,
        user: &str,
        password: &str,
        body: &dyn Fn(&SslStream<TcpStream>) -> Vec<u8>,
    ) -> Resp {
        let mut tls = self.connect();
        let b = body(&tls);
        let r = Self::send(&mut tls, method, path, None, &b);
        if r.status != 401 {
            return r;
        }
        let challenge = r
            .exact("WWW-Authenticate")
            .expect("a 401 with a WWW-Authenticate header spelled exactly so")
            .to_string();
        let auth = if challenge.starts_with("Basic") {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        } else if challenge.starts_with("Digest") {
            let alg = param(&challenge, "algorithm").unwrap_or_else(|| "MD5".into());
            assert_eq!(alg, "MD5", "this client knows only MD5 Digest: {challenge}");
            let realm = param(&challenge, "realm").unwrap();
            let nonce = param(&challenge, "nonce").unwrap();
            let (nc, cnonce) = ("00000001", "0a4f113b");
            let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
            let ha2 = md5_hex(&format!("{method}:{path}"));
            let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
            let mut a = format!(
                "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", algorithm=MD5"
            );
            if let Some(o) = param(&challenge, "opaque") {
                a.push_str(&format!(", opaque=\"{o}\""));
            }
            a
        } else {
            panic!("unknown first challenge {challenge}");
        };
        // libest retries on the same connection (so the tls-unique in the body still holds).
        Self::send(&mut tls, method, path, Some(&auth), &b)
    }
}

fn b64_decode(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .unwrap()
}

fn pkcs7_certs(body: &[u8]) -> Vec<X509> {
    let p7 = openssl::pkcs7::Pkcs7::from_der(&b64_decode(body)).unwrap();
    p7.signed()
        .unwrap()
        .certificates()
        .unwrap()
        .iter()
        .map(|c| c.to_owned())
        .collect()
}

fn csr(key: &PKey<Private>, cn: &str, pop: Option<&str>) -> Vec<u8> {
    let der = est_client::build_csr(key, &format!("CN={cn}"), &[], pop).unwrap();
    base64::engine::general_purpose::STANDARD
        .encode(der)
        .into_bytes()
}

#[test]
fn a_libest_like_client_completes_every_operation_against_the_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_demo(&data);
    let root = X509::from_pem(&std::fs::read(data.join("ca/root.pem")).unwrap()).unwrap();
    let mut c = Client {
        addr: server.addr.clone(),
        root,
        cert: None,
    };
    let pw = server.password.clone();
    let none = |_: &SslStream<TcpStream>| Vec::new();

    // /cacerts
    let r = c.request("GET", "/.well-known/est/cacerts", "demo", &pw, &none);
    assert_eq!(r.status, 200);
    assert!(
        r.exact("Content-Type")
            .unwrap()
            .starts_with("application/pkcs7-mime"),
        "{:?}",
        r.head
    );
    assert_eq!(r.exact("Content-Transfer-Encoding"), Some("base64"));
    assert!(!pkcs7_certs(&r.body).is_empty());

    // /csrattrs
    let r = c.request(
        "GET",
        "/.well-known/est/devices/csrattrs",
        "demo",
        &pw,
        &none,
    );
    assert_eq!(r.status, 200, "{:?}", r.head);
    assert_eq!(r.exact("Content-Type"), Some("application/csrattrs"));

    // /simpleenroll with Basic (the first challenge of the default label is Basic).
    let key = est_client::generate_key(est_client::KeyKind::P256).unwrap();
    let r = c.request(
        "POST",
        "/.well-known/est/simpleenroll",
        "demo",
        &pw,
        &|_| csr(&key, "libest-1.example", None),
    );
    r.ok();
    let cert = pkcs7_certs(&r.body).remove(0);
    assert!(cert.public_key().unwrap().public_eq(&key));

    // PoP: tls-unique of this connection in challengePassword (RFC 7030 §3.5) ...
    let key2 = est_client::generate_key(est_client::KeyKind::P256).unwrap();
    let r = c.request(
        "POST",
        "/.well-known/est/simpleenroll",
        "demo",
        &pw,
        &|tls| csr(&key2, "libest-pop.example", Some(&Client::tls_unique(tls))),
    );
    r.ok();
    // ... and a value that is not this connection's is refused, with a reason.
    let r = c.request(
        "POST",
        "/.well-known/est/simpleenroll",
        "demo",
        &pw,
        &|_| csr(&key2, "libest-pop.example", Some("AAAAAAAAAAAAAAAA")),
    );
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.exact("Content-Type").unwrap().starts_with("text/plain"));

    // /simplereenroll with the issued certificate in TLS.
    c.cert = Some((cert, key.clone()));
    let r = c.request(
        "POST",
        "/.well-known/est/simplereenroll",
        "demo",
        &pw,
        &|_| csr(&key, "libest-1.example", None),
    );
    r.ok();
    c.cert = None;

    // RSA /serverkeygen on the "legacy" label: Digest only, MD5 offered first.
    let r = c.request(
        "POST",
        "/.well-known/est/legacy/serverkeygen",
        "demo",
        &pw,
        &|_| {
            let k = est_client::generate_key(est_client::KeyKind::Rsa2048).unwrap();
            csr(&k, "libest-skg.example", None)
        },
    );
    r.ok();
    let ct = r.exact("Content-Type").unwrap();
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("Content-Type: application/pkcs8"), "{body}");
    assert!(
        body.contains("Content-Type: application/pkcs7-mime"),
        "{body}"
    );
}
