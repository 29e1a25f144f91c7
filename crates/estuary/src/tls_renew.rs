//! Renewal of the server's own TLS certificate (issue 11, lifecycle): when the certificate
//! `[server] tls_cert` names was issued by one of this server's CAs and is within
//! `tls_renew_before_days` of its notAfter, a new key of the same type is generated, certified
//! for the same names by that CA (recorded in the store) and written over the files; the
//! caller then swaps the TLS acceptors as SIGHUP does.
use std::path::Path;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use est_ca::KeyType;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::config::{AnyError, Config};

/// What a check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed: the new certificate's serial and notAfter (Unix seconds).
    Renewed { serial: String, not_after: i64 },
    /// Not due, turned off, or not ours (the reason).
    Skipped(String),
}

/// Renews the TLS certificate if it is due (see the module documentation).
pub async fn renew_if_due(
    cfg: &Config,
    data_dir: &Path,
    authority: &est_ca::Authority,
    domains: &[est_ca::CaDomain],
    now: SystemTime,
) -> Result<Renewal, AnyError> {
    if !cfg.server.tls_auto_renew {
        return Ok(Renewal::Skipped("tls_auto_renew = false".into()));
    }
    let chain_path = data_dir.join(&cfg.server.tls_cert);
    let key_path = data_dir.join(&cfg.server.tls_key);
    let pem = std::fs::read(&chain_path).map_err(|e| format!("{}: {e}", chain_path.display()))?;
    let chain =
        Certificate::load_pem_chain(&pem).map_err(|e| format!("{}: {e}", chain_path.display()))?;
    let leaf = chain
        .first()
        .ok_or("the TLS certificate file holds no certificate")?;
    let not_after = leaf.tbs_certificate().validity().not_after.to_system_time();
    let before = Duration::from_secs(u64::from(cfg.server.tls_renew_before_days) * 86400);
    if not_after
        .duration_since(now)
        .is_ok_and(|left| left > before)
    {
        return Ok(Renewal::Skipped("not due".into()));
    }
    // Ours: issued by (named after, and verifying under) one of our issuing CAs.
    let issuer = leaf.tbs_certificate().issuer();
    let Some(domain) = domains.iter().find(|d| {
        d.issuer.subject() == issuer
            && est_cms::VerifyKey::from_certificate(&d.issuer.cert)
                .and_then(|k| {
                    est_cms::verify_x509_signature_with(
                        &k,
                        leaf.signature_algorithm(),
                        &leaf.tbs_certificate().to_der()?,
                        leaf.signature().raw_bytes(),
                    )
                })
                .is_ok()
    }) else {
        return Ok(Renewal::Skipped(format!(
            "the TLS certificate was issued by {issuer}, not by a CA of this server: renew it there, replace the files and send SIGHUP"
        )));
    };
    // Renewing could not give more life than the issuing CA has left: then renewing at
    // every check would only pile up certificates. Said once per check, left alone.
    let ca_not_after = domain
        .issuer
        .cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_system_time();
    if ca_not_after <= not_after + Duration::from_secs(86400) {
        return Ok(Renewal::Skipped(format!(
            "the issuing CA {:?} expires before a renewed TLS certificate could outlive the current one: renew or roll over the CA",
            domain.name
        )));
    }
    let Some(kt) = key_type_of(leaf) else {
        return Ok(Renewal::Skipped(
            "the TLS key is of a type Estuary does not generate (RSA 2048/3072/4096, P-256, P-384, Ed25519)".into(),
        ));
    };
    let key = est_keys::generate_key(kt)?;
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?)?;
    let issued =
        est_ca::setup::renew_tls_server_certificate(authority, &domain.name, leaf, spki, now)
            .await?;
    // The new leaf, then the chain the file had after its leaf.
    let mut new_pem = crate::setup::pem_of(&issued.der)?;
    for c in &chain[1..] {
        new_pem.extend(crate::setup::pem_of(&c.to_der()?)?);
    }
    // The key first (mode 0600), then the chain: each replaced atomically by a rename.
    crate::cmd_client::replace_file(
        &key_path,
        &Zeroizing::new(key.private_key_to_pem_pkcs8()?),
        0o600,
    )?;
    crate::cmd_client::replace_file(&chain_path, &new_pem, 0o644)?;
    Ok(Renewal::Renewed {
        serial: issued.record.serial,
        not_after: issued.record.not_after,
    })
}

/// The type of key the current certificate has, so that the renewal keeps it; `None` for a
/// type Estuary does not generate.
fn key_type_of(cert: &Certificate) -> Option<KeyType> {
    let der = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()?;
    let key = openssl::pkey::PKey::public_key_from_der(&der).ok()?;
    Some(match (key.id(), key.bits()) {
        (openssl::pkey::Id::EC, 256) => KeyType::P256,
        (openssl::pkey::Id::EC, 384) => KeyType::P384,
        (openssl::pkey::Id::RSA, 2048) => KeyType::Rsa2048,
        (openssl::pkey::Id::RSA, 3072) => KeyType::Rsa3072,
        (openssl::pkey::Id::RSA, 4096) => KeyType::Rsa4096,
        (openssl::pkey::Id::ED25519, _) => KeyType::Ed25519,
        _ => return None,
    })
}
