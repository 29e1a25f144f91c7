//! `estuary ca rollover` (issue 11, EST-66/EST-67): root CA key rollover, RFC 4210 §4.4 style.
//! A new root key and self-signed root (NewWithNew) replace the old one in `ca/root.pem`; the
//! links NewWithOld and OldWithNew and the old root (OldWithOld) are served in /cacerts beside
//! the chain; every issuing CA is certified again under the new root (same name and key, so
//! what it issued still verifies); the server's TLS chain carries NewWithOld so that clients
//! that trust only the old root still connect. The old root's key is needed once, here; keep
//! both roots' keys offline afterwards (docs/operations.md).
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use est_ca::{Issuer, KeyBackend, KeyId, KeyType};
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::cmd_client::replace_file;
use crate::config::{AnyError, Config, pem_certs};
use crate::setup::pem_of;

pub struct RolloverArgs {
    pub root_key: String,
    pub subject: Option<String>,
    pub days: u32,
}

/// The default name of the new root: the old one's CN with " G2" appended (or its generation
/// number raised).
fn next_subject(old: &Name) -> Result<Name, AnyError> {
    let s = old.to_string();
    let (first, rest) = match s.split_once(',') {
        Some((f, r)) => (f.to_owned(), format!(",{r}")),
        None => (s.clone(), String::new()),
    };
    let cn = first
        .strip_prefix("CN=")
        .ok_or("the old root's subject does not start with CN=: give --subject")?;
    let next = match cn.rsplit_once(" G") {
        Some((base, n)) if n.parse::<u32>().is_ok() => {
            format!("{base} G{}", n.parse::<u32>().unwrap_or(1) + 1)
        }
        _ => format!("{cn} G2"),
    };
    Ok(Name::from_str(&format!("CN={next}{rest}"))?)
}

fn cert_of(path: &Path) -> Result<(Vec<u8>, Certificate), AnyError> {
    let der = pem_certs(path)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate", path.display()))?;
    let c = <Certificate as der::Decode>::from_der(&der)?;
    Ok((der, c))
}

fn pem_all(certs: &[&Certificate]) -> Result<Vec<u8>, AnyError> {
    let mut out = Vec::new();
    for c in certs {
        out.extend(pem_of(&der::Encode::to_der(*c)?)?);
    }
    Ok(out)
}

/// Appends a CLI action to the data dir's audit trail.
pub(crate) async fn audit(
    data_dir: &Path,
    action: &str,
    target: &str,
    details: String,
) -> Result<(), AnyError> {
    let store = crate::open_store(data_dir).await?;
    let r = crate::cmd_audit::record(&store, action, target, details).await;
    store.close().await;
    r
}

