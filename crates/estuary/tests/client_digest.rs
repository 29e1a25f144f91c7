//! `estuary client --http-auth digest` against `estuary serve --demo`: enrollment over HTTP
//! Digest (RFC 7616) on the demo's Digest-only `digest` label and on the label-less path (which
//! offers Basic too); `--http-auth basic` cannot get in where only Digest is offered; the
//! issued certificates verify with `openssl verify` and match their keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check_cert, client, start_demo};

#[test]
fn cli_enrolls_over_http_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    std::fs::write(work.join("pw.txt"), format!("{}\n", server.password)).unwrap();
    let enroll = |label: Option<&str>, mode: &str, name: &str| {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let subject = format!("CN={name}.example");
        let mut args: Vec<&str> = Vec::new();
        if let Some(l) = label {
            args.extend(["--label", l]);
        }
        args.extend([
            "--user",
            "demo",
            "--password-file",
            "pw.txt",
            "--http-auth",
            mode,
            "enroll",
            "--subject",
            &subject,
            "--out-key",
            &key,
            "--out-cert",
            &cert,
        ]);
        let out = client(&url, &root, &work, &args);
        (out, key, cert)
    };
    for (label, mode, name) in [
        (Some("digest"), "digest", "d1"),
        (Some("digest"), "auto", "d2"),
        (None, "digest", "d3"),
    ] {
        let ((ok, out), key, cert) = enroll(label, mode, name);
        assert!(ok, "{label:?} {mode}: {out}");
        check_cert(&work, &data, &cert, &key);
    }
    let ((ok, out), _, cert) = enroll(Some("digest"), "basic", "b1");
    assert!(!ok && out.contains("401"), "{out}");
    assert!(!work.join(cert).exists());
    drop(server);
}
