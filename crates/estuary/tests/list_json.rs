//! `--json` on the operator's lists (issue 11, CLI polish): `user list`, `kek list`,
//! `recipient list` and `cmc-secret list` print one JSON object per line, with ISO 8601 times,
//! and never a secret (`request list --json` is covered in curl_auth.rs, `token list --json` in
//! tokens, `cert list --json` in crl.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{BIN, sh};

fn run(data: &Path, args: &[&str], stdin: &str) -> String {
    let mut c = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn iso(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[test]
fn operator_lists_print_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let status = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    run(
        &data,
        &[
            "user",
            "add",
            "alice",
            "--password-file",
            "-",
            "--allow-name",
            "*.a.example",
        ],
        "alice-password-0123\n",
    );
    let users = json_lines(&run(&data, &["user", "list", "--json"], ""));
    let alice = users.iter().find(|u| u["name"] == "alice").unwrap();
    assert_eq!(alice["allowed_names"], serde_json::json!(["*.a.example"]));
    assert!(iso(&alice["created_at"]), "{alice}");
    assert!(
        !users
            .iter()
            .any(|u| u.to_string().contains("alice-password"))
    );

    let kek = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    std::fs::write(tmp.path().join("kek.hex"), kek).unwrap();
    let kek_file = tmp.path().join("kek.hex");
    run(
        &data,
        &[
            "kek",
            "add",
            "--user",
            "alice",
            "--id",
            "kek-1",
            "--key-file",
            kek_file.to_str().unwrap(),
        ],
        "",
    );
    let keks = json_lines(&run(&data, &["kek", "list", "--json"], ""));
    assert_eq!(keks.len(), 1);
    assert_eq!(keks[0]["owner"], "user:alice", "{}", keks[0]);
    assert_eq!(keks[0]["id"], "kek-1");
    assert!(iso(&keks[0]["registered_at"]));
    assert!(!keks[0].to_string().contains("00112233"), "never the key");

    // A recipient certificate with a SubjectKeyIdentifier and no KeyUsage.
    let (ok, out) = sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout r.key \
         -subj /CN=recipient.example -days 30 -out r.pem 2>&1",
        tmp.path(),
    );
    assert!(ok, "{out}");
    let r = tmp.path().join("r.pem");
    run(
        &data,
        &[
            "recipient",
            "add",
            "--user",
            "alice",
            "--cert",
            r.to_str().unwrap(),
        ],
        "",
    );
    let recips = json_lines(&run(&data, &["recipient", "list", "--json"], ""));
    assert_eq!(recips.len(), 1);
    assert_eq!(recips[0]["owner"], "user:alice");
    let (ok, ski) = sh(
        "openssl x509 -in r.pem -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :\\n' | tr A-F a-f",
        tmp.path(),
    );
    assert!(ok);
    assert_eq!(recips[0]["ski"], ski.trim(), "{}", recips[0]);

    run(
        &data,
        &[
            "cmc-secret",
            "add",
            "--ident",
            "dev-7",
            "--secret-file",
            "-",
            "--subject",
            "CN=dev7.example",
        ],
        "cmc-shared-secret-for-dev-7\n",
    );
    let secrets = json_lines(&run(&data, &["cmc-secret", "list", "--json"], ""));
    assert_eq!(secrets.len(), 1);
    let s = &secrets[0];
    assert_eq!(s["ident"], "dev-7");
    assert_eq!(s["label"], "", "any label");
    assert_eq!(s["subject"], "CN=dev7.example");
    assert!(iso(&s["created_at"]));
    assert!(
        !s.to_string().contains("cmc-shared-secret"),
        "never the secret"
    );
}
