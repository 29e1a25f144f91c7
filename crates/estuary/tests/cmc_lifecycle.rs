//! `estuary client fullcmc enroll --mac` (AuthenticatedData, CMC-18) and `--encrypt-to`
//! (EnvelopedData, CMC-20), then `revoke|get-crl` against the real `estuary serve`: a certificate
//! revoked by a Revocation Request signed with itself (CMC-72), another one revoked unsigned
//! with its enrollment's shared secret as passphrase, a wrong passphrase refused; the CRL
//! fetched with Get CRL (CMC-71) lists both, and `openssl crl` / `openssl verify -crl_check`
//! agree, independently of our code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, client, sh, start_demo};

const SECRET: &str = "lifecycle-shared-secret-0123456";

fn serial(work: &Path, cert: &str) -> String {
    let (ok, out) = sh(&format!("openssl x509 -in {cert} -noout -serial"), work);
    assert!(ok, "{out}");
    out.trim().trim_start_matches("serial=").to_string()
}

#[test]
fn fullcmc_revoke_and_get_crl_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    std::fs::write(work.join("pw.txt"), format!("{}\n", server.password)).unwrap();
    std::fs::write(work.join("secret.txt"), SECRET).unwrap();
    std::fs::write(work.join("wrong.txt"), "not-the-shared-secret-000").unwrap();
    let basic = ["--user", "demo", "--password-file", "pw.txt"];

    // One certificate by Basic, one by Identity Proof with a provisioned secret.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            &basic[..],
            &[
                "fullcmc",
                "enroll",
                "--subject",
                "CN=a.example",
                "--out-key",
                "a.key",
                "--out-cert",
                "a.pem",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    common::add_cmc_secret(&data, "dev-b", SECRET);
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "enroll",
            "--subject",
            "CN=b.example",
            "--ident",
            "dev-b",
            "--secret-file",
            "secret.txt",
            "--out-key",
            "b.key",
            "--out-cert",
            "b.pem",
        ],
    );
    assert!(ok, "{out}");
    // AuthenticatedData keyed by the shared secret (CMC-18), no HTTP credentials.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "enroll",
            "--subject",
            "CN=mac.example",
            "--ident",
            "dev-b",
            "--secret-file",
            "secret.txt",
            "--mac",
            "--out-key",
            "mac.key",
            "--out-cert",
            "mac.pem",
        ],
    );
    assert!(ok && out.contains("success"), "{out}");
    // Encrypted to the CA's CMC encryption certificate (CMC-20), as `ca cert --encryption`
    // prints it.
    let enc = Command::new(BIN)
        .args(["ca", "cert", "--encryption", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(enc.status.success());
    std::fs::write(work.join("cmc-enc.pem"), &enc.stdout).unwrap();
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            &basic[..],
            &[
                "fullcmc",
                "enroll",
                "--subject",
                "CN=enc.example",
                "--encrypt-to",
                "cmc-enc.pem",
                "--out-key",
                "enc.key",
                "--out-cert",
                "enc.pem",
            ],
        ]
        .concat(),
    );
    assert!(ok && out.contains("success"), "{out}");
    // A third, never revoked, to show the CRL does not list everything.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            &basic[..],
            &[
                "fullcmc",
                "enroll",
                "--subject",
                "CN=c.example",
                "--out-key",
                "c.key",
                "--out-cert",
                "c.pem",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{out}");

    // a: signed with itself.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "a.pem",
            "--key",
            "a.key",
            "fullcmc",
            "revoke",
            "--revoke-cert",
            "a.pem",
            "--reason",
            "keyCompromise",
        ],
    );
    assert!(ok && out.contains("success"), "{out}");
    // b: unsigned; a wrong passphrase first.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "revoke",
            "--revoke-cert",
            "b.pem",
            "--passphrase-file",
            "wrong.txt",
        ],
    );
    assert!(!ok && out.contains("badIdentity"), "{out}");
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "revoke",
            "--revoke-cert",
            "b.pem",
            "--passphrase-file",
            "secret.txt",
            "--reason",
            "superseded",
        ],
    );
    assert!(ok && out.contains("success"), "{out}");

    // Get CRL, signed with c.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "c.pem",
            "--key",
            "c.key",
            "fullcmc",
            "get-crl",
            "--issuer-of",
            "c.pem",
            "--out",
            "crl.der",
        ],
    );
    assert!(ok, "{out}");
    let (sa, sb, sc) = (
        serial(&work, "a.pem"),
        serial(&work, "b.pem"),
        serial(&work, "c.pem"),
    );
    let (ok, text) = sh("openssl crl -inform DER -in crl.der -noout -text", &work);
    assert!(ok, "{text}");
    let upper = text.to_uppercase();
    assert!(upper.contains(&sa) && upper.contains(&sb), "{text}");
    assert!(!upper.contains(&sc), "{text}");
    assert!(
        text.contains("Key Compromise") && text.contains("Superseded"),
        "{text}"
    );
    let (ok, out) = sh(
        &format!(
            "openssl crl -inform DER -in crl.der -out crl.pem
            cat {issuing} crl.pem > chain.pem
            openssl verify -crl_check -CAfile {root} -untrusted {issuing} -CRLfile crl.pem a.pem || true
            openssl verify -crl_check -CAfile {root} -untrusted {issuing} -CRLfile crl.pem c.pem",
            root = root.display(),
            issuing = data.join("ca/default-issuing.pem").display(),
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.contains("certificate revoked"), "{out}");
    assert!(out.contains("c.pem: OK"), "{out}");
}
