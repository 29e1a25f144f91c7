//! Lifecycle (issue 11): `estuary serve` warns at start about a certificate it depends on that
//! expires within 30 days: here the TLS server certificate, replaced by a 10-day one for the
//! same key; the demo's CA certificates (years away) get no warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::BIN;

#[test]
fn serve_warns_about_a_tls_certificate_expiring_within_30_days() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    drop(common::start_demo(&data));
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-days",
            "10",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-key")
        .arg(data.join("tls/server.key.pem"))
        .arg("-out")
        .arg(data.join("tls/server-chain.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The warnings come before the banner: once it is out, every warning has been written.
    let stdout = child.stdout.take().unwrap();
    let banner = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("Estuary EST server listening"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner, "the server started");
    let warnings: Vec<String> = rx.iter().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.contains("TLS server certificate CN=localhost expires on")
            && (w.contains("(in 9 days)") || w.contains("(in 10 days)")),
        "{w}"
    );
    assert!(!w.contains("CA "), "{w}");
}
