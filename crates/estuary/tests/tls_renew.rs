//! The server renews its own TLS certificate from its CA (issue 11, lifecycle): with
//! `tls_renew_before_days` larger than the certificate's remaining life the renewal is due, so
//! `estuary serve` renews at start (new key of the same type, same names, recorded in the store
//! as `estuary:tls-renewal`, key file 0600) and, checking again every
//! ESTUARY_TLS_RENEW_CHECK_SECS, renews and swaps it while running; clients see the new
//! certificate verify against the root. Not due: nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, restart, sh};

fn served_serial(addr: &str, root: &Path, work: &Path) -> String {
    let (ok, out) = sh(
        &format!(
            "echo | openssl s_client -connect {addr} -CAfile {} -verify_return_error 2>/dev/null | openssl x509 -noout -serial",
            root.display()
        ),
        work,
    );
    assert!(ok, "{out}");
    out.trim().trim_start_matches("serial=").to_lowercase()
}

fn file_serial(data: &Path, work: &Path) -> String {
    let (ok, out) = sh(
        &format!(
            "openssl x509 -in {} -noout -serial",
            data.join("tls/server-chain.pem").display()
        ),
        work,
    );
    assert!(ok, "{out}");
    out.trim().trim_start_matches("serial=").to_lowercase()
}

fn set_renew_before(data: &Path, days: u32) {
    let p = data.join("estuary.toml");
    let toml = std::fs::read_to_string(&p).unwrap();
    let kept: Vec<&str> = toml
        .lines()
        .filter(|l| !l.starts_with("tls_renew_before_days"))
        .collect();
    let mut out = String::new();
    for l in kept {
        out.push_str(l);
        out.push('\n');
        if l.trim() == "[server]" {
            out.push_str(&format!("tls_renew_before_days = {days}\n"));
        }
    }
    std::fs::write(&p, out).unwrap();
}

#[test]
fn the_server_renews_its_own_tls_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().to_path_buf();
    let root = data.join("ca/root.pem");
    let status = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let initial = file_serial(&data, &work);

    // Not due (30 days before a one-year certificate): untouched.
    {
        let server = restart(&data, "");
        assert_eq!(served_serial(&server.addr, &root, &work), initial);
        assert_eq!(file_serial(&data, &work), initial);
    }

    // Due at start: renewed before the first handshake.
    set_renew_before(&data, 400);
    let key_before = std::fs::read(data.join("tls/server.key.pem")).unwrap();
    let server = restart(&data, "");
    let renewed = file_serial(&data, &work);
    assert_ne!(renewed, initial);
    assert_eq!(served_serial(&server.addr, &root, &work), renewed);
    assert_ne!(
        std::fs::read(data.join("tls/server.key.pem")).unwrap(),
        key_before
    );
    let mode = std::fs::metadata(data.join("tls/server.key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (ok, out) = sh(
        &format!(
            "openssl x509 -in {chain} -noout -ext subjectAltName -enddate && openssl verify -CAfile {root} -untrusted {chain} {chain}",
            chain = data.join("tls/server-chain.pem").display(),
            root = root.display()
        ),
        &work,
    );
    assert!(
        ok && out.contains("IP Address:127.0.0.1") && out.contains(": OK"),
        "{out}"
    );
    let list = Command::new(BIN)
        .args(["cert", "list", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let norm = |v: &str| v.to_lowercase().trim_start_matches('0').to_string();
    let rec = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["serial"].as_str().map(norm) == Some(norm(&renewed)))
        .unwrap_or_else(|| panic!("{renewed} not recorded:\n{list}"));
    assert_eq!(rec["requester"], "estuary:tls-renewal", "{rec}");
    drop(server);

    // While running: the periodic check renews again and new handshakes get it.
    let server = restart_checking_every_2s(&data);
    let first = served_serial(&server.addr, &root, &work);
    let mut later = first.clone();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        later = served_serial(&server.addr, &root, &work);
        if later != first {
            break;
        }
    }
    assert_ne!(later, first, "renewed and swapped while running");
    assert_eq!(later, file_serial(&data, &work));
}

/// `estuary serve` checking for renewal every 2 s.
fn restart_checking_every_2s(data: &Path) -> common::Server {
    common::restart_with_env(data, "", &[("ESTUARY_TLS_RENEW_CHECK_SECS", "2")])
}
