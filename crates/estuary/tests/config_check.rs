//! Safe defaults (issue 11): `estuary serve` without `--demo` refuses a data dir that has no
//! estuary.toml and creates nothing there (a mistyped `--data-dir` never starts a new CA), and
//! `estuary config check` loads a configuration as `serve` would, naming the setting and the
//! path of what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, estuary};

fn check(data: &Path) -> (bool, String) {
    estuary(&["config", "check"], data)
}

#[test]
fn serve_needs_demo_for_a_new_data_dir_and_config_check_names_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("estuary-dat");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("estuary.toml does not exist") && err.contains("serve --demo"),
        "{err}"
    );
    assert!(!typo.exists(), "nothing is created without --demo");
    let (ok, text) = check(&typo);
    assert!(!ok && text.contains("estuary.toml"), "{text}");

    // A demo data dir (made by `serve --demo`, then stopped) checks out.
    let demo = tmp.path().join("demo");
    drop(common::start_demo(&demo));
    let (ok, text) = check(&demo);
    assert!(ok && text.contains(": OK ("), "{text}");

    let toml_path = demo.join("estuary.toml");
    let original = std::fs::read_to_string(&toml_path).unwrap();
    // A semantic error: a zero validity.
    let zero = regex_free_replace(&original, "validity_days = ", "0");
    std::fs::write(&toml_path, &zero).unwrap();
    let (ok, text) = check(&demo);
    assert!(
        !ok && text.contains("validity_days must be at least 1") && text.contains("estuary.toml"),
        "{text}"
    );
    // A missing file: named with its setting and its path.
    std::fs::write(&toml_path, &original).unwrap();
    let tls_cert = original
        .lines()
        .find_map(|l| l.strip_prefix("tls_cert = "))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .expect("tls_cert in the demo config");
    std::fs::rename(demo.join(&tls_cert), demo.join("moved.pem")).unwrap();
    let (ok, text) = check(&demo);
    assert!(
        !ok && text.contains("server.tls_cert") && text.contains(&tls_cert),
        "{text}"
    );
    // And `serve` refuses it the same way, before binding anything.
    let (ok, text) = estuary(&["serve", "--listen", "127.0.0.1:0"], &demo);
    assert!(!ok && text.contains("server.tls_cert"), "{text}");
}

/// `text` with the value after the first `key` (up to the end of its line) set to `value`.
fn regex_free_replace(text: &str, key: &str, value: &str) -> String {
    let start = text.find(key).expect("key present") + key.len();
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    format!("{}{}{}", &text[..start], value, &text[end..])
}
