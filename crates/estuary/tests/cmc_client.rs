//! `estuary client fullcmc` against the real `estuary serve` on its demo setup (RFC 7030 §4.3,
//! RFC 5272): enrollment with HTTP Basic (PKCS#10 and CRMF, signed with the request key,
//! CMC-17), with Identification + Identity Proof V2 and no HTTP credentials (CMC-44), a wrong
//! shared secret (a CMC failure in a 4xx, EST-99, shown as badIdentity), and renewal signed with
//! the issued certificate (CMC-21). Every response is verified by the client against the root
//! and matched to its request by recipientNonce and transactionId (CMC-50, CMC-51); the
//! certificates are checked again with `openssl verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{check_cert, client, sh, start_demo};

const SECRET: &str = "fullcmc-client-shared-secret-0123";

fn field(work: &Path, cert: &str, what: &str) -> String {
    let (ok, out) = sh(
        &format!("openssl x509 -in {cert} -noout -{what} -nameopt RFC2253"),
        work,
    );
    assert!(ok, "{out}");
    out.trim().to_string()
}

#[test]
fn fullcmc_enroll_identity_proof_and_renew_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    std::fs::write(work.join("pw.txt"), format!("{}\n", server.password)).unwrap();
    let basic = ["--user", "demo", "--password-file", "pw.txt"];

    // HTTP Basic, PKCS#10 then CRMF, each signed with its own key (CMC-17); dataReturn echoed.
    for (name, extra) in [
        ("p10", &["--key-type", "p256"][..]),
        ("crmf", &["--crmf", "--key-type", "p384"][..]),
        ("rsa", &["--key-type", "rsa2048"][..]),
    ] {
        let cn = format!("cmc-{name}.example");
        let (subject, san) = (format!("CN={cn}"), format!("dns:{cn}"));
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args: Vec<&str> = basic.to_vec();
        args.extend([
            "fullcmc",
            "enroll",
            "--subject",
            &subject,
            "--san",
            &san,
            "--data-return",
            "opaque-42",
            "--out-key",
            &key,
            "--out-cert",
            &cert,
        ]);
        args.extend(extra);
        let (ok, out) = client(&url, &root, &work, &args);
        assert!(ok, "{name}: {out}");
        assert!(out.contains("success"), "{name}: {out}");
        assert!(
            out.contains("dataReturn echoed: opaque-42"),
            "{name}: {out}"
        );
        check_cert(&work, &data, &cert, &key);
        assert_eq!(field(&work, &cert, "subject"), format!("subject=CN={cn}"));
        assert!(
            field(&work, &cert, "ext subjectAltName").contains(&format!("DNS:{cn}")),
            "{name}"
        );
    }

    // Without any credentials the client refuses to send; with a wrong password the server's
    // text/plain 401 is the error.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "enroll",
            "--subject",
            "CN=x.example",
            "--out-key",
            "x.key",
            "--out-cert",
            "x.pem",
        ],
    );
    assert!(!ok && out.contains("--ident"), "{out}");
    std::fs::write(work.join("bad-pw.txt"), "not-the-password\n").unwrap();
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--user",
            "demo",
            "--password-file",
            "bad-pw.txt",
            "fullcmc",
            "enroll",
            "--subject",
            "CN=x.example",
            "--out-key",
            "x.key",
            "--out-cert",
            "x.pem",
        ],
    );
    assert!(!ok && out.contains("401"), "{out}");
    assert!(!work.join("x.pem").exists() && !work.join("x.key").exists());

    // A shared secret provisioned by the operator; Identity Proof V2, no HTTP credentials.
    common::add_cmc_secret(&data, "dev-1", &format!("{SECRET}\n"));
    std::fs::write(work.join("secret.txt"), format!("{SECRET}\n")).unwrap();
    std::fs::write(work.join("wrong.txt"), "fullcmc-client-wrong-secret-0123\n").unwrap();
    let idp = |secret: &str, out: &str| {
        let (key, cert) = (format!("{out}.key"), format!("{out}.pem"));
        client(
            &url,
            &root,
            &work,
            &[
                "fullcmc",
                "enroll",
                "--subject",
                "CN=dev1.example",
                "--san",
                "dns:dev1.example",
                "--ident",
                "dev-1",
                "--secret-file",
                secret,
                "--out-key",
                &key,
                "--out-cert",
                &cert,
            ],
        )
    };
    let (ok, out) = idp("secret.txt", "idp");
    assert!(ok, "{out}");
    check_cert(&work, &data, "idp.pem", "idp.key");
    assert_eq!(
        field(&work, "idp.pem", "subject"),
        "subject=CN=dev1.example"
    );

    // The wrong secret: a verified CMC failure response, in words, and a failed exit.
    let (ok, out) = idp("wrong.txt", "idp-wrong");
    assert!(!ok, "{out}");
    assert!(out.contains("badIdentity"), "{out}");
    assert!(out.contains("failed"), "{out}");
    assert!(!out.contains(SECRET), "{out}");
    assert!(!work.join("idp-wrong.pem").exists() && !work.join("idp-wrong.key").exists());

    // Renewal signed with the issued certificate (CMC-21), no HTTP credentials: same key,
    // then a new key; same subject, a new certificate each time.
    let serial = |c: &str| field(&work, c, "serial");
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "p10.pem",
            "--key",
            "p10.key",
            "fullcmc",
            "renew",
            "--out-cert",
            "p10-renewed.pem",
        ],
    );
    assert!(ok, "{out}");
    check_cert(&work, &data, "p10-renewed.pem", "p10.key");
    assert_eq!(
        field(&work, "p10-renewed.pem", "subject"),
        field(&work, "p10.pem", "subject")
    );
    assert_ne!(serial("p10-renewed.pem"), serial("p10.pem"));
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "idp.pem",
            "--key",
            "idp.key",
            "fullcmc",
            "renew",
            "--new-key",
            "--out-key",
            "idp-new.key",
            "--out-cert",
            "idp-new.pem",
        ],
    );
    assert!(ok, "{out}");
    check_cert(&work, &data, "idp-new.pem", "idp-new.key");
    assert_eq!(
        field(&work, "idp-new.pem", "subject"),
        "subject=CN=dev1.example"
    );
    assert!(
        field(&work, "idp-new.pem", "ext subjectAltName").contains("DNS:dev1.example"),
        "{out}"
    );
    assert_ne!(serial("idp-new.pem"), serial("idp.pem"));
    let (ok, _) = sh("cmp -s idp.key idp-new.key", &work);
    assert!(!ok, "--new-key must make a new key");
}

