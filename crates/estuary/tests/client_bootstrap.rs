//! `estuary client bootstrap` (EST-68, issue 11 item 7): the CA is fetched without a trust
//! anchor and accepted by its SHA-256 fingerprint, saved under the user's config dir
//! ($XDG_CONFIG_HOME/estuary/trust/), and later commands for that server need no
//! --trust-anchor; a wrong fingerprint saves nothing, and another server (port) has no anchor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, check_cert, sh, start_demo};

fn client(config: &Path, work: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("client")
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .current_dir(work)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn bootstrap_saves_the_trust_anchor_for_later_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    std::fs::write(work.join("pw.txt"), format!("{}\n", server.password)).unwrap();
    let (ok, fp) = sh(
        &format!(
            "openssl x509 -in {} -noout -fingerprint -sha256 | cut -d= -f2",
            data.join("ca/root.pem").display()
        ),
        &work,
    );
    assert!(ok, "{fp}");
    let fp = fp.trim().to_string();
    let saved = config.join("estuary/trust").join(format!(
        "127.0.0.1_{}.pem",
        server.addr.rsplit(':').next().unwrap()
    ));

    // Without any anchor: refused, with the hint.
    let enroll = |name: &str| {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let subject = format!("CN={name}.example");
        let r = client(
            &config,
            &work,
            &[
                "--url",
                &url,
                "--user",
                "demo",
                "--password-file",
                "pw.txt",
                "enroll",
                "--subject",
                &subject,
                "--out-key",
                &key,
                "--out-cert",
                &cert,
            ],
        );
        (r, key, cert)
    };
    let ((ok, out), _, _) = enroll("early");
    assert!(!ok && out.contains("bootstrap"), "{out}");

    // A fingerprint that matches no CA certificate: nothing is saved.
    let wrong = "00".repeat(32);
    let (ok, out) = client(
        &config,
        &work,
        &["--url", &url, "bootstrap", "--expect-fingerprint", &wrong],
    );
    assert!(!ok && out.contains("NOT trusted"), "{out}");
    assert!(!saved.exists());

    // The right one (as `openssl x509 -fingerprint` prints it, colons and all).
    let (ok, out) = client(
        &config,
        &work,
        &["--url", &url, "bootstrap", "--expect-fingerprint", &fp],
    );
    assert!(ok, "{out}");
    assert!(saved.exists(), "{out}");
    // The saved anchors include the root the fingerprint named.
    let root = std::fs::read_to_string(data.join("ca/root.pem")).unwrap();
    let saved_pem = std::fs::read_to_string(&saved).unwrap();
    let body = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert!(body(&saved_pem).contains(&body(&root)), "{saved_pem}");

    // Later commands use it.
    let ((ok, out), key, cert) = enroll("later");
    assert!(ok, "{out}");
    check_cert(&work, &data, &cert, &key);

    // Another server (another port) is not covered by it.
    let (ok, out) = client(&config, &work, &["--url", "https://127.0.0.1:1", "cacerts"]);
    assert!(!ok && out.contains("bootstrap"), "{out}");
    drop(server);
}
