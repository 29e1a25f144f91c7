//! Files at rest (issue 12): with a umask of 000, `estuary serve` still creates its data dir
//! 0700 and the database, its WAL and SHM files, keys and secrets 0600; and it refuses to start
//! when a secret has become group/world-readable, naming the file and the chmod to run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::BIN;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn serve_with_umask_000(data: &Path) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec {BIN} serve --demo --data-dir {} --listen 127.0.0.1:0",
            data.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `serve` on `data` must exit with an error; its message.
fn refused(data: &Path) -> String {
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn owner_only_files_whatever_the_umask_and_refusal_of_readable_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = serve_with_umask_000(&data);
    let out = child.stdout.take().unwrap();
    let mut started = false;
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if line.starts_with("CA labels") {
            started = true;
            break;
        }
    }
    assert!(started, "the demo server started");
    // The store opens its WAL and SHM as its pools connect, which on a loaded machine can be
    // a while after the banner: wait for them (bounded), then look.
    assert_eq!(mode(&data), 0o700, "data dir");
    for f in ["estuary.db", "estuary.db-wal", "estuary.db-shm"] {
        let p = data.join(f);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !p.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(p.exists(), "{f} exists 20 s after the server started");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    for dir in ["keys", "secrets"] {
        assert_eq!(mode(&data.join(dir)), 0o700, "{dir}");
        for e in std::fs::read_dir(data.join(dir)).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    assert_eq!(mode(&data.join("tls/server.key.pem")), 0o600);
    child.kill().unwrap();
    child.wait().unwrap();

    // A secret made readable by others: serve refuses, naming it and the fix.
    let secret = data.join("secrets/key-passphrase");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(&data);
    assert!(err.contains(&secret.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", secret.display())),
        "{err}"
    );
    // A key directory opened to the group, likewise.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(data.join("keys"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let err = refused(&data);
    assert!(err.contains("chmod 700"), "{err}");
}
