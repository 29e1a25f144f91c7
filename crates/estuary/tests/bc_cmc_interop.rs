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

use std::io::Write;
use std::process::{Command, Stdio};

use common::{BIN, compile_bc, start_demo};

#[test]
fn bouncy_castle_cmc_client_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = compile_bc("CmcInterop", tmp.path());
    let data = tmp.path().join("data");
    let server = start_demo(&data);

    // The shared secret BC proves its identity with, provisioned by the operator.
    let secret = "bc-interop-shared-secret-42";
    let mut add = Command::new(BIN)
        .args(["cmc-secret", "add", "--data-dir"])
        .arg(&data)
        .args(["--ident", "bc-ident", "--secret-file", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());

    let root = data.join("ca/root.pem");
    let out = Command::new("java")
        .args(["-cp", &cp, "CmcInterop", &server.addr])
        .arg(&root)
        .args(["demo", &server.password, "bc-ident", secret])
        .output()
        .expect("java");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "Bouncy Castle CMC interop failed:\n{stdout}"
    );
    assert!(stdout.contains("ALL OK"), "{stdout}");

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
