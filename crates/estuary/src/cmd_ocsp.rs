//! `estuary ca ocsp-responder`: a delegated OCSP responder for a CA (RFC 6960 §4.2.2.2; SEC-10:
//! OCSP answers signed by a key other than the CA's). The key is generated in the key backend,
//! the certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) signed by the CA and written as
//! PEM; the two lines that make the server use them are printed for estuary.toml.
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use est_ca::{KeyBackend, KeyId, KeyType};
use x509_cert::name::Name;

use crate::config::{AnyError, Config};
use crate::unix_secs;

pub fn ocsp_responder(data_dir: &Path, ca: &str, days: u32) -> Result<(), AnyError> {
    if days == 0 {
        return Err("--days must be at least 1".into());
    }
    let cfg = Config::load(data_dir)?;
    let keys = cfg.key_backend(data_dir)?;
    let domains = cfg.domains(data_dir, &keys, None)?;
    let domain = domains
        .iter()
        .find(|d| d.name == ca)
        .ok_or_else(|| format!("unknown CA {ca:?}"))?;
    let now = SystemTime::now();
    // A new key id each time: renewing the responder never overwrites the key in use.
    let key_id = format!("{ca}-ocsp-{}", unix_secs(now));
    let key = keys.generate(&KeyId(key_id.clone()), KeyType::P256)?;
    let subject = Name::from_str(&format!("CN={ca} OCSP Responder"))?;
    let cert = est_ca::setup::ocsp_responder_certificate(
        &domain.issuer,
        key.public_key_info().clone(),
        subject,
        Duration::from_secs(u64::from(days) * 86400),
        now,
    )?;
    let der = der::Encode::to_der(&cert)?;
    // The same checks the server makes when it loads it.
    est_ca::OcspResponder::new(der.clone(), key, &domain.issuer)?;
    let rel = format!("ca/{ca}-ocsp-responder.pem");
    let pem = openssl::x509::X509::from_der(&der)?.to_pem()?;
    let path = data_dir.join(&rel);
    std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "wrote {} (serial {}, valid {days} days)",
        path.display(),
        est_ca::serial_hex(cert.tbs_certificate().serial_number())
    );
    println!(
        "add to the [[ca]] table named {ca:?} in {}, then restart the server:",
        Config::path(data_dir).display()
    );
    println!("ocsp_responder_cert = \"{rel}\"");
    println!("ocsp_responder_key = \"{key_id}\"");
    Ok(())
}
