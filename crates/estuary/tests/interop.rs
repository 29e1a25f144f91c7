//! Interop: the real `estuary` binary on its demo setup, driven by curl and the openssl CLI
//! (independent clients and decoders), including a restart that must keep every certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BIN, restart, sh, start_demo};

fn run(cmd: &mut Command) -> (bool, Vec<u8>, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn serials_listed(dir: &Path) -> String {
    let (ok, out, err) = run(Command::new(BIN)
        .args(["cert", "list", "--limit", "1000", "--data-dir"])
        .arg(dir));
    assert!(ok, "{err}");
    String::from_utf8(out).unwrap()
}

#[test]
fn curl_and_openssl_against_the_demo_server_and_restart_keeps_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work: PathBuf = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let pw = server.password.clone();
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    let est = format!("{url}/.well-known/est");
    let curl = format!("curl -sS --fail-with-body --cacert {}", root.display());

    // /cacerts via curl, decoded by openssl pkcs7: issuing CA + root.
    let (ok, out) = sh(
        &format!(
            "{curl} {est}/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out chain.pem && grep -c 'BEGIN CERTIFICATE' chain.pem"
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "2", "{out}");

    // Enroll with an openssl-made CSR (EC and RSA with a SAN), verify with openssl verify.
    let mut issued = Vec::new();
    for (name, newkey) in [
        ("ec1", "ec -pkeyopt ec_paramgen_curve:P-256"),
        ("rsa1", "rsa:2048"),
    ] {
        let script = format!(
            "set -e
            openssl req -new -newkey {newkey} -nodes -keyout {name}.key -subj /CN={name}.example -addext subjectAltName=DNS:{name}.example -outform DER -out {name}.csr 2>/dev/null
            openssl base64 -in {name}.csr -out {name}.b64
            {curl} -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @{name}.b64 {est}/simpleenroll -o {name}.p7.b64
            openssl base64 -d -in {name}.p7.b64 | openssl pkcs7 -inform DER -print_certs -out {name}.pem
            openssl verify -CAfile {root} -untrusted chain.pem {name}.pem
            openssl x509 -in {name}.pem -noout -serial -ext subjectAltName
            openssl x509 -in {name}.pem -noout -pubkey > {name}.pub1; openssl pkey -in {name}.key -pubout > {name}.pub2; cmp {name}.pub1 {name}.pub2",
            root = root.display()
        );
        let (ok, out) = sh(&script, &work);
        assert!(ok, "{name}: {out}");
        assert!(out.contains(&format!("{name}.pem: OK")), "{out}");
        assert!(out.contains(&format!("DNS:{name}.example")), "{out}");
        let serial = out
            .lines()
            .find_map(|l| l.strip_prefix("serial="))
            .unwrap()
            .to_lowercase();
        issued.push(serial);
    }

    // Re-enroll with the issued certificate as TLS client certificate (rekey), via curl.
    let (ok, out) = sh(&format!(
        "set -e
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec1-new.key -subj /CN=ec1.example -addext subjectAltName=DNS:ec1.example -outform DER -out ec1-new.csr 2>/dev/null
        openssl base64 -in ec1-new.csr -out ec1-new.b64
        {curl} --cert ec1.pem --key ec1.key -H 'Content-Type: application/pkcs10' --data-binary @ec1-new.b64 {est}/simplereenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out ec1-new.pem
        openssl verify -CAfile {root} -untrusted chain.pem ec1-new.pem
        openssl x509 -in ec1-new.pem -noout -serial",
        root = root.display()
    ), &work);
    assert!(ok, "{out}");
    issued.push(
        out.lines()
            .find_map(|l| l.strip_prefix("serial="))
            .unwrap()
            .to_lowercase(),
    );

    // Errors come back as text/plain with a status: 401 (with challenge), 415, 404, 405.
    let (_, out) = sh(
        &format!(
            "curl -s -o /dev/null -D - --cacert {} -u demo:wrong -H 'Content-Type: application/pkcs10' --data-binary @ec1.b64 {est}/simpleenroll",
            root.display()
        ),
        &work,
    );
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    assert!(
        out.to_lowercase().contains("www-authenticate: basic"),
        "{out}"
    );
    for (args, code) in [
        (
            format!(
                "-u 'demo:{pw}' -H 'Content-Type: text/plain' --data-binary @ec1.b64 {est}/simpleenroll"
            ),
            "415",
        ),
        (format!("{est}/nolabel/cacerts"), "404"),
        (format!("-X POST {est}/cacerts"), "405"),
    ] {
        let (_, out) = sh(
            &format!(
                "curl -s -o body.txt -w '%{{http_code}} %{{content_type}}' --cacert {} {args}",
                root.display()
            ),
            &work,
        );
        assert!(
            out.starts_with(code) && out.contains("text/plain"),
            "{args}: {out}"
        );
    }

    // The devices label: its own CA, /csrattrs decodable by openssl asn1parse.
    let (ok, out) = sh(
        &format!(
            "{curl} {est}/devices/csrattrs | openssl base64 -d | openssl asn1parse -inform DER"
        ),
        &work,
    );
    assert!(
        ok && out.contains("secp256r1") || out.contains("prime256v1"),
        "{out}"
    );

    // CLI administration.
    let (ok, out, err) = run(Command::new(BIN)
        .args(["ca", "cert", "--data-dir"])
        .arg(&data));
    assert!(ok, "{err}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        std::fs::read_to_string(&root).unwrap()
    );
    let mut add = Command::new(BIN)
        .args(["user", "add", "--data-dir"])
        .arg(&data)
        .args([
            "carol",
            "--password-file",
            "-",
            "--allow-name",
            "*.carol.example",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"carol-password\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let (ok, out, _) = run(Command::new(BIN)
        .args(["user", "list", "--data-dir"])
        .arg(&data));
    assert!(ok);
    let users = String::from_utf8(out).unwrap();
    assert!(
        users.contains("carol") && users.contains("*.carol.example") && !users.contains("argon2"),
        "{users}"
    );
    // The new user works at once, within its name policy.
    let (ok, out) = sh(
        &format!(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout c.key -subj /CN=x.carol.example -outform DER 2>/dev/null | openssl base64 > c.b64 && {curl} -u carol:carol-password -H 'Content-Type: application/pkcs10' --data-binary @c.b64 {est}/simpleenroll -o /dev/null -w '%{{http_code}}'"
        ),
        &work,
    );
    assert!(ok && out.ends_with("200"), "{out}");

    // The estuary client CLI: bootstrap with a pinned fingerprint, enroll with Basic, re-enroll
    // with the new certificate, csrattrs.
    let fp = {
        let x = openssl::x509::X509::from_pem(&std::fs::read(&root).unwrap()).unwrap();
        x.digest(openssl::hash::MessageDigest::sha256())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let client = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("client")
            .arg("--url")
            .arg(&url)
            .args(args)
            .current_dir(&work);
        c
    };
    let (ok, out, err) = run(&mut client(&[
        "--bootstrap",
        "--expect-fingerprint",
        &fp,
        "cacerts",
        "--out",
        "boot.pem",
    ]));
    assert!(ok, "{err}");
    let _ = out;
    assert_eq!(
        std::fs::read_to_string(work.join("boot.pem"))
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let (ok, _, err) = run(&mut client(&[
        "--bootstrap",
        "--expect-fingerprint",
        "00:11",
        "cacerts",
    ]));
    assert!(!ok && err.contains("NOT trusted"), "{err}");
    std::fs::write(work.join("pw.txt"), format!("{pw}\n")).unwrap();
    let ta = root.to_str().unwrap();
    let (ok, _, err) = run(&mut client(&[
        "--trust-anchor",
        ta,
        "--user",
        "demo",
        "--password-file",
        "pw.txt",
        "enroll",
        "--key-type",
        "p384",
        "--subject",
        "CN=cli.example",
        "--san",
        "dns:cli.example",
        "--out-key",
        "cli.key",
        "--out-cert",
        "cli.pem",
    ]));
    assert!(ok, "{err}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(work.join("cli.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (ok, out) = sh(
        &format!(
            "openssl verify -CAfile {ta} -untrusted chain.pem cli.pem && openssl x509 -in cli.pem -noout -pubkey | cmp - <(openssl pkey -in cli.key -pubout)"
        ),
        &work,
    );
    assert!(ok, "{out}");
    let (ok, _, err) = run(&mut client(&[
        "--trust-anchor",
        ta,
        "--cert",
        "cli.pem",
        "--key",
        "cli.key",
        "reenroll",
        "--out-key",
        "cli2.key",
        "--out-cert",
        "cli2.pem",
    ]));
    assert!(ok, "{err}");
    let (ok, out) = sh(
        &format!(
            "openssl verify -CAfile {ta} -untrusted chain.pem cli2.pem && openssl x509 -in cli2.pem -noout -subject -serial && openssl x509 -in cli2.pem -noout -pubkey | cmp - <(openssl pkey -in cli2.key -pubout)"
        ),
        &work,
    );
    assert!(ok && out.contains("cli.example"), "{out}");
    issued.push(
        out.lines()
            .find_map(|l| l.strip_prefix("serial="))
            .unwrap()
            .to_lowercase(),
    );
    let (ok, out, err) = run(&mut client(&[
        "--trust-anchor",
        ta,
        "--label",
        "devices",
        "csrattrs",
    ]));
    assert!(ok, "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("macAddress"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let (ok, _, err) = run(&mut client(&[
        "--trust-anchor",
        ta,
        "--user",
        "demo",
        "--password-file",
        "pw.txt",
        "--label",
        "devices",
        "enroll",
        "--key-type",
        "rsa2048",
        "--subject",
        "CN=rsa-dev",
        "--out-key",
        "r.key",
        "--out-cert",
        "r.pem",
    ]));
    assert!(!ok && err.contains("RSA"), "devices refuses RSA: {err}");

    // Restart: every issued certificate is still listed, and the server serves again.
    drop(server);
    let listed_before = serials_listed(&data);
    let server = restart(&data, &pw);
    let listed = serials_listed(&data);
    assert_eq!(listed, listed_before);
    for s in &issued {
        assert!(
            listed.contains(s.trim_start_matches('0')),
            "serial {s} listed after restart:\n{listed}"
        );
    }
    let (ok, out, err) = run(Command::new(BIN)
        .args(["cert", "show", "--data-dir"])
        .arg(&data)
        .arg(&issued[0]));
    assert!(ok, "{err}");
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let curl2 = format!(
        "curl -sS --fail-with-body --cacert {} https://{}/.well-known/est/cacerts -o /dev/null -w '%{{http_code}}'",
        root.display(),
        server.addr
    );
    let (ok, out) = sh(&curl2, &work);
    assert!(ok && out == "200", "{out}");
}

#[test]
fn init_creates_a_production_shaped_data_dir_without_users() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("prod");
    let (ok, out, err) = run(Command::new(BIN)
        .args([
            "init",
            "--org",
            "Acme",
            "--hostname",
            "est.acme.example",
            "--data-dir",
        ])
        .arg(&d));
    assert!(ok, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("SHA-256 fingerprint"));
    let cfg = std::fs::read_to_string(d.join("estuary.toml")).unwrap();
    assert!(!cfg.contains("DEMO") && cfg.contains("[[label]]"), "{cfg}");
    let (ok, out, _) = run(Command::new(BIN)
        .args(["user", "list", "--data-dir"])
        .arg(&d));
    assert!(
        ok && out.is_empty(),
        "no users in a production-shaped setup"
    );
    let (ok, out) = sh(
        &format!(
            "openssl x509 -in {0}/tls/server-chain.pem -noout -ext subjectAltName -subject && openssl x509 -in {0}/ca/root.pem -noout -subject",
            d.display()
        ),
        tmp.path(),
    );
    assert!(
        ok && out.contains("DNS:est.acme.example")
            && out.contains("O = Acme")
            && !out.contains("DEMO"),
        "{out}"
    );
    // Key files are encrypted at rest and private.
    let key = std::fs::read_to_string(d.join("keys/root.key.pem")).unwrap();
    assert!(key.contains("BEGIN ENCRYPTED PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.join("keys/root.key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // A second init refuses to overwrite.
    let (ok, _, err) = run(Command::new(BIN).args(["init", "--data-dir"]).arg(&d));
    assert!(!ok && err.contains("already exists"), "{err}");
}

/// /serverkeygen on the demo label: curl + openssl for the plain PKCS#8 form, then the admin
/// commands that register client keys and `estuary client serverkeygen` for every encrypted
/// form (its output keys and certificates checked by the openssl CLI).
#[test]
fn serverkeygen_with_curl_openssl_and_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work: PathBuf = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let pw = server.password.clone();
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    let issuing = data.join("ca/default-issuing.pem");
    let est = format!("{url}/.well-known/est/demo");
    let curl = format!("curl -sS --fail-with-body --cacert {}", root.display());

    // Plain: the CSR's RSA-3072 key is only the hint (SKG-8); a new key comes back as PKCS#8.
    let (ok, out) = sh(
        &format!(
            "set -e
            openssl req -new -newkey rsa:3072 -nodes -keyout hint.key -subj /CN=skg.example -outform DER -out skg.csr 2>/dev/null
            openssl base64 -in skg.csr -out skg.b64
            {curl} -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @skg.b64 -D skg.headers -o skg.body {est}/serverkeygen
            grep -i '^content-type: multipart/mixed' skg.headers"
        ),
        &work,
    );
    assert!(ok, "{out}");
    let ct = std::fs::read_to_string(work.join("skg.headers")).unwrap();
    let ct = ct
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v)
        })
        .unwrap()
        .trim()
        .to_string();
    let mt = est_proto::MediaType::parse(&ct).unwrap();
    let body = std::fs::read(work.join("skg.body")).unwrap();
    let parts = est_proto::multipart::parse(&body, mt.param("boundary").unwrap()).unwrap();
    let key = est_proto::multipart::find_part(&parts, "application/pkcs8", None).unwrap();
    let cert =
        est_proto::multipart::find_part(&parts, "application/pkcs7-mime", Some("certs-only"))
            .unwrap();
    std::fs::write(work.join("key.b64"), &key.body).unwrap();
    std::fs::write(work.join("cert.b64"), &cert.body).unwrap();
    let (ok, out) = sh(
        &format!(
            "set -e
            openssl base64 -d -in key.b64 -out key.der
            openssl pkey -inform DER -in key.der -noout -check
            openssl pkey -inform DER -in key.der -noout -text | grep -q 'Private-Key: (3072 bit'
            openssl base64 -d -in cert.b64 | openssl pkcs7 -inform DER -print_certs -out skg.pem
            openssl verify -CAfile {root} -untrusted {issuing} skg.pem
            test \"$(openssl pkey -inform DER -in key.der -pubout)\" = \"$(openssl x509 -in skg.pem -noout -pubkey)\"
            test \"$(openssl pkey -in hint.key -pubout)\" != \"$(openssl x509 -in skg.pem -noout -pubkey)\"",
            root = root.display(),
            issuing = issuing.display()
        ),
        &work,
    );
    assert!(ok, "{out}");

    // Encrypted: register a KEK and a recipient certificate for the demo user, then let the
    // client ask, decrypt and verify.
    std::fs::write(work.join("pw.txt"), format!("{pw}\n")).unwrap();
    std::fs::write(work.join("kek.hex"), "000102030405060708090a0b0c0d0e0f\n").unwrap();
    let admin = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args).arg("--data-dir").arg(&data).current_dir(&work);
        run(&mut c)
    };
    let (ok, out, err) = admin(&[
        "kek",
        "add",
        "--user",
        "demo",
        "--id",
        "dev-kek",
        "--key-file",
        "kek.hex",
    ]);
    assert!(ok, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("128-bit"));
    let (ok, out) = sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rcpt.key -subj /CN=rcpt -days 30 -addext keyUsage=critical,keyAgreement -out rcpt.pem 2>&1",
        &work,
    );
    assert!(ok, "{out}");
    let (ok, out, err) = admin(&["recipient", "add", "--user", "demo", "--cert", "rcpt.pem"]);
    assert!(ok, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("SKI"));
    let (ok, out, _) = admin(&["kek", "list"]);
    assert!(ok);
    let listed = String::from_utf8_lossy(&out).to_string();
    assert!(
        listed.contains("user:demo") && listed.contains("dev-kek"),
        "{listed}"
    );
    assert!(
        !listed.contains("0001020304"),
        "key values are never listed"
    );
    // Sealed at rest: the key bytes are nowhere in the database file.
    let db = std::fs::read(data.join("estuary.db")).unwrap_or_default();
    let kek_bytes: Vec<u8> = (0u8..16).collect();
    assert!(!db.windows(16).any(|w| w == kek_bytes.as_slice()));

    let client = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["client", "--url", &url, "--label", "demo", "--trust-anchor"])
            .arg(&root)
            .args([
                "--user",
                "demo",
                "--password-file",
                "pw.txt",
                "serverkeygen",
            ])
            .args(extra)
            .current_dir(&work);
        run(&mut c)
    };
    for (name, extra) in [
        (
            "kek",
            vec![
                "--kek-id",
                "dev-kek",
                "--kek-file",
                "kek.hex",
                "--key-type",
                "p384",
            ],
        ),
        (
            "rcpt",
            vec![
                "--recipient-cert",
                "rcpt.pem",
                "--recipient-key",
                "rcpt.key",
                "--key-type",
                "rsa2048",
            ],
        ),
        ("tls", vec!["--key-type", "ed25519"]),
    ] {
        let kf = format!("{name}-out.key");
        let cf = format!("{name}-out.pem");
        let mut args = extra.clone();
        args.extend([
            "--subject",
            "CN=cli-skg.example",
            "--out-key",
            &kf,
            "--out-cert",
            &cf,
        ]);
        let (ok, _, err) = client(&args);
        assert!(ok, "{name}: {err}");
        assert_eq!(
            err.contains("encrypted and CA-signed, verified"),
            name != "tls",
            "{name}: {err}"
        );
        let (ok, out) = sh(
            &format!(
                "set -e
                test \"$(stat -c %a {kf})\" = 600
                openssl verify -CAfile {root} -untrusted {issuing} {cf}
                test \"$(openssl pkey -in {kf} -pubout)\" = \"$(openssl x509 -in {cf} -noout -pubkey)\"",
                root = root.display(),
                issuing = issuing.display()
            ),
            &work,
        );
        assert!(ok, "{name}: {out}");
    }
    // A wrong KEK value under the right id: the client cannot decrypt and says so.
    std::fs::write(work.join("bad.hex"), "ff0102030405060708090a0b0c0d0e0f\n").unwrap();
    let (ok, _, err) = client(&[
        "--kek-id",
        "dev-kek",
        "--kek-file",
        "bad.hex",
        "--subject",
        "CN=x",
        "--out-key",
        "x.key",
        "--out-cert",
        "x.pem",
    ]);
    assert!(!ok && err.contains("decrypt"), "{err}");
    drop(server);
}
