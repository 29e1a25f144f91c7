//! CLI polish (issue 11): shell completions from `clap_complete` and man pages from
//! `clap_mangen`, checked by the shells and man's formatter themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{BIN, sh};

#[test]
fn completions_parse_in_bash_and_man_pages_render() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "config",
        "token",
        "revoke",
        "audit",
        "--expect-head",
        "--log-format",
        "--data-dir",
    ] {
        assert!(script.contains(word), "{word} not completed");
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("estuary.bash"), &script).unwrap();
    // Loaded by bash: `complete` registers the function for `estuary`.
    let (ok, text) = sh(
        "bash -c 'source ./estuary.bash && complete -p estuary'",
        tmp.path(),
    );
    assert!(ok && text.contains("estuary"), "{text}");
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }

    let man = tmp.path().join("man");
    let out = Command::new(BIN)
        .args(["man", "--out"])
        .arg(&man)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "estuary.1",
        "estuary-serve.1",
        "estuary-token-revoke.1",
        "estuary-config-check.1",
        "estuary-audit-verify.1",
        "estuary-audit-export.1",
    ] {
        assert!(man.join(page).is_file(), "{page} missing");
    }
    let (ok, text) = sh("groff -man -Tutf8 estuary-serve.1 2>&1", &man);
    assert!(ok, "{text}");
    assert!(
        text.contains("estuary-serve") && text.contains("--demo"),
        "{text}"
    );
}