pub async fn rollover(data_dir: &Path, a: &RolloverArgs) -> Result<(), AnyError> {
    let mut cfg = Config::load(data_dir)?;
    let root_file = cfg
        .cas
        .first()
        .and_then(|c| c.chain.last().cloned())
        .ok_or("no [[ca]] with a chain: nothing to roll over")?;
    if cfg
        .cas
        .iter()
        .any(|c| c.chain.last() != Some(&root_file) || c.chain.len() != 1)
    {
        return Err("rollover needs every [[ca]] directly under one root (chain = [root])".into());
    }
    let (old_der, old_cert) = cert_of(&data_dir.join(&root_file))?;
    let keys = cfg.key_backend(data_dir)?;
    let old_key = keys.load(&KeyId(a.root_key.clone())).map_err(|e| {
        format!(
            "the old root's key {:?}: {e} (if it is kept offline, put it back in the key directory for this command)",
            a.root_key
        )
    })?;
    let old_root = Issuer::new(old_der, Vec::new(), old_key)?;
    let now = SystemTime::now();
    let stamp = crate::fmt_time(crate::unix_secs(now))
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .to_owned();
    let subject = match &a.subject {
        Some(s) => Name::from_str(s).map_err(|e| format!("--subject {s:?}: {e}"))?,
        None => next_subject(old_cert.tbs_certificate().subject())?,
    };
    // The links must be told apart from the roots (subject != issuer), and clients tell the
    // roots apart by name.
    if &subject == old_cert.tbs_certificate().subject() {
        return Err("the new root needs a subject of its own (--subject)".into());
    }
    // Everything is computed before the first file is written: an issuing CA that cannot be
    // certified again (expired) stops the rollover with nothing changed.
    let mut recertified = Vec::new();
    for ca in &cfg.cas {
        let (_, current) = cert_of(&data_dir.join(&ca.cert))?;
        recertified.push(current);
    }
    let new_key_id = format!("root-{stamp}");
    let new_key = keys.generate(&KeyId(new_key_id.clone()), KeyType::P256)?;
    let r = est_ca::setup::root_rollover(
        &old_root,
        new_key,
        subject,
        Duration::from_secs(u64::from(a.days.max(1)) * 86400),
        now,
    )?;
    let new_root_cert = r
        .new_root
        .full_chain()
        .into_iter()
        .next()
        .ok_or("no new root certificate")?;
    let mut issuing = Vec::new();
    for current in recertified {
        let again = est_ca::setup::recertify_subordinate(&r.new_root, &current, now)?;
        issuing.push((current, again));
    }

    // The files: the old root kept, the new one in its place, the links beside them.
    let old_copy = PathBuf::from(format!("ca/root-{stamp}-old.pem"));
    let links = PathBuf::from(format!("ca/root-{stamp}-rollover.pem"));
    replace_file(&data_dir.join(&old_copy), &pem_all(&[&old_cert])?, 0o644)?;
    replace_file(
        &data_dir.join(&links),
        &pem_all(&[&old_cert, &r.old_with_new, &r.new_with_old])?,
        0o644,
    )?;
    // Every issuing CA again, under the new root (same subject and key).
    for (ca, (current, again)) in cfg.cas.iter_mut().zip(&issuing) {
        let path = data_dir.join(&ca.cert);
        replace_file(
            &data_dir.join(format!("{}.{stamp}.bak", ca.cert.display())),
            &pem_all(&[current])?,
            0o644,
        )?;
        replace_file(&path, &pem_all(&[again])?, 0o644)?;
        if !ca.rollover.contains(&links) {
            ca.rollover.push(links.clone());
        }
    }
    replace_file(
        &data_dir.join(&root_file),
        &pem_all(&[&new_root_cert])?,
        0o644,
    )?;
    // The TLS chain: the leaf, its issuing CA under the new root, and NewWithOld for clients
    // that still trust only the old root.
    let tls_path = data_dir.join(&cfg.server.tls_cert);
    let tls_chain = pem_certs(&tls_path)?;
    if let Some(leaf_der) = tls_chain.first() {
        let leaf = <Certificate as der::Decode>::from_der(leaf_der)?;
        if let Some((_, again)) = issuing
            .iter()
            .find(|(cur, _)| cur.tbs_certificate().subject() == leaf.tbs_certificate().issuer())
        {
            let mut pem = pem_of(leaf_der)?;
            pem.extend(pem_all(&[again, &r.new_with_old])?);
            replace_file(&tls_path, &pem, 0o644)?;
        }
    }
    // The configuration: each [[ca]] serves the rollover certificates (EST-66).
    crate::setup::rewrite_config(data_dir, &cfg)?;
    // The current root's key keeps its id (the next rollover and `init --add-ca` find it):
    // the old one moves aside.
    let key_dir = data_dir.join(&cfg.keys.dir);
    let old_key_id = format!("{}-{stamp}-old", a.root_key);
    std::fs::rename(
        key_dir.join(format!("{}.key.pem", a.root_key)),
        key_dir.join(format!("{old_key_id}.key.pem")),
    )?;
    std::fs::rename(
        key_dir.join(format!("{new_key_id}.key.pem")),
        key_dir.join(format!("{}.key.pem", a.root_key)),
    )?;
    audit(
        data_dir,
        est_ca::audit_action::CA_ROLLOVER,
        &new_key_id,
        format!(
            "new root {}; issuing CAs recertified: {}",
            new_root_cert.tbs_certificate().subject(),
            cfg.cas
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .await?;

    let fp = |c: &Certificate| -> Result<String, AnyError> {
        Ok(est_client::fingerprint(&est_client::to_x509(c)?)?)
    };
    println!(
        "new root (NewWithNew): {}, key {:?} (the old root's key is now {old_key_id:?})",
        new_root_cert.tbs_certificate().subject(),
        a.root_key
    );
    println!("  SHA-256 fingerprint: {}", fp(&new_root_cert)?);
    println!("  in {}", data_dir.join(&root_file).display());
    println!(
        "old root kept in {}; OldWithOld, OldWithNew and NewWithOld in {} (served in /cacerts)",
        data_dir.join(&old_copy).display(),
        data_dir.join(&links).display()
    );
    println!(
        "issuing CAs certified again under the new root: {}",
        cfg.cas
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "restart the server; once every client trusts the new root, remove `rollover` from each [[ca]]"
    );
    println!(
        "keep the root keys offline: {} and {old_key_id} in the key directory are needed only for rollovers and new issuing CAs",
        a.root_key
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_subject_counts_generations() {
        let n = |s: &str| {
            next_subject(&Name::from_str(s).unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(n("CN=Root,O=Org"), "CN=Root G2,O=Org");
        assert_eq!(n("CN=Root G2,O=Org"), "CN=Root G3,O=Org");
        assert_eq!(n("CN=Root"), "CN=Root G2");
        assert!(next_subject(&Name::from_str("O=Org").unwrap()).is_err());
    }
}
