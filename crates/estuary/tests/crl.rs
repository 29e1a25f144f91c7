//! Revocation end to end on the real binary (RFC 5280 §5): enroll with curl + openssl, revoke
//! with `estuary cert revoke` while the server runs, fetch /crl/default.crl with curl, and let
//! `openssl crl` and `openssl verify -crl_check` judge the result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{estuary, sh, start_demo};

#[test]
fn revoke_with_the_cli_then_the_served_crl_fails_openssl_verification() {
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
    let curl = format!("curl -sS --fail-with-body --cacert {}", root.display());

    // Enroll two certificates as the README shows (openssl CSR, curl, openssl pkcs7).
    let mut serials = Vec::new();
    for name in ["dev1", "dev2"] {
        let (ok, out) = sh(
            &format!(
                "set -e
                openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key -subj /CN={name} -addext subjectAltName=DNS:{name}.example -outform DER -out {name}.csr 2>/dev/null
                openssl base64 -in {name}.csr -out {name}.csr.b64
                {curl} -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @{name}.csr.b64 {est}/simpleenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out {name}.pem
                openssl verify -CAfile {root} -untrusted {issuing} {name}.pem
                openssl x509 -in {name}.pem -noout -serial",
                root = root.display(),
                issuing = issuing.display()
            ),
            &work,
        );
        assert!(ok && out.contains(&format!("{name}.pem: OK")), "{out}");
        serials.push(
            out.lines()
                .find_map(|l| l.strip_prefix("serial="))
                .unwrap()
                .to_owned(),
        );
    }
    let (revoked, kept) = (&serials[0], &serials[1]);

    // The certificate names where its CRL is (RFC 5280 §4.2.1.13).
    let crl_url = format!("{url}/crl/default.crl");
    let (ok, out) = sh("openssl x509 -in dev1.pem -noout -text", &work);
    assert!(ok, "{out}");
    assert!(out.contains("X509v3 CRL Distribution Points"), "{out}");
    assert!(out.contains(&format!("URI:{crl_url}")), "{out}");

    // Before: an empty CRL, DER, application/pkix-crl.
    let (ok, out) = sh(
        &format!(
            "set -e
            {curl} -o before.der -w '%{{content_type}}\\n' {crl_url}
            openssl crl -inform DER -in before.der -noout -text"
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.starts_with("application/pkix-crl"), "{out}");
    assert!(out.contains("No Revoked Certificates"), "{out}");

    // Revoke through the CLI (the store, beside the running server), as openssl prints the
    // serial (upper case).
    let (ok, out) = sh("date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ", &work);
    assert!(ok, "{out}");
    let an_hour_ago = out.trim().to_owned();
    let (ok, out) = estuary(
        &[
            "cert",
            "revoke",
            revoked,
            "--reason",
            "KEYCOMPROMISE",
            "--invalidity-date",
            &an_hour_ago,
        ],
        &data,
    );
    assert!(ok, "{out}");
    assert!(out.starts_with("revoked "), "{out}");
    assert!(
        out.contains("keyCompromise") && out.contains("CN=dev1"),
        "{out}"
    );
    let (ok, out) = estuary(&["cert", "revoke", revoked, "--reason", "1"], &data);
    assert!(ok && out.contains("already revoked"), "{out}");
    for (serial, reason) in [
        ("0badc0de", "keyCompromise"),
        (kept.as_str(), "compromised"),
        (kept.as_str(), "removeFromCRL"),
    ] {
        let (ok, out) = estuary(&["cert", "revoke", serial, "--reason", reason], &data);
        assert!(!ok, "{serial} {reason}: {out}");
    }
    let (ok, out) = estuary(&["cert", "list"], &data);
    assert!(ok, "{out}");
    let status_of = |serial: &str| {
        out.lines()
            .find(|l| l.starts_with(&serial.to_lowercase()))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
    };
    assert_eq!(status_of(revoked).as_deref(), Some("revoked"), "{out}");
    assert_eq!(status_of(kept).as_deref(), Some("valid"), "{out}");

    // Operators' filters, as JSON lines: by status, SAN (DNS case-insensitive), subject and
    // expiry window (valid certificates only).
    let listed = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["cert", "list", "--json"];
        all.extend_from_slice(args);
        let (ok, out) = estuary(&all, &data);
        assert!(ok, "{args:?}: {out}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let serials_of = |rows: &[serde_json::Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["serial"].as_str().unwrap().to_owned())
            .collect()
    };
    let (revoked_lc, kept_lc) = (revoked.to_lowercase(), kept.to_lowercase());
    assert_eq!(
        serials_of(&listed(&["--status", "revoked"])),
        std::slice::from_ref(&revoked_lc)
    );
    let by_san = listed(&["--san", "dns:DEV2.example"]);
    assert_eq!(serials_of(&by_san), std::slice::from_ref(&kept_lc));
    assert_eq!(by_san[0]["san"], serde_json::json!(["dns:dev2.example"]));
    assert_eq!(by_san[0]["status"], "valid");
    assert_eq!(serials_of(&listed(&["--subject", "CN=dev1"])), [revoked_lc]);
    assert_eq!(serials_of(&listed(&["--expiring", "3650d"])), [kept_lc]);
    assert!(listed(&["--expiring", "1h"]).is_empty());
    assert!(listed(&["--san", "dns:nobody.example"]).is_empty());
    let (ok, _) = estuary(&["cert", "list", "--status", "expired"], &data);
    assert!(!ok);

    // The server's cached CRL notices the other process's revocation (within a second).
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let (ok, out) = sh(
        &format!(
            "set -e
            {curl} -o crl.der {crl_url}
            openssl crl -inform DER -in crl.der -noout -text
            openssl crl -inform DER -in crl.der -out crl.pem
            openssl crl -in crl.pem -CAfile {issuing} -noout",
            issuing = issuing.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("Serial Number: {revoked}")), "{out}");
    assert!(!out.contains(kept.as_str()), "{out}");
    assert!(out.contains("Key Compromise"), "{out}");
    assert!(out.contains("Invalidity Date"), "{out}");
    assert!(out.contains("verify OK"), "{out}");

    // What a relying party does with it: the revoked certificate fails, the other passes.
    let verify = |pem: &str| {
        sh(
            &format!(
                "openssl verify -crl_check -CAfile {} -untrusted {} -CRLfile crl.pem {pem}",
                root.display(),
                issuing.display()
            ),
            &work,
        )
    };
    let (ok, out) = verify("dev1.pem");
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify("dev2.pem");
    assert!(ok && out.contains("dev2.pem: OK"), "{out}");

    // `estuary crl` writes the same list; an unknown CA is an error.
    let cli_crl = work.join("cli.der");
    let (ok, out) = estuary(&["crl", "--out", cli_crl.to_str().unwrap()], &data);
    assert!(ok && out.contains("1 revoked"), "{out}");
    let (ok, out) = sh("openssl crl -inform DER -in cli.der -noout -text", &work);
    assert!(
        ok && out.contains(&format!("Serial Number: {revoked}")),
        "{out}"
    );
    let (ok, out) = estuary(&["crl", "--ca", "nonesuch", "--out", "x.der"], &data);
    assert!(!ok && out.contains("unknown CA"), "{out}");

    // The devices CA has its own (empty) CRL; unknown CAs are 404.
    let (ok, out) = sh(
        &format!(
            "{curl} {url}/crl/devices.crl | openssl crl -inform DER -noout -text | grep -c 'No Revoked Certificates'
            curl -s -o /dev/null -w '%{{http_code}}' --cacert {} {url}/crl/nonesuch.crl",
            root.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.starts_with("1\n") && out.ends_with("404"), "{out}");
    drop(server);
}
