//! Creating CA hierarchies: self-signed roots, subordinate CAs and TLS server certificates.
//! Used by `estuary init`/the demo setup and by tests.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Encode;
use der::referenced::OwnedToRef;
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::profile::{CertKind, TbsProfile};
use crate::{CaError, Issuer, SigningKey, new_serial};

fn validity(now: SystemTime, lifetime: Duration) -> Result<Validity, CaError> {
    let nb = now.checked_sub(Duration::from_secs(300)).unwrap_or(now);
    Ok(Validity::new(
        Time::try_from(nb)?,
        Time::try_from(now + lifetime)?,
    ))
}

/// A self-signed root CA certificate for `key`.
pub fn self_signed_root(
    key: Arc<dyn SigningKey>,
    subject: Name,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Issuer, CaError> {
    let spki = key.public_key_info().clone();
    let profile = TbsProfile {
        issuer: None,
        subject,
        kind: CertKind::Ca { path_len: None },
    };
    // A self-signed certificate: the "issuer" signing it is the key itself.
    let tmp = SelfIssuer { key: key.clone() };
    let cert = tmp.sign(profile, validity(now, lifetime)?, spki)?;
    Issuer::new(cert.to_der()?, Vec::new(), key)
}

/// A subordinate CA certificate for `key`, signed by `parent`, with path length 0.
pub fn subordinate_ca(
    parent: &Issuer,
    key: Arc<dyn SigningKey>,
    subject: Name,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Issuer, CaError> {
    let profile = TbsProfile {
        issuer: Some(parent.subject().clone()),
        subject,
        kind: CertKind::Ca { path_len: Some(0) },
    };
    let (serial, _) = new_serial(now)?;
    let cert = parent.sign(
        profile,
        serial,
        validity(now, lifetime)?,
        key.public_key_info().clone(),
    )?;
    Issuer::new(cert.to_der()?, parent.full_chain(), key)
}

/// The certificates of a root key rollover (RFC 4210 §4.4, EST-66): the new self-signed root
/// (NewWithNew) and the two links between the old and the new key.
#[derive(Debug)]
pub struct Rollover {
    /// The new root, as an issuer (its key signs the new subordinate certificates).
    pub new_root: Issuer,
    /// The new root's key certified by the old root: clients that trust only the old root
    /// reach the new hierarchy through it.
    pub new_with_old: Certificate,
    /// The old root's key certified by the new root: clients that already trust the new root
    /// still validate what chains to the old one.
    pub old_with_new: Certificate,
}

/// Rolls the root `old_root` (its key must be at hand) over to `new_key` under `subject`:
/// NewWithNew for `lifetime`, NewWithOld and OldWithNew for what is left of the old root's
/// validity (a link cannot outlive the key that signs it, nor the one it certifies).
pub fn root_rollover(
    old_root: &Issuer,
    new_key: Arc<dyn SigningKey>,
    subject: Name,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Rollover, CaError> {
    let new_root = self_signed_root(new_key.clone(), subject.clone(), lifetime, now)?;
    let left = old_root
        .not_after()
        .duration_since(now)
        .map_err(|_| CaError::Internal("the old root certificate has expired".into()))?;
    let link = |parent: &Issuer, subject: Name, spki: SubjectPublicKeyInfoOwned| {
        let (serial, _) = new_serial(now)?;
        parent.sign(
            TbsProfile {
                issuer: Some(parent.subject().clone()),
                subject,
                kind: CertKind::Ca { path_len: None },
            },
            serial,
            validity(now, left.min(lifetime))?,
            spki,
        )
    };
    let new_with_old = link(old_root, subject, new_key.public_key_info().clone())?;
    let old_cert = old_root
        .full_chain()
        .into_iter()
        .next()
        .ok_or_else(|| CaError::Internal("no old root certificate".into()))?;
    let old_with_new = link(
        &new_root,
        old_cert.tbs_certificate().subject().clone(),
        old_cert.tbs_certificate().subject_public_key_info().clone(),
    )?;
    Ok(Rollover {
        new_root,
        new_with_old,
        old_with_new,
    })
}

/// `current` (a subordinate CA certificate) certified again by `parent`: the same subject, key
/// and path length 0, valid as long as before (at most as long as `parent`). Certificates the
/// subordinate issued before still verify with it (same name and key).
pub fn recertify_subordinate(
    parent: &Issuer,
    current: &Certificate,
    now: SystemTime,
) -> Result<Certificate, CaError> {
    let tbs = current.tbs_certificate();
    let left = tbs
        .validity()
        .not_after
        .to_system_time()
        .duration_since(now)
        .map_err(|_| CaError::Internal("the subordinate CA certificate has expired".into()))?;
    let left = left.min(parent.not_after().duration_since(now).unwrap_or_default());
    let (serial, _) = new_serial(now)?;
    parent.sign(
        TbsProfile {
            issuer: Some(parent.subject().clone()),
            subject: tbs.subject().clone(),
            kind: CertKind::Ca { path_len: Some(0) },
        },
        serial,
        validity(now, left)?,
        tbs.subject_public_key_info().clone(),
    )
}

/// A TLS server certificate (serverAuth, and clientAuth for mutual TLS between nodes) for the
/// given DNS names and IP addresses.
pub fn tls_server_certificate(
    parent: &Issuer,
    spki: SubjectPublicKeyInfoOwned,
    subject: Name,
    dns: &[&str],
    ips: &[std::net::IpAddr],
    lifetime: Duration,
    now: SystemTime,
) -> Result<Certificate, CaError> {
    let mut names = Vec::new();
    for d in dns {
        names.push(GeneralName::DnsName(der::asn1::Ia5String::new(d)?));
    }
    for ip in ips {
        let bytes = match ip {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        names.push(GeneralName::IpAddress(der::asn1::OctetString::new(bytes)?));
    }
    let profile = tls_profile(parent, subject, Some(SubjectAltName(names)), &spki);
    let (serial, _) = new_serial(now)?;
    parent.sign(profile, serial, validity(now, lifetime)?, spki)
}

/// A TLS server certificate's profile: digitalSignature (and keyEncipherment for RSA),
/// serverAuth and clientAuth, the given names.
fn tls_profile(
    parent: &Issuer,
    subject: Name,
    san: Option<SubjectAltName>,
    spki: &SubjectPublicKeyInfoOwned,
) -> TbsProfile {
    let is_rsa = spki.algorithm.oid == const_oid::db::rfc5912::RSA_ENCRYPTION;
    let usage = if is_rsa {
        KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
    } else {
        KeyUsages::DigitalSignature.into()
    };
    TbsProfile {
        issuer: Some(parent.subject().clone()),
        subject,
        kind: CertKind::EndEntity {
            key_usage: KeyUsage(usage),
            eku: vec![
                const_oid::db::rfc5280::ID_KP_SERVER_AUTH,
                const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
            ],
            san,
            crl_url: None,
            ocsp_url: None,
        },
    }
}

/// The CA's CMC encryption certificate (RSA, keyEncipherment): clients encrypt Full PKI
/// Requests to it (RFC 5272 §5, CMC-20, CMC-30: RSA key transport).
pub fn cmc_encryption_certificate(
    parent: &Issuer,
    spki: SubjectPublicKeyInfoOwned,
    subject: Name,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Certificate, CaError> {
    let profile = TbsProfile {
        issuer: Some(parent.subject().clone()),
        subject,
        kind: CertKind::EndEntity {
            key_usage: KeyUsage(KeyUsages::KeyEncipherment.into()),
            eku: Vec::new(),
            san: None,
            crl_url: None,
            ocsp_url: None,
        },
    };
    let (serial, _) = new_serial(now)?;
    parent.sign(profile, serial, validity(now, lifetime)?, spki)
}

/// A delegated OCSP responder certificate for `parent`'s certificates (RFC 6960 §4.2.2.2):
/// id-kp-OCSPSigning, digitalSignature and id-pkix-ocsp-nocheck. Keep `lifetime` short (the
/// nocheck extension means a compromised responder key cannot be revoked, §4.2.2.2.1).
pub fn ocsp_responder_certificate(
    parent: &Issuer,
    spki: SubjectPublicKeyInfoOwned,
    subject: Name,
    lifetime: Duration,
    now: SystemTime,
) -> Result<Certificate, CaError> {
    let profile = TbsProfile {
        issuer: Some(parent.subject().clone()),
        subject,
        kind: CertKind::OcspResponder,
    };
    let (serial, _) = new_serial(now)?;
    parent.sign(profile, serial, validity(now, lifetime)?, spki)
}

/// Signs a self-issued certificate with its own key.
struct SelfIssuer {
    key: Arc<dyn SigningKey>,
}

impl SelfIssuer {
    fn sign(
        &self,
        profile: TbsProfile,
        validity: Validity,
        spki: SubjectPublicKeyInfoOwned,
    ) -> Result<Certificate, CaError> {
        // Reuse Issuer::sign through a throwaway Issuer whose certificate is not consulted.
        let (serial, _) = new_serial(validity.not_before.to_system_time())?;
        crate::authority::sign_with_key(self.key.as_ref(), profile, serial, validity, spki)
    }
}

/// A renewal of this server's own TLS certificate `current` (issue 11, lifecycle): the same
/// subject, subjectAltName and lifetime (capped at the issuing CA's notAfter), for the new key
/// `spki`, signed by `domain`'s issuing CA and recorded in the store before it is returned
/// (requester `estuary:tls-renewal`). `current` must have been issued by that CA.
pub async fn renew_tls_server_certificate(
    authority: &crate::Authority,
    domain: &str,
    current: &Certificate,
    spki: SubjectPublicKeyInfoOwned,
    now: SystemTime,
) -> Result<crate::IssuedCert, CaError> {
    let d = authority
        .domain(domain)
        .ok_or_else(|| CaError::Internal(format!("unknown CA domain {domain}")))?;
    let issuer = &d.issuer;
    let tbs = current.tbs_certificate();
    if tbs.issuer() != issuer.subject() {
        return Err(CaError::Internal(format!(
            "the TLS certificate was issued by {}, not by CA {domain}",
            tbs.issuer()
        )));
    }
    let san = tbs
        .get_extension::<SubjectAltName>()
        .map_err(|e| CaError::MalformedRequest(format!("the TLS certificate's SAN: {e}")))?
        .map(|(_, s)| s);
    let lifetime = tbs
        .validity()
        .not_after
        .to_system_time()
        .duration_since(tbs.validity().not_before.to_system_time())
        .unwrap_or(Duration::from_secs(86400));
    let lifetime = match issuer.not_after().duration_since(now) {
        Ok(left) => lifetime.min(left),
        Err(_) => {
            return Err(CaError::Internal(
                "the issuing CA certificate has expired".into(),
            ));
        }
    };
    let profile = tls_profile(issuer, tbs.subject().clone(), san, &spki);
    issue_recorded(
        authority,
        d,
        profile,
        spki,
        lifetime,
        now,
        "estuary:tls-renewal",
    )
    .await
}

/// A registration authority's certificate (RFC 7030 §3.7, EST-48; RFC 6402 §2.10): the TLS
/// server and client EKUs plus id-kp-cmcRA, so one certificate serves the RA's EST listener,
/// authenticates it to this CA and signs its CMC requests. Issued by CA `domain` for `spki`
/// and recorded in the store (an RA is honoured only when it is, CMC-56).
pub async fn issue_ra_certificate(
    authority: &crate::Authority,
    domain: &str,
    subject: Name,
    san: Option<SubjectAltName>,
    spki: SubjectPublicKeyInfoOwned,
    lifetime: Duration,
    now: SystemTime,
) -> Result<crate::IssuedCert, CaError> {
    let d = authority
        .domain(domain)
        .ok_or_else(|| CaError::Internal(format!("unknown CA domain {domain}")))?;
    let lifetime = match d.issuer.not_after().duration_since(now) {
        Ok(left) => lifetime.min(left),
        Err(_) => {
            return Err(CaError::Internal(
                "the issuing CA certificate has expired".into(),
            ));
        }
    };
    let mut profile = tls_profile(&d.issuer, subject, san, &spki);
    if let CertKind::EndEntity { eku, .. } = &mut profile.kind {
        eku.push(crate::ID_KP_CMC_RA);
    }
    issue_recorded(
        authority,
        d,
        profile,
        spki,
        lifetime,
        now,
        "estuary:ra-certificate",
    )
    .await
}

/// Signs `profile` for `spki` with domain `d`'s issuer and records the certificate.
async fn issue_recorded(
    authority: &crate::Authority,
    d: &crate::CaDomain,
    profile: TbsProfile,
    spki: SubjectPublicKeyInfoOwned,
    lifetime: Duration,
    now: SystemTime,
    requester: &str,
) -> Result<crate::IssuedCert, CaError> {
    let issuer = &d.issuer;
    let spki_der = spki.to_der()?;
    let ski = hex::encode(crate::key_identifier(spki.owned_to_ref())?);
    let validity = validity(now, lifetime)?;
    let (serial, serial_hex) = new_serial(now)?;
    let cert = issuer.sign(profile, serial, validity, spki)?;
    let der = cert.to_der()?;
    let record = crate::CertRecord {
        serial: serial_hex,
        ca: d.name.clone(),
        subject: cert.tbs_certificate().subject().to_string(),
        issuer: issuer.subject().to_string(),
        ski,
        spki_sha256: hex::encode(openssl::sha::sha256(&spki_der)),
        requester: requester.into(),
        label: String::new(),
        not_before: crate::clock::unix_secs(
            cert.tbs_certificate()
                .validity()
                .not_before
                .to_system_time(),
        ),
        not_after: crate::clock::unix_secs(
            cert.tbs_certificate().validity().not_after.to_system_time(),
        ),
        issued_at: crate::clock::unix_secs(now),
        status: crate::CertStatus::Valid,
        revocation: None,
        der: der.clone(),
    };
    // Recorded with its audit record in one commit, as every issuance (issue 11).
    let event = crate::AuditEvent::new(
        record.issued_at,
        requester,
        "local",
        crate::audit_action::CERT_ISSUE,
    )
    .target(record.serial.clone())
    .details(format!(
        "{requester}; ca={}; subject={}",
        record.ca, record.subject
    ));
    authority
        .store()
        .insert_certificate_audited(&record, None, &event)
        .await?;
    Ok(crate::IssuedCert { cert, der, record })
}
