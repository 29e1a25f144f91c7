//! The audit trail end to end on the real binary (issue 11, item 4): enroll with curl +
//! openssl against `estuary serve --demo`, have a request held and approved, be refused,
//! revoke and add a user with the CLI; then `estuary audit verify` passes and prints the head,
//! `audit export` is JSON lines with every field, and tampering with the SQLite file by hand
//! (`sqlite3`: an edited row, a removed row, the newest row removed) makes `audit verify` fail
//! naming the record. The recipe in docs/operations.md ("Audit trail").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{estuary, sh, start_demo};

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn sqlite(db: &Path, sql: &str) {
    let (ok, out) = sh(
        &format!("sqlite3 {} \"{sql}\"", db.display()),
        Path::new("."),
    );
    assert!(ok, "sqlite3 {sql}: {out}");
}

#[test]
fn audit_trail_records_verifies_exports_and_detects_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work: PathBuf = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let pw = server.password.clone();
    let est = format!("https://{}/.well-known/est", server.addr);
    let root = data.join("ca/root.pem");
    let curl = format!(
        "curl -sS --cacert {} -u 'demo:{pw}' -H 'Content-Type: application/pkcs10'",
        root.display()
    );
    let csr = |name: &str| {
        format!(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key -subj /CN={name} -outform DER -out {name}.csr 2>/dev/null
            openssl base64 -in {name}.csr -out {name}.b64"
        )
    };

    // An enrollment, as the README shows.
    let (ok, out) = sh(
        &format!(
            "set -e
            {}
            {curl} --fail-with-body --data-binary @dev1.b64 {est}/simpleenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out dev1.pem
            openssl x509 -in dev1.pem -noout -serial",
            csr("dev1")
        ),
        &work,
    );
    assert!(ok, "{out}");
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap()
        .to_ascii_lowercase();

    // Held on the `manual` label, approved by the operator, then issued to the retry.
    let (ok, out) = sh(
        &format!(
            "set -e
            {}
            {curl} -o /dev/null -w '%{{http_code}}' --data-binary @held.b64 {est}/manual/simpleenroll",
            csr("held")
        ),
        &work,
    );
    assert!(ok && out.ends_with("202"), "{out}");
    let (ok, out) = estuary(&["request", "list", "--json"], &data);
    assert!(ok, "{out}");
    let id = json_lines(out.lines().next().unwrap())[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out) = estuary(&["request", "approve", &id], &data);
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "{curl} -o /dev/null -w '%{{http_code}}' --data-binary @held.b64 {est}/manual/simpleenroll"
        ),
        &work,
    );
    assert!(ok && out.ends_with("200"), "{out}");

    // Refused: a renewal of a certificate this user was never issued.
    let (ok, out) = sh(
        &format!(
            "set -e
            {}
            {curl} -o /dev/null -w '%{{http_code}}' --data-binary @nobody.b64 {est}/simplereenroll",
            csr("nobody")
        ),
        &work,
    );
    assert!(ok && !out.ends_with("200"), "{out}");

    // Administrative actions on the command line.
    let (ok, out) = estuary(
        &["cert", "revoke", &serial, "--reason", "keyCompromise"],
        &data,
    );
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "echo 'bob-password-0123' | {} user add --data-dir {} bob --password-file -",
            common::BIN,
            data.display()
        ),
        &work,
    );
    assert!(ok, "{out}");

    // The trail: each action once, with who, from where and what.
    let (ok, out) = estuary(&["audit", "export"], &data);
    assert!(ok, "{out}");
    let records = json_lines(&out);
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "cert.issue",
            "request.hold",
            "request.approve",
            "cert.issue",
            "enroll.refused",
            "cert.revoke",
            "user.add"
        ],
        "{out}"
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1, "{r}");
        for field in [
            "prev_hash",
            "hash",
            "time",
            "at",
            "actor",
            "source",
            "target",
            "label",
            "details",
        ] {
            assert!(!r[field].is_null(), "{field} in {r}");
        }
    }
    let first = &records[0];
    assert_eq!(first["actor"], "user:demo");
    assert!(
        first["source"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{first}"
    );
    assert_eq!(first["target"], serial.as_str());
    assert_eq!(records[1]["label"], "manual");
    assert_eq!(records[1]["target"], id.as_str());
    assert_eq!(records[2]["target"], id.as_str());
    assert_eq!(records[3]["label"], "manual");
    assert_eq!(records[4]["target"], "CN=nobody");
    assert!(
        records[5]["actor"].as_str().unwrap().starts_with("cli:"),
        "{}",
        records[5]
    );
    assert_eq!(records[5]["source"], "cli");
    assert_eq!(records[5]["target"], serial.as_str());
    assert!(
        records[5]["details"]
            .as_str()
            .unwrap()
            .contains("keyCompromise")
    );
    assert_eq!(records[6]["target"], "bob");

    // --out, --since, list --json, list.
    let file = work.join("audit.jsonl");
    let (ok, out) = estuary(&["audit", "export", "--out", file.to_str().unwrap()], &data);
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "python3 -c 'import json,sys; print(len([json.loads(l) for l in open(sys.argv[1])]))' {}",
            file.display()
        ),
        &work,
    );
    assert!(ok && out.trim() == "7", "{out}");
    let (ok, out) = estuary(
        &["audit", "export", "--since", "2999-01-01T00:00:00Z"],
        &data,
    );
    assert!(ok && out.trim().is_empty(), "{out}");
    let (ok, out) = estuary(&["audit", "list", "--json", "--limit", "2"], &data);
    assert!(ok, "{out}");
    let newest = json_lines(&out);
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[1]["action"], "user.add");
    let (ok, out) = estuary(&["audit", "list"], &data);
    assert!(
        ok && out.contains("cert.revoke") && out.contains("SEQ"),
        "{out}"
    );

    // Intact: OK, with the head an operator notes.
    let (ok, out) = estuary(&["audit", "verify"], &data);
    assert!(ok, "{out}");
    assert!(out.contains("audit chain OK: 7 record(s)"), "{out}");
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .unwrap()
        .to_owned();
    assert_eq!(head, records[6]["hash"].as_str().unwrap());
    let (ok, out) = estuary(&["audit", "verify", "--expect-head", &head], &data);
    assert!(ok, "{out}");

    // The newest record removed: consistent, but the noted head is gone.
    let db = data.join("estuary.db");
    sqlite(&db, "DELETE FROM audit_log WHERE seq = 7");
    let (ok, out) = estuary(&["audit", "verify"], &data);
    assert!(ok, "{out}");
    let (ok, out) = estuary(&["audit", "verify", "--expect-head", &head], &data);
    assert!(
        !ok && out.contains("BROKEN") && out.contains(&head),
        "{out}"
    );

    // An edited record is named.
    sqlite(
        &db,
        "UPDATE audit_log SET details = 'nothing to see' WHERE seq = 6",
    );
    let (ok, out) = estuary(&["audit", "verify"], &data);
    assert!(!ok, "{out}");
    assert!(out.contains("record 6") && out.contains("edited"), "{out}");

    // A removed record is named (the first break wins).
    sqlite(&db, "DELETE FROM audit_log WHERE seq = 3");
    let (ok, out) = estuary(&["audit", "verify"], &data);
    assert!(!ok, "{out}");
    assert!(out.contains("record 3 is missing"), "{out}");
    drop(server);
}
