//! `estuary cmc-secret add|list|remove` on a production-shaped data dir (`estuary init`): the
//! secret read from stdin is never printed, is sealed in the database (not a byte of it in the
//! clear, in the file or its WAL), and opens with the server secret to exactly what was given.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::BIN;

const SECRET: &str = "cmc-shared-secret-0123456789";

/// Runs `estuary <args> --data-dir <dir>` with `stdin` piped in; (success, stdout, stderr).
fn estuary(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every byte of the SQLite database and its WAL, whichever exist.
fn database_bytes(dir: &Path) -> Vec<u8> {
    ["estuary.db", "estuary.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .flatten()
        .collect()
}

/// What the server would read: the stored secret opened with the data dir's server secret.
async fn opened(dir: &Path, ident: &str) -> Option<Vec<u8>> {
    let cfg: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("estuary.toml")).unwrap()).unwrap();
    let pass_file = cfg["keys"]["passphrase_file"].as_str().unwrap();
    let pass = std::fs::read(dir.join(pass_file)).unwrap();
    let pass = pass.strip_suffix(b"\n").unwrap_or(&pass);
    let sealer = est_ca::SecretBox::from_server_secret(pass).unwrap();
    let url = format!("sqlite://{}", dir.join("estuary.db").display());
    let store = est_store::SqlStore::connect(&url).await.unwrap();
    let secret = est_ca::CmcSecrets {
        store: &store,
        sealer: &sealer,
    }
    .get(ident)
    .await
    .unwrap()
    .map(|s| s.secret.to_vec());
    store.close().await;
    secret
}

#[tokio::test(flavor = "multi_thread")]
async fn cmc_secret_add_list_remove_sealed_at_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let (ok, _, err) = estuary(&d, &["init"], "");
    assert!(ok, "{err}");

    // From stdin, the trailing newline stripped; linked to a subject, any label.
    let (ok, out, err) = estuary(
        &d,
        &[
            "cmc-secret",
            "add",
            "--ident",
            "dev-1",
            "--subject",
            "CN=dev1.example,O=Acme",
            "--secret-file",
            "-",
        ],
        &format!("{SECRET}\n"),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("28-byte") && out.contains("\"dev-1\""),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
    // A label must be one of the configured ones.
    let (ok, _, err) = estuary(
        &d,
        &[
            "cmc-secret",
            "add",
            "--ident",
            "dev-2",
            "--label",
            "nope",
            "--secret-file",
            "-",
        ],
        SECRET,
    );
    assert!(!ok && err.contains("unknown label"), "{err}");
    // CMC-45: shorter than 16 bytes is refused; an ident is stored once.
    let (ok, _, err) = estuary(
        &d,
        &[
            "cmc-secret",
            "add",
            "--ident",
            "dev-2",
            "--secret-file",
            "-",
        ],
        "fifteen-bytes!!\n",
    );
    assert!(!ok && err.contains("16"), "{err}");
    let (ok, _, err) = estuary(
        &d,
        &[
            "cmc-secret",
            "add",
            "--ident",
            "dev-1",
            "--secret-file",
            "-",
        ],
        "another-secret-0123456789",
    );
    assert!(!ok && err.contains("exists"), "{err}");

    let (ok, out, err) = estuary(&d, &["cmc-secret", "list"], "");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with(
            "ident \"dev-1\"\tlabel (any)\tsubject CN=dev1.example,O=Acme\tcreated 20"
        ),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");

    // Sealed at rest: no 8-byte run of the secret anywhere in the database or its WAL.
    let db = database_bytes(&d);
    assert!(!db.is_empty());
    for run in SECRET.as_bytes().windows(8) {
        assert!(!db.windows(8).any(|w| w == run), "{:?} in the clear", run);
    }
    // ... and what the server opens is exactly the secret, without the newline.
    assert_eq!(opened(&d, "dev-1").await.unwrap(), SECRET.as_bytes());

    let (ok, out, err) = estuary(&d, &["cmc-secret", "remove", "--ident", "dev-1"], "");
    assert!(ok && out.contains("removed"), "{out}{err}");
    let (ok, _, err) = estuary(&d, &["cmc-secret", "remove", "--ident", "dev-1"], "");
    assert!(!ok && err.contains("no CMC shared secret"), "{err}");
    let (ok, out, _) = estuary(&d, &["cmc-secret", "list"], "");
    assert!(ok && out.is_empty(), "{out}");
    assert_eq!(opened(&d, "dev-1").await, None);
}
