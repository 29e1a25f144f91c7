//! Interop for CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02) with an
//! independent implementation: Bouncy Castle 1.72's ASN.1, CMC, CMS and PKCS classes
//! (`interop/bc/CmcSkgInterop.java`) build ServerKeyGenRequests that the real `estuary serve
//! --demo` ("demo" label, `cmc_server_keygen` on) must answer over TLS, and open every key it
//! returns: ShroudWithPublicKey `certificate` (kari to an EC client certificate),
//! `certIdentifier` (ktri to the signing RSA certificate), `bareKey` (kari, rKeyId = the given
//! ski) and ShroudWithSharedSecret (pwri, in AuthenticatedData under another shared secret).
//! BC verifies the outer and inner SignedData to the root, and that the decrypted private key is
//! the key of the certificate signerIdentifier names (SKGD-18..SKGD-24). The errors are the
//! draft's (SKGD-25): archiveNotSupported, badSharedSecret, badCertificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{BIN, compile_bc, start_demo};

#[test]
fn bouncy_castle_cmc_server_keygen_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = compile_bc("CmcSkgInterop", tmp.path());
    let data = tmp.path().join("data");
    let server = start_demo(&data);

    // The secret BC authenticates with, the one its key is protected with (both linked to the
    // subject asked for, SKGD-15), and one of another subject (badSharedSecret).
    let (ident, ident_secret) = ("bc-skg-ident", "bc-skg-identification-secret-1");
    let (shroud, shroud_secret) = ("bc-skg-key", "bc-skg-protection-secret-2");
    let other = "bc-skg-other";
    common::add_cmc_secret_for(&data, ident, ident_secret, "CN=bc-skg-pwri.example");
    common::add_cmc_secret_for(&data, shroud, shroud_secret, "CN=bc-skg-pwri.example");
    common::add_cmc_secret_for(
        &data,
        other,
        "bc-skg-other-secret-3",
        "CN=someone-else.example",
    );

    let root = data.join("ca/root.pem").display().to_string();
    let stdout = common::run_bc(
        &cp,
        "CmcSkgInterop",
        &[
            &server.addr,
            &root,
            "demo",
            &server.password,
            ident,
            ident_secret,
            shroud,
            shroud_secret,
            other,
        ],
    );
    for case in [
        "enroll",
        "shroud-certificate",
        "shroud-cert-id",
        "shroud-bare-key",
        "shroud-shared-secret",
        "archive-key",
        "bad-shared-secret",
        "bad-cert-id",
    ] {
        assert!(
            stdout.contains(&format!("CASE {case} OK")),
            "case {case}:\n{stdout}"
        );
    }

    // Every certificate BC received with a generated key is recorded under the subject asked
    // for and the identity that authenticated the request: the signing certificate, or the
    // shared secret of the AuthenticatedData.
    let list = Command::new(BIN)
        .args(["cert", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_lowercase();
    let issued: Vec<Vec<&str>> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ISSUED "))
        .map(|l| l.splitn(3, ' ').collect())
        .collect();
    assert_eq!(
        issued.len(),
        4,
        "one generated key per successful case:\n{stdout}"
    );
    for fields in issued {
        let [case, serial, subject] = fields[..] else {
            panic!("ISSUED line: {fields:?}");
        };
        let row = list
            .lines()
            .find(|row| {
                row.split_whitespace()
                    .next()
                    .is_some_and(|s| s.trim_start_matches('0') == serial.trim_start_matches('0'))
            })
            .unwrap_or_else(|| panic!("{case}: serial {serial} not recorded:\n{list}"));
        assert!(
            row.contains(&subject.to_lowercase()),
            "{case}: {serial} is recorded for {subject}: {row}"
        );
        let requester = if case == "shroud-shared-secret" {
            "cmc-secret:bc-skg-ident"
        } else {
            "cert:"
        };
        assert!(
            row.contains(requester),
            "{case}: requester {requester}: {row}"
        );
    }
    for cn in [
        "bc-skg-ec.example",
        "bc-skg-rsa.example",
        "bc-skg-pwri.example",
    ] {
        assert!(
            list.contains(&format!("cn={cn}")),
            "{cn} not recorded:\n{list}"
        );
    }
    assert!(
        !list.contains("someone-else"),
        "nothing issued for the refused requests:\n{list}"
    );
}
