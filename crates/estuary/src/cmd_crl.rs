//! `estuary cert revoke` and `estuary crl`: revocation and CRLs (RFC 5280 §5) from the command
//! line, through the same store a running server uses. The server notices a revocation made
//! here within `est_ca::CRL_STATE_CHECK_INTERVAL` (its CRL cache compares the store's
//! revocation state), so nothing needs restarting.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use der::Decode;
use est_ca::{Authority, CertRecord, CrlReason, RevokeOutcome, SystemClock};
use x509_cert::crl::CertificateList;

use crate::config::{AnyError, Config};
use crate::{fmt_time, open_store};

/// `estuary cert revoke`.
pub async fn revoke(
    data_dir: &Path,
    serial: &str,
    reason: &str,
    invalidity_date: Option<&str>,
) -> Result<(), AnyError> {
    let reason: CrlReason = reason.parse()?;
    let invalidity = invalidity_date.map(parse_rfc3339).transpose()?;
    // Revocation needs the store only, not the CA keys: an authority without domains.
    let store = Arc::new(open_store(data_dir).await?);
    let authority = Authority::new(Vec::new(), store.clone(), Arc::new(SystemClock))?;
    let outcome = authority
        .revoke(serial, reason, invalidity, &actor(), "cli")
        .await?;
    drop(authority);
    if let Some(store) = Arc::into_inner(store) {
        store.close().await;
    }
    match outcome {
        RevokeOutcome::Revoked(r) => {
            println!("revoked {}", describe(&r));
            println!(
                "the next CRL of CA {:?} lists it (a running server serves it within {} s: estuary crl --ca {} --out FILE, or GET /crl/{}.crl)",
                r.ca,
                est_ca::CRL_STATE_CHECK_INTERVAL.as_secs().max(1),
                r.ca,
                r.ca
            );
            println!("OCSP answers (GET/POST /ocsp) say revoked from now on");
            Ok(())
        }
        RevokeOutcome::AlreadyRevoked(r) => {
            println!("already revoked, nothing changed: {}", describe(&r));
            Ok(())
        }
        RevokeOutcome::Unknown => Err(format!("no certificate with serial {serial}").into()),
    }
}

/// Serial, subject, CA and the recorded revocation details.
fn describe(r: &CertRecord) -> String {
    let mut s = format!("{} ({}, CA {})", r.serial, r.subject, r.ca);
    if let Some(rev) = &r.revocation {
        let reason = CrlReason::from_code(rev.reason)
            .map_or_else(|| rev.reason.to_string(), |c| c.name().to_owned());
        s.push_str(&format!(
            " at {}, reason {reason}",
            fmt_time(rev.revoked_at)
        ));
        if let Some(t) = rev.invalidity_date {
            s.push_str(&format!(", invalid since {}", fmt_time(t)));
        }
    }
    s
}

/// Who revoked, for the audit log: the login name running the command.
/// Who runs the command line, for the audit trail: `cli:<$USER or $LOGNAME>`, else
/// `cli:uid:<uid>` (the owner of this process, read from /proc).
pub(crate) fn actor() -> String {
    use std::os::unix::fs::MetadataExt;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| format!("uid:{}", m.uid()))
        })
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

fn parse_rfc3339(s: &str) -> Result<SystemTime, AnyError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("--invalidity-date {s:?}: expected RFC 3339 (2025-01-31T12:00:00Z): {e}")
        })?;
    Ok(SystemTime::from(t))
}

/// `estuary crl`: writes the current CRL (DER) of `ca` (default: the CA of the label-less
/// path, else the first one) to `out` (`-`: standard output).
pub async fn crl(data_dir: &Path, ca: Option<String>, out: &PathBuf) -> Result<(), AnyError> {
    let cfg = Config::load(data_dir)?;
    let ca = match ca {
        Some(c) => c,
        None => cfg
            .labels
            .iter()
            .find(|l| l.name.is_empty())
            .map(|l| l.ca.clone())
            .or_else(|| cfg.cas.first().map(|c| c.name.clone()))
            .ok_or("no [[ca]] configured")?,
    };
    if !cfg.cas.iter().any(|c| c.name == ca) {
        return Err(format!("unknown CA {ca:?}").into());
    }
    // Not config::authority: no /serverkeygen key pool for a one-shot command.
    let keys = cfg.key_backend(data_dir)?;
    let domains = cfg.domains(data_dir, &keys, None)?;
    let store = Arc::new(est_store::SqlStore::connect(&cfg.store_url(data_dir)).await?);
    let authority = Authority::new(domains, store.clone(), Arc::new(SystemClock))?;
    let der = authority.crl(&ca).await?;
    drop(authority);
    if let Some(store) = Arc::into_inner(store) {
        store.close().await;
    }
    if out.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().write_all(&der)?;
    } else {
        std::fs::write(out, &*der).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der)?;
    let tbs = &crl.tbs_cert_list;
    eprintln!(
        "CRL of CA {ca:?}: {} revoked, this update {}, next update {}{}",
        tbs.revoked_certificates.as_ref().map_or(0, Vec::len),
        tbs.this_update,
        tbs.next_update
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string),
        if out.as_os_str() == "-" {
            String::new()
        } else {
            format!(", written to {}", out.display())
        }
    );
    Ok(())
}