/// CMC-67 from the command line: `fullcmc enroll --encryption-pop --mac` sends a CRMF request
/// with keyEncipherment (RSA) / keyAgreement (EC) POP in AuthenticatedData, decrypts the CA's
/// Encrypted POP challenge, answers with a Decrypted POP and writes the certificate.
#[test]
fn fullcmc_enroll_with_encrypted_pop() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    common::add_cmc_secret(&data, "enc-dev", &format!("{SECRET}\n"));
    std::fs::write(work.join("secret.txt"), format!("{SECRET}\n")).unwrap();
    for (name, kind) in [("rsa", "rsa2048"), ("ec", "p256")] {
        let cn = format!("enc-{name}.example");
        let (key, cert) = (format!("enc-{name}.key"), format!("enc-{name}.pem"));
        let (ok, out) = client(
            &url,
            &root,
            &work,
            &[
                "fullcmc",
                "enroll",
                "--encryption-pop",
                "--mac",
                "--key-type",
                kind,
                "--subject",
                &format!("CN={cn}"),
                "--ident",
                "enc-dev",
                "--secret-file",
                "secret.txt",
                "--out-key",
                &key,
                "--out-cert",
                &cert,
            ],
        );
        assert!(ok, "{name}: {out}");
        assert!(out.contains("popRequired"), "{name}: {out}");
        assert!(out.contains("Decrypted POP"), "{name}: {out}");
        check_cert(&work, &data, &cert, &key);
        assert_eq!(field(&work, &cert, "subject"), format!("subject=CN={cn}"));
    }
    // Without --mac the key cannot sign the PKIData: refused by the command line.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "enroll",
            "--encryption-pop",
            "--subject",
            "CN=x.example",
            "--out-key",
            "x.key",
            "--out-cert",
            "x.pem",
        ],
    );
    assert!(!ok && out.contains("--mac"), "{out}");
}
