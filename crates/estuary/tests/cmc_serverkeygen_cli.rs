//! `estuary client fullcmc serverkeygen` against the real `estuary serve --demo`, whose "demo"
//! label turns CMC server-side key generation on (draft-turner-cmc-serverkeygeneration-02):
//! a bare key (kari), the signing certificate (ktri, certIdentifier) and a shared secret
//! (pwri, authenticated by another secret in AuthenticatedData). Each written key must be the
//! key of the written certificate and the certificate must verify with `openssl verify`; the
//! saved response is checked by `openssl cms -verify`. A label without the extension refuses
//! the control (CMC-9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check_cert, client, sh, start_demo};

#[test]
fn fullcmc_serverkeygen_every_shroud_against_estuary_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    std::fs::write(work.join("pw.txt"), format!("{}\n", server.password)).unwrap();

    // A certificate to sign with: RSA, so that it can also protect a key by key transport.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--user",
            "demo",
            "--password-file",
            "pw.txt",
            "fullcmc",
            "enroll",
            "--key-type",
            "rsa3072",
            "--subject",
            "CN=skg-cli.example",
            "--san",
            "dns:skg-cli.example",
            "--out-key",
            "signer.key",
            "--out-cert",
            "signer.pem",
        ],
    );
    assert!(ok, "{out}");
    let demo = |args: &[&str]| {
        let mut all = vec![
            "--label",
            "demo",
            "--cert",
            "signer.pem",
            "--key",
            "signer.key",
        ];
        all.extend(["fullcmc", "serverkeygen"]);
        all.extend(args);
        client(&url, &root, &work, &all)
    };

    // bareKey (default): a fresh P-256 key in memory; kari; a P-256 key generated.
    let (ok, out) = demo(&[
        "--save-response",
        "bare.resp.der",
        "--out-key",
        "bare.key",
        "--out-cert",
        "bare.pem",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("decrypted and verified"), "{out}");
    check_cert(&work, &data, "bare.pem", "bare.key");
    let (ok, out) = sh(
        "openssl pkey -in bare.key -noout -text | grep -q 'NIST CURVE: P-256' && \
         openssl x509 -in bare.pem -noout -subject -nameopt RFC2253",
        &work,
    );
    assert!(ok && out.contains("CN=skg-cli.example"), "{out}");
    // The response verifies with OpenSSL against the root alone (the chain rides along).
    let (ok, out) = sh(
        &format!(
            "openssl cms -verify -inform DER -in bare.resp.der -CAfile {} -binary -purpose any -out /dev/null",
            root.display()
        ),
        &work,
    );
    assert!(ok && out.contains("Verification successful"), "{out}");

    // certificate by certIdentifier (the signing RSA-3072 certificate): ktri; RSA-2048 key.
    let (ok, out) = demo(&[
        "--shroud",
        "certificate",
        "--key-type",
        "rsa2048",
        "--out-key",
        "ktri.key",
        "--out-cert",
        "ktri.pem",
    ]);
    assert!(ok, "{out}");
    check_cert(&work, &data, "ktri.pem", "ktri.key");
    let (ok, out) = sh("openssl pkey -in ktri.key -noout -text | head -1", &work);
    assert!(ok && out.contains("2048 bit"), "{out}");

    // Shared secrets: authenticated by one (AuthenticatedData), protected by another (pwri).
    common::add_cmc_secret_for(
        &data,
        "skg-dev",
        "skg-identification-secret-01\n",
        "CN=pwri-cli.example",
    );
    common::add_cmc_secret_for(
        &data,
        "skg-key",
        "skg-protection-secret-02\n",
        "CN=pwri-cli.example",
    );
    std::fs::write(work.join("ident.txt"), "skg-identification-secret-01\n").unwrap();
    std::fs::write(work.join("keysecret.txt"), "skg-protection-secret-02\n").unwrap();
    // Authenticated by skg-dev, the key protected by skg-key, whose secret the client reads
    // from `key_secret_file`; the outputs are `<out>.key` and `<out>.pem`.
    let pwri = |key_secret_file: &str, out: &str| {
        let (key, cert) = (format!("{out}.key"), format!("{out}.pem"));
        client(
            &url,
            &root,
            &work,
            &[
                "--label",
                "demo",
                "fullcmc",
                "serverkeygen",
                "--subject",
                "CN=pwri-cli.example",
                "--ident",
                "skg-dev",
                "--secret-file",
                "ident.txt",
                "--shroud",
                "shared-secret",
                "--shroud-secret-name",
                "skg-key",
                "--shroud-secret-file",
                key_secret_file,
                "--out-key",
                &key,
                "--out-cert",
                &cert,
            ],
        )
    };
    let (ok, out) = pwri("keysecret.txt", "pwri");
    assert!(ok, "{out}");
    check_cert(&work, &data, "pwri.pem", "pwri.key");

    // The wrong protection secret: the CA protects the key with its own copy, so the client
    // cannot open it and writes nothing.
    std::fs::write(work.join("wrongsecret.txt"), "not-the-protection-secret\n").unwrap();
    let (ok, out) = pwri("wrongsecret.txt", "nope");
    assert!(!ok, "{out}");
    assert!(!work.join("nope.key").exists() && !work.join("nope.pem").exists());

    // The label-less path does not act on the control: refused, CMC-9.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "signer.pem",
            "--key",
            "signer.key",
            "fullcmc",
            "serverkeygen",
            "--out-key",
            "x.key",
            "--out-cert",
            "x.pem",
        ],
    );
    assert!(!ok && out.contains("CMC-9"), "{out}");
    drop(server);
}
