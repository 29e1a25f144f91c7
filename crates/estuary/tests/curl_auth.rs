//! HTTP authentication against the real `estuary serve` (demo setup), driven by curl and the
//! openssl CLI: the 401 challenges (EST-41), curl's own Digest implementation on the
//! Digest-only label (EST-42), users added with `estuary user add` on both Basic and Digest,
//! and the Digest secrets at rest: sealed, never in the clear, server secret file mode 0600.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{BIN, restart, sh, start_demo};

#[test]
fn curl_digest_basic_and_challenges_against_the_demo_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let pw = server.password.clone();
    let est = format!("https://{}/.well-known/est", server.addr);
    let root = data.join("ca/root.pem");
    let curl = format!("curl -sS --cacert {}", root.display());

    let (ok, out) = sh(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout d.key -subj /CN=curl-digest.example -outform DER 2>/dev/null | openssl base64 > d.b64",
        &work,
    );
    assert!(ok, "{out}");

    // EST-41: 401 challenges, Basic then Digest (SHA-256, MD5) on the default label;
    // Digest only on the `digest` label.
    let headers = |path: &str| {
        let (_, out) = sh(
            &format!(
                "{curl} -o /dev/null -D - -H 'Content-Type: application/pkcs10' --data-binary @d.b64 {est}/{path}"
            ),
            &work,
        );
        out.lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
            .collect::<Vec<_>>()
    };
    let ch = headers("simpleenroll");
    assert_eq!(ch.len(), 3, "{ch:?}");
    assert!(ch[0].starts_with("Basic realm=\"estuary\""), "{ch:?}");
    assert!(
        ch[1].starts_with("Digest realm=\"estuary\"") && ch[1].contains("algorithm=\"SHA-256\"")
    );
    assert!(ch[2].starts_with("Digest ") && ch[2].contains("algorithm=\"MD5\""));
    let ch = headers("digest/simpleenroll");
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert!(
        ch.iter()
            .all(|c| c.starts_with("Digest ") && c.contains("qop=\"auth\""))
    );

    // curl's own Digest client on the Digest-only label: the certificate verifies.
    let enroll = |user: &str, pass: &str, how: &str, path: &str, out: &str| {
        sh(
            &format!(
                "{curl} {how} -u '{user}:{pass}' -H 'Content-Type: application/pkcs10' --data-binary @d.b64 -o {out}.b64 -w '%{{http_code}}' {est}/{path}"
            ),
            &work,
        )
    };
    let (ok, code) = enroll("demo", &pw, "--digest", "digest/simpleenroll", "d1");
    assert!(ok && code.ends_with("200"), "{code}");
    let (ok, out) = sh(
        &format!(
            "openssl base64 -d -in d1.b64 | openssl pkcs7 -inform DER -print_certs -out d1.pem && {curl} {est}/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out chain.pem && openssl verify -CAfile {} -untrusted chain.pem d1.pem",
            root.display()
        ),
        &work,
    );
    assert!(ok && out.contains("d1.pem: OK"), "{out}");
    // A wrong password, and Basic on the Digest-only label, are refused.
    let (_, code) = enroll(
        "demo",
        "wrong-password",
        "--digest",
        "digest/simpleenroll",
        "x",
    );
    assert!(code.ends_with("401"), "{code}");
    let (_, code) = enroll("demo", &pw, "--basic", "digest/simpleenroll", "x");
    assert!(code.ends_with("401"), "{code}");

    // A user added with `estuary user add` works with both Digest and Basic.
    let mut add = Command::new(BIN)
        .args(["user", "add", "--data-dir"])
        .arg(&data)
        .args(["dave", "--password-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"dave-password-7\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let (ok, code) = enroll(
        "dave",
        "dave-password-7",
        "--digest",
        "digest/simpleenroll",
        "d2",
    );
    assert!(ok && code.ends_with("200"), "digest: {code}");
    let (ok, code) = enroll("dave", "dave-password-7", "--basic", "simpleenroll", "d3");
    assert!(ok && code.ends_with("200"), "basic: {code}");
    // --anyauth lets curl pick from the challenges (it takes Digest).
    let (ok, code) = enroll("dave", "dave-password-7", "--anyauth", "simpleenroll", "d4");
    assert!(ok && code.ends_with("200"), "anyauth: {code}");

    // A one-time enrollment token from the CLI: works once with curl, then never again.
    let out = Command::new(BIN)
        .args(["token", "create", "--data-dir"])
        .arg(&data)
        .args([
            "--label",
            "",
            "--subject",
            "CN=curl-digest.example",
            "--expires",
            "1h",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (t["id"].as_str().unwrap(), t["secret"].as_str().unwrap());
    assert!(id.starts_with("tok_") && secret.len() >= 32, "{t}");
    let (ok, code) = enroll(id, secret, "--basic", "simpleenroll", "t1");
    assert!(ok && code.ends_with("200"), "token: {code}");
    let (_, code) = enroll(id, secret, "--basic", "simpleenroll", "t2");
    assert!(code.ends_with("401"), "token reused: {code}");
    let (_, code) = enroll(id, secret, "--basic", "digest/simpleenroll", "t3");
    assert!(code.ends_with("401"), "{code}");

    // `token list` shows its state; an operator revokes an unused token, which then fails.
    let token_cli = |args: &[&str]| {
        Command::new(BIN)
            .arg("token")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap()
    };
    let out = token_cli(&["create", "--label", "", "--json"]);
    let t2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id2, secret2) = (t2["id"].as_str().unwrap(), t2["secret"].as_str().unwrap());
    let states = || -> Vec<(String, String)> {
        let out = token_cli(&["list", "--json"]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v.get("secret").is_none() && !l.contains(secret2), "{l}");
                (
                    v["id"].as_str().unwrap().to_owned(),
                    v["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let listed = states();
    assert!(
        listed.contains(&(id.to_owned(), "used".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(id2.to_owned(), "unused".into())),
        "{listed:?}"
    );
    let out = token_cli(&["revoke", id2]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, code) = enroll(id2, secret2, "--basic", "simpleenroll", "t4");
    assert!(code.ends_with("401"), "revoked token: {code}");
    assert!(states().contains(&(id2.to_owned(), "revoked".into())));
    let out = token_cli(&["revoke", id2]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already revoked"));
    let out = token_cli(&["revoke", "tok_nonexistent"]);
    assert!(!out.status.success());

    // Manual approval on the demo's `manual` label: 202 + Retry-After, the operator approves
    // with the CLI, the same request (new CSR bytes, same key and subject) gets the certificate;
    // a rejected one gets 403.
    let held = |name: &str| {
        sh(
            &format!(
                "openssl req -new -key {name}.key -subj /CN={name}.example -addext subjectAltName=DNS:{name}.example -outform DER | openssl base64 > {name}.b64 && {curl} -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @{name}.b64 -D {name}.h -o {name}.out -w '%{{http_code}}' {est}/manual/simpleenroll"
            ),
            &work,
        )
    };
    for name in ["m1", "m2"] {
        let (ok, out) = sh(
            &format!(
                "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}.key"
            ),
            &work,
        );
        assert!(ok, "{out}");
        let (ok, code) = held(name);
        assert!(ok && code.ends_with("202"), "{name}: {code}");
        let h = std::fs::read_to_string(work.join(format!("{name}.h")))
            .unwrap()
            .to_lowercase();
        assert!(h.contains("retry-after: 5"), "{h}");
    }
    let request = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("request")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, list) = request(&["list"]);
    assert!(ok, "{list}");
    let id_of = |cn: &str| {
        list.lines()
            .find(|l| l.ends_with(&format!("CN={cn}")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{cn} not listed:\n{list}"))
            .to_string()
    };
    let (m1, m2) = (id_of("m1.example"), id_of("m2.example"));
    // The same as JSON lines (issue 11: --json on every list).
    let (ok, jl) = request(&["list", "--json"]);
    assert!(ok, "{jl}");
    let rows: Vec<serde_json::Value> = jl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = rows.iter().find(|r| r["id"] == m1.as_str()).unwrap();
    assert_eq!(row["status"], "pending");
    assert_eq!(row["label"], "manual");
    assert_eq!(row["subject"], "CN=m1.example");
    assert_eq!(row["requester"], "user:demo");
    // What the operator sees before deciding: the whole request, and its PEM for openssl.
    let (ok, shown) = request(&["show", &m1]);
    assert!(ok, "{shown}");
    for want in [
        "status:     pending",
        "label:      manual",
        "requester:  user:demo",
        "subject:    CN=m1.example",
        "SAN:        dns:m1.example",
        "key:        EC prime256v1",
        "extension:  id-ce-subjectAltName",
        "-----BEGIN CERTIFICATE REQUEST-----",
    ] {
        assert!(shown.contains(want), "{want:?} missing:\n{shown}");
    }
    let pem = &shown[shown.find("-----BEGIN").unwrap()..];
    std::fs::write(work.join("m1.held.pem"), pem).unwrap();
    let (ok, out) = sh("openssl req -in m1.held.pem -noout -verify -subject", &work);
    assert!(ok && out.contains("m1.example"), "{out}");
    let (ok, shown) = request(&["show", &m1, "--json"]);
    assert!(ok, "{shown}");
    let v: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(v["san"], serde_json::json!(["dns:m1.example"]));
    assert_eq!(
        (v["status"].as_str(), v["form"].as_str()),
        (Some("pending"), Some("PKCS#10"))
    );
    let (ok, _) = request(&["show", "nonexistent"]);
    assert!(!ok);
    let (ok, out) = request(&["approve", &m1]);
    assert!(ok, "{out}");
    let (ok, out) = request(&["reject", &m2]);
    assert!(ok, "{out}");
    let (ok, out) = request(&["approve", &m2]);
    assert!(!ok && out.contains("not pending"), "{out}");
    let (ok, code) = held("m1");
    assert!(ok && code.ends_with("200"), "approved: {code}");
    let (ok, out) = sh(
        &format!(
            "openssl base64 -d -in m1.out | openssl pkcs7 -inform DER -print_certs -out m1.pem && openssl verify -CAfile {} -untrusted chain.pem m1.pem",
            root.display()
        ),
        &work,
    );
    assert!(ok && out.contains("m1.pem: OK"), "{out}");
    let (_, code) = held("m2");
    assert!(code.ends_with("403"), "rejected: {code}");

    // At rest: the server secret (the key passphrase) is private, and the database holds neither the password nor
    // any HA1 in the clear.
    let secret = data.join("secrets/key-passphrase");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "server secret mode {mode:o}");
    let ha1_md5 = hex::encode(
        openssl::hash::hash(
            openssl::hash::MessageDigest::md5(),
            b"dave:estuary:dave-password-7",
        )
        .unwrap(),
    );
    let ha1_sha256 = hex::encode(openssl::sha::sha256(b"dave:estuary:dave-password-7"));
    drop(server);
    let mut db = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("estuary.db")
        {
            db.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(!db.is_empty());
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"dave"), "the user is in the database file");
    for secret in [
        b"dave-password-7".as_slice(),
        ha1_md5.as_bytes(),
        ha1_sha256.as_bytes(),
    ] {
        assert!(
            !contains(secret),
            "{} in the clear",
            String::from_utf8_lossy(secret)
        );
    }
}

/// SEC-3 with curl: after `auth_failure_limit` wrong passwords the user and the address get
/// 429 with Retry-After, even with the right password.
#[test]
fn curl_gets_429_after_repeated_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let pw = start_demo(&data).password.clone();
    // Lower the limit in the demo's configuration, then restart.
    let cfg_path = data.join("estuary.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("auth_failure_limit = 10"), "{cfg}");
    std::fs::write(
        &cfg_path,
        cfg.replace("auth_failure_limit = 10", "auth_failure_limit = 3"),
    )
    .unwrap();
    let server = restart(&data, &pw);
    let est = format!("https://{}/.well-known/est", server.addr);
    let root = data.join("ca/root.pem");
    let (ok, out) = sh(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout g.key -subj /CN=g.example -outform DER 2>/dev/null | openssl base64 > g.b64",
        &work,
    );
    assert!(ok, "{out}");
    let attempt = |pass: &str| {
        sh(
            &format!(
                "curl -sS --cacert {} -u 'demo:{pass}' -H 'Content-Type: application/pkcs10' --data-binary @g.b64 -D h.txt -o /dev/null -w '%{{http_code}}' {est}/simpleenroll; echo; cat h.txt",
                root.display()
            ),
            &work,
        )
        .1
    };
    for i in 0..3 {
        let out = attempt("wrong-password");
        assert!(out.starts_with("401"), "attempt {i}: {out}");
    }
    let out = attempt(&pw);
    assert!(out.starts_with("429"), "{out}");
    assert!(out.to_lowercase().contains("retry-after: "), "{out}");
}
