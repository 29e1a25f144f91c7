//! The OCSP responder end to end on the real binary (RFC 6960): enroll with curl + openssl,
//! ask `openssl ocsp` over TLS (POST, with and without a nonce) and curl (GET, Appendix A.1),
//! revoke with `estuary cert revoke`, ask again; then a delegated responder made by
//! `estuary ca ocsp-responder`. `openssl ocsp` judges every answer: signature, responder
//! authorization, status, reason and times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{estuary, restart, sh, start_demo};

/// `openssl ocsp` on `leaf` (issued by `issuer`) against the server at `url`, verified up to
/// the demo root; extra arguments go last. POST over TLS (OpenSSL 3.0's `ocsp` does not check
/// the server's TLS certificate: the answer's signature is what it verifies).
fn ask(
    work: &Path,
    data: &Path,
    url: &str,
    issuer: &str,
    what: &str,
    extra: &str,
) -> (bool, String) {
    sh(
        &format!(
            "openssl ocsp -issuer {issuer} {what} -url {url}/ocsp -CAfile {root} -resp_text {extra}",
            root = data.join("ca/root.pem").display(),
        ),
        work,
    )
}

#[test]
fn openssl_ocsp_sees_good_then_revoked_and_a_delegated_responder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work: PathBuf = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let pw = server.password.clone();
    let url = format!("https://{}", server.addr);
    let est = format!("{url}/.well-known/est");
    let root = data.join("ca/root.pem");
    let issuing = data.join("ca/default-issuing.pem");
    let issuing = issuing.to_str().unwrap();
    let curl = format!("curl -sS --fail-with-body --cacert {}", root.display());

    let (ok, out) = sh(
        &format!(
            "set -e
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev1.key -subj /CN=dev1 -addext subjectAltName=DNS:dev1.example -outform DER -out dev1.csr 2>/dev/null
            openssl base64 -in dev1.csr -out dev1.csr.b64
            {curl} -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @dev1.csr.b64 {est}/simpleenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out dev1.pem
            openssl x509 -in dev1.pem -noout -serial -text"
        ),
        &work,
    );
    assert!(ok, "{out}");
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap()
        .to_owned();
    // The certificate names the responder (RFC 5280 §4.2.2.1), beside its CRL.
    assert!(out.contains("Authority Information Access"), "{out}");
    assert!(out.contains(&format!("OCSP - URI:{url}/ocsp")), "{out}");
    assert!(out.contains(&format!("URI:{url}/crl/default.crl")), "{out}");

    // POST with a nonce (openssl's default): good, signed by the CA, the nonce echoed.
    let (ok, out) = ask(&work, &data, &url, issuing, "-cert dev1.pem", "");
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("dev1.pem: good"), "{out}");
    assert!(out.contains("OCSP Nonce"), "{out}");
    // Signed by the CA: the responderID is the issuing CA's key hash.
    assert_eq!(responder_id(&out), ski(&work, issuing), "{out}");
    assert!(out.contains("Next Update: "), "{out}");
    assert!(!out.contains("WARNING: no nonce"), "{out}");
    // Without a nonce.
    let (ok, out) = ask(&work, &data, &url, issuing, "-cert dev1.pem", "-no_nonce");
    assert!(ok, "{out}");
    assert!(
        out.contains("Response verify OK") && out.contains("dev1.pem: good"),
        "{out}"
    );
    assert!(!out.contains("OCSP Nonce"), "{out}");

    // GET (RFC 6960 Appendix A.1): the URL-encoded base64 of the DER request in the path,
    // with %2F/%2B/%3D and with the characters left as they are; cacheable until nextUpdate.
    let (ok, out) = sh(
        &format!(
            "set -e
            openssl ocsp -issuer {issuing} -cert dev1.pem -no_nonce -reqout req.der
            b64=$(openssl base64 -A -in req.der)
            enc=$(printf %s \"$b64\" | sed 's,/,%2F,g; s,+,%2B,g; s,=,%3D,g')
            {curl} -D get.headers -o get.der \"{url}/ocsp/$enc\"
            {curl} -o raw.der \"{url}/ocsp/$b64\"
            cat get.headers
            cmp get.der raw.der || true
            openssl ocsp -respin get.der -issuer {issuing} -cert dev1.pem -CAfile {root} -resp_text
            openssl ocsp -respin raw.der -issuer {issuing} -cert dev1.pem -CAfile {root}",
            root = root.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    let lower = out.to_lowercase();
    assert!(
        lower.contains("content-type: application/ocsp-response"),
        "{out}"
    );
    assert!(lower.contains("cache-control: max-age="), "{out}");
    assert_eq!(out.matches("dev1.pem: good").count(), 2, "{out}");
    assert_eq!(out.matches("Response verify OK").count(), 2, "{out}");

    // A malformed request: an OCSPResponse saying so, not an HTTP error.
    let (ok, out) = sh(
        &format!(
            "set -e
            printf 'not an OCSP request' > bad.der
            {curl} -w '%{{http_code}} %{{content_type}}\\n' -H 'Content-Type: application/ocsp-request' --data-binary @bad.der -o bad-resp.der {url}/ocsp
            openssl ocsp -respin bad-resp.der -resp_text || true
            {curl} -o bad-get.der {url}/ocsp/not!base64
            openssl ocsp -respin bad-get.der -resp_text || true
            curl -s -o /dev/null -w '%{{http_code}}\\n' --cacert {root} -H 'Content-Type: text/plain' --data-binary @bad.der {url}/ocsp
            curl -s -o /dev/null -w '%{{http_code}}\\n' --cacert {root} -X PUT {url}/ocsp",
            root = root.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.contains("200 application/ocsp-response"), "{out}");
    assert_eq!(out.matches("malformedrequest (1)").count(), 2, "{out}");
    assert!(out.contains("\n415\n") && out.ends_with("405\n"), "{out}");

    // A serial this CA never issued: unknown. A CertID of a CA that is not ours (the root
    // issues no end-entity certificates here): unauthorized.
    let (ok, out) = ask(&work, &data, &url, issuing, "-serial 0x0badc0de", "");
    assert!(ok, "{out}");
    assert!(out.contains("0x0badc0de: unknown"), "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    let (_, out) = ask(
        &work,
        &data,
        &url,
        root.to_str().unwrap(),
        &format!("-cert {issuing}"),
        "",
    );
    assert!(out.contains("unauthorized (6)"), "{out}");
    // The devices CA answers for its own certificates at the same URL.
    let devices = data.join("ca/devices-issuing.pem");
    let (ok, out) = ask(
        &work,
        &data,
        &url,
        devices.to_str().unwrap(),
        "-serial 0x01",
        "",
    );
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains("0x01: unknown"), "{out}");

    // Revoke with the CLI while the server runs: the next answer says revoked, with the
    // reason and time (the store is read on every request).
    let (ok, out) = estuary(
        &["cert", "revoke", &serial, "--reason", "keyCompromise"],
        &data,
    );
    assert!(ok && out.contains("OCSP answers"), "{out}");
    let (ok, out) = ask(&work, &data, &url, issuing, "-cert dev1.pem", "");
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("dev1.pem: revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(out.contains("Revocation Time: "), "{out}");

    // A delegated responder (RFC 6960 §4.2.2.2): made by the CLI, named in estuary.toml.
    let (ok, out) = estuary(
        &["ca", "ocsp-responder", "--ca", "default", "--days", "7"],
        &data,
    );
    assert!(ok, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("ocsp_responder_"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (ok, out) = sh(
        "openssl x509 -in ../data/ca/default-ocsp-responder.pem -noout -text",
        &work,
    );
    assert!(
        ok && out.contains("OCSP Signing") && out.contains("OCSP No Check"),
        "{out}"
    );
    let toml_path = data.join("estuary.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let anchor = "[[ca]]\nname = \"default\"\n";
    assert!(toml.contains(anchor), "{toml}");
    let toml = toml.replacen(anchor, &format!("{anchor}{}\n", lines.join("\n")), 1);
    std::fs::write(&toml_path, toml).unwrap();
    let (ok, out) = estuary(&["config", "check"], &data);
    assert!(ok, "{out}");
    drop(server);
    let server = restart(&data, &pw);
    let url = format!("https://{}", server.addr);

    let (ok, out) = ask(
        &work,
        &data,
        &url,
        issuing,
        "-cert dev1.pem",
        &format!("-verify_other {issuing}"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("dev1.pem: revoked"), "{out}");
    // The responder's certificate travels in the answer.
    assert!(out.contains("Subject: CN=default OCSP Responder"), "{out}");
    // Signed by the delegate: the responderID is its key hash (= its SKI), no longer the CA's.
    let delegate = ski(&work, "../data/ca/default-ocsp-responder.pem");
    assert_eq!(responder_id(&out), delegate, "{out}");
    assert_ne!(delegate, ski(&work, issuing));
}

/// The `Responder Id:` (byKey: hex SHA-1 of the key) of `openssl ocsp -resp_text` output.
fn responder_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Responder Id: "))
        .expect("a Responder Id line")
        .to_uppercase()
}

/// A certificate's SubjectKeyIdentifier, hex, upper case (method 1: the SHA-1 of its key).
fn ski(work: &Path, pem: &str) -> String {
    let (ok, out) = sh(
        &format!("openssl x509 -in {pem} -noout -ext subjectKeyIdentifier"),
        work,
    );
    assert!(ok, "{out}");
    out.lines()
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_uppercase()
}
