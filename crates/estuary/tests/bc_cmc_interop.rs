//! Interop with an independent CMC implementation: Bouncy Castle 1.72's CMC, CMS and CRMF
//! classes (`interop/bc/CmcInterop.java`) build Full PKI Requests that the real `estuary serve`
//! must accept over TLS on loopback, and parse and verify every response it sends (RFC 5272,
//! RFC 7030 §4.3): PKCS#10 (P-256 and RSA) and CRMF requests signed with their own key
//! (CMC-17), Identity Proof V2 with a provisioned shared secret (CMC-43, CMC-44), an unknown
//! control (badRequest naming it, CMC-9), a broken signature (badMessageCheck on body part 0,
//! CMC-16) and a replay (badRequest, CMC-53). Each response's signature is checked by BC
//! against the root, and its nonces, transactionId and dataReturn (CMC-50, CMC-51, CMC-54).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{BIN, compile_bc, start_demo};

#[test]
fn bouncy_castle_cmc_client_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = compile_bc("CmcInterop", tmp.path());
    let data = tmp.path().join("data");
    let server = start_demo(&data);

    // The shared secret BC proves its identity with, provisioned by the operator.
    let secret = "bc-interop-shared-secret-42";
    common::add_cmc_secret(&data, "bc-ident", secret);

    let root = data.join("ca/root.pem");
    let root = root.display().to_string();
    common::run_bc(
        &cp,
        "CmcInterop",
        &[
            &server.addr,
            &root,
            "demo",
            &server.password,
            "bc-ident",
            secret,
        ],
    );

    // What BC enrolled is recorded, and nothing for the refused requests.
    let list = Command::new(BIN)
        .args(["cert", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for cn in [
        "bc-cmc-p10.example",
        "bc-cmc-rsa.example",
        "bc-cmc-crmf.example",
        "bc-cmc-idp.example",
        "bc-cmc-authdata.example",
        "bc-cmc-encpop.example",
    ] {
        assert!(
            list.contains(&format!("CN={cn}")),
            "{cn} not recorded:\n{list}"
        );
    }
    assert!(
        list.contains("cmc-secret:bc-ident"),
        "the identity-proof enrollment is recorded under its shared secret:\n{list}"
    );
}

/// Bouncy Castle on the `manual` label: pending with pendInfo, Query Pending still pending with
/// the same pendInfo, the operator approves (`estuary request approve <pendToken hex>`), and
/// BC's Query Pending then gets the certificate (CMC-64, EST-100).
#[test]
fn bouncy_castle_pending_and_query_pending() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = compile_bc("CmcInterop", tmp.path());
    let data = tmp.path().join("data");
    let server = start_demo(&data);
    let root = data.join("ca/root.pem");
    let state = tmp.path().join("pending.state");
    let run = |mode: &str| {
        let out = Command::new("java")
            .args(["-cp", &cp, "CmcInterop", mode, &server.addr])
            .arg(&root)
            .args(["demo", &server.password])
            .arg(&state)
            .output()
            .expect("java");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{mode} failed:\n{stdout}");
        assert!(stdout.contains("ALL OK"), "{stdout}");
        stdout
    };
    let started = run("pending-start");
    let token = started
        .lines()
        .find_map(|l| l.strip_prefix("PENDTOKEN "))
        .expect("PENDTOKEN line")
        .trim()
        .to_string();
    // The operator sees the request under its pendToken and approves it.
    let list = Command::new(BIN)
        .args(["request", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&token));
    let ok = Command::new(BIN)
        .args(["request", "approve", "--data-dir"])
        .arg(&data)
        .arg(&token)
        .status()
        .unwrap();
    assert!(ok.success());
    run("pending-finish");
    let list = Command::new(BIN)
        .args(["cert", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("CN=bc-cmc-pending.example"));
}

/// curl posts a Bouncy Castle-built request; `openssl cms -verify` checks the Full PKI
/// Response's signature and chain, `openssl asn1parse` shows the PKIResponse, and an unknown
/// control comes back as a 400 carrying a CMC response (EST-99) that openssl verifies too.
#[test]
fn openssl_verifies_full_pki_responses_fetched_with_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_demo(&data);
    let vectors =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../est-cmc/tests/vectors/bc");
    let script = format!(
        r#"set -e
D={data}; U=https://{addr}/.well-known/est
post() {{
  openssl base64 -in {v}/$1 -out req.b64
  curl -s -o resp.b64 -w '%{{http_code}} %{{content_type}}\n' --cacert $D/ca/root.pem -u "demo:{pw}" \
    -H 'Content-Type: application/pkcs7-mime; smime-type=CMC-request' --data-binary @req.b64 $U/fullcmc
  openssl base64 -d -in resp.b64 -out resp.der
  openssl cms -verify -inform DER -in resp.der -CAfile $D/ca/root.pem -purpose any -out pkiresponse.der 2>&1
  openssl asn1parse -inform DER -in pkiresponse.der
}}
post p10-ec.der
echo ===
post p10-unknown-control.der
"#,
        data = data.display(),
        addr = server.addr,
        pw = server.password,
        v = vectors.display(),
    );
    let (ok, out) = common::sh(&script, tmp.path());
    assert!(ok, "{out}");
    let (success, failure) = out.split_once("===").unwrap();
    assert!(
        success.contains("200 application/pkcs7-mime; smime-type=CMC-response"),
        "{success}"
    );
    assert!(success.contains("Verification successful"), "{success}");
    // id-cmc-statusInfoV2, recipientNonce and the echoed dataReturn.
    assert!(
        success.contains(":1.3.6.1.5.5.7.7.25") && success.contains(":id-cmc-recipientNonce"),
        "{success}"
    );
    assert!(success.contains(":bc-data-return"), "{success}");
    assert!(
        failure.contains("400 application/pkcs7-mime; smime-type=CMC-response"),
        "{failure}"
    );
    assert!(failure.contains("Verification successful"), "{failure}");
}

/// CMC-53 across restarts: a request accepted once is refused as a replay after the server
/// restarted on the same store.
#[test]
fn replays_are_refused_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_demo(&data);
    let vectors =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../est-cmc/tests/vectors/bc");
    let post = |addr: &str, pw: &str| {
        let script = format!(
            r#"set -e
openssl base64 -in {v}/p10-rsa.der -out req.b64
curl -s -o resp.b64 -w '%{{http_code}}\n' --cacert {d}/ca/root.pem -u "demo:{pw}" \
  -H 'Content-Type: application/pkcs7-mime; smime-type=CMC-request' --data-binary @req.b64 \
  https://{addr}/.well-known/est/fullcmc
openssl base64 -d -in resp.b64 | openssl cms -verify -inform DER -CAfile {d}/ca/root.pem -purpose any 2>/dev/null | openssl asn1parse -inform DER
"#,
            v = vectors.display(),
            d = data.display(),
        );
        common::sh(&script, tmp.path())
    };
    let (ok, out) = post(&server.addr, &server.password);
    assert!(ok && out.starts_with("200"), "{out}");
    let password = server.password.clone();
    drop(server);
    let server = common::restart(&data, &password);
    let (ok, out) = post(&server.addr, &password);
    assert!(
        ok && out.starts_with("400"),
        "the replay is refused after a restart: {out}"
    );
}
