//! Interop with an independent EST client: Bouncy Castle's `ESTService` (Debian's BC 1.72),
//! driving the real `estuary serve` on its demo setup over TLS on loopback. The Java program
//! is `interop/bc/EstInterop.java`; it asserts every step and exits non-zero on any failure:
//! /cacerts, /csrattrs, /simpleenroll with Basic and with Digest (EST-42), /simplereenroll
//! with the issued certificate as TLS client certificate, and /simpleenroll with tls-unique
//! PoP linking over BC's JSSE provider at TLS 1.2, where a corrupted binding must be refused
//! (EST-52, EST-54), and /serverkeygen (`simpleEnrollWithServersideCreation`), whose
//! multipart answer BC parses into a key that must match the certificate.
//!
//! Needs `javac` (default-jdk-headless) and libbcprov-java libbcpkix-java libbctls-java
//! libbcutil-java; `scripts/test.sh` installs them. Missing tools fail the test: no skipping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{BIN, compile_bc, start_demo};
#[test]
fn bouncy_castle_est_client_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = compile_bc("EstInterop", tmp.path());

    let data = tmp.path().join("data");
    let server = start_demo(&data);
    let root = data.join("ca/root.pem");
    let root = root.display().to_string();
    let stdout = common::run_bc(
        &cp,
        "EstInterop",
        &[&server.addr, &root, "demo", &server.password],
    );
    // The program's own summary, and the checks that matter by name.
    for must in [
        "ok: digest enroll: certificate carries the requested public key",
        "ok: a wrong Digest password gets 401",
        "ok: reenroll: a new serial number",
        "ok: pop enroll: certificate carries the requested public key",
        "ok: a corrupted tls-unique gets 400",
    ] {
        assert!(stdout.contains(must), "missing {must:?} in:\n{stdout}");
    }
    // The server recorded what BC enrolled (basic, digest, reenroll, pop).
    let list = Command::new(BIN)
        .args(["cert", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for cn in ["bc-basic.example", "bc-digest.example", "bc-pop.example"] {
        assert!(
            list.contains(&format!("CN={cn}")),
            "{cn} not recorded:\n{list}"
        );
    }
    assert!(!list.contains("bc-pop-bad.example"), "{list}");
}
