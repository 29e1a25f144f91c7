//! Files at rest (issue 12): `serve` refuses to run with secrets that the group or others may
//! read, and says which file and which `chmod` fixes it. The database is restricted by the
//! store itself when it opens it (`est-store`), and `init` creates everything owner-only.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// Every file and directory holding secrets: the key directory and every file in it, the key
/// passphrase, the TLS and CMC encryption keys, and everything under `secrets/`.
fn secret_paths(data_dir: &Path, cfg: &Config) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut dir_and_files = |dir: PathBuf| {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                paths.push(e.path());
            }
        }
        paths.push(dir);
    };
    dir_and_files(data_dir.join(&cfg.keys.dir));
    dir_and_files(data_dir.join("secrets"));
    paths.push(data_dir.join(&cfg.keys.passphrase_file));
    paths.push(data_dir.join(&cfg.server.tls_key));
    if let Some(k) = &cfg.server.cmc_encryption_key {
        paths.push(data_dir.join(k));
    }
    for u in &cfg.upstreams {
        paths.push(data_dir.join(&u.key));
    }
    paths.sort();
    paths.dedup();
    paths
}

/// Refuses group- or world-accessible secrets, naming each and the command that fixes it.
pub fn check_private_files(data_dir: &Path, cfg: &Config) -> Result<(), String> {
    let mut bad = Vec::new();
    for p in secret_paths(data_dir, cfg) {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue; // a missing file is reported by whatever needs it
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let want = if meta.is_dir() { "700" } else { "600" };
            bad.push(format!(
                "{} is accessible to group or others (mode {mode:03o}); run: chmod {want} {}",
                p.display(),
                p.display()
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve with secrets others can read:\n  {}",
            bad.join("\n  ")
        ))
    }
}
