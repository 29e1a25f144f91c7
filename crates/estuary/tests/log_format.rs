//! Observability (issue 11): `--log-format json` writes one JSON object per log line, and the
//! text format carries no ANSI escape codes when stderr is not a terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use common::BIN;

/// Starts `serve --demo` on a fresh dir with `args`, waits for the banner, stops it, and
/// returns its stderr.
fn serve_stderr(args: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("d"))
        .env("ESTUARY_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .any(|l| l.starts_with("Estuary EST server listening"));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(started, "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn json_lines_and_plain_text_logs() {
    let json = serve_stderr(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{json}");
    for v in &lines {
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
    }
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "open-file limit"),
        "{json}"
    );

    let text = serve_stderr(&[]);
    assert!(text.contains("open-file limit"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in piped logs: {text:?}"
    );
}
