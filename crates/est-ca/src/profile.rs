//! Certificate profiles: what an issued certificate looks like, selected per CA domain.
use std::time::Duration;

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::Encode;
use der::asn1::{Ia5String, OctetString};
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage as EkuExt, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::CaError;
use crate::csr::PublicKeyKind;

/// Key usage bits a profile may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsageBit {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

/// Extended key usages a profile may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    /// id-kp-cmcRA: marks an EST/CMC registration authority (EST-48).
    CmcRa,
}

impl ExtendedKeyUsage {
    pub fn oid(self) -> ObjectIdentifier {
        use const_oid::db::rfc5280 as r;
        match self {
            Self::ServerAuth => r::ID_KP_SERVER_AUTH,
            Self::ClientAuth => r::ID_KP_CLIENT_AUTH,
            Self::CodeSigning => r::ID_KP_CODE_SIGNING,
            Self::EmailProtection => r::ID_KP_EMAIL_PROTECTION,
            Self::CmcRa => ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28"),
        }
    }
}

/// Which public keys a profile certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    pub rsa_min_bits: Option<u32>,
    pub p256: bool,
    pub p384: bool,
    pub ed25519: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rsa_min_bits: Some(2048),
            p256: true,
            p384: true,
            ed25519: true,
        }
    }
}

impl KeyPolicy {
    pub fn check(&self, k: PublicKeyKind) -> Result<(), CaError> {
        let ok = match k {
            PublicKeyKind::Rsa { bits } => {
                self.rsa_min_bits.is_some_and(|m| bits >= m && bits <= 8192)
            }
            PublicKeyKind::P256 => self.p256,
            PublicKeyKind::P384 => self.p384,
            PublicKeyKind::Ed25519 => self.ed25519,
        };
        if ok {
            Ok(())
        } else {
            Err(CaError::KeyNotAllowed(format!(
                "{k} keys are not allowed by this CA's profile"
            )))
        }
    }
}

/// An end-entity certificate profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub validity: Duration,
    /// Backdating of notBefore, for clients with slow clocks.
    pub backdate: Duration,
    pub key_usage: Vec<KeyUsageBit>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    pub keys: KeyPolicy,
    /// Whether the CSR's SubjectAltName is copied into the certificate.
    pub copy_san: bool,
    /// Whether a wildcard dNSName (`*.example.com`, the whole leftmost label only) or
    /// commonName may be issued; off: such a request is refused (400).
    pub allow_wildcard: bool,
    /// Whether a renewal may certify the same public key again (EST-86).
    pub allow_key_reuse: bool,
    /// Admit SHA-1 CSR signatures (SEC-22).
    pub allow_sha1_csr: bool,
    /// How long a CRL of this domain is valid: nextUpdate = thisUpdate + this (RFC 5280
    /// §5.1.2.5). A new CRL is made when half of it has passed, or sooner on a revocation.
    pub crl_validity: Duration,
    /// URL of this domain's CRL, put in every end-entity certificate's CRL Distribution Points
    /// extension (RFC 5280 §4.2.1.13); `None`: no such extension. An `http:` or `https:` URL,
    /// ASCII only (it is an IA5String).
    pub crl_distribution_point: Option<String>,
    /// URL of the OCSP responder for this domain's certificates, put in every end-entity
    /// certificate's Authority Information Access extension as id-ad-ocsp (RFC 5280 §4.2.2.1,
    /// RFC 6960 §3.1); `None`: no such extension. ASCII only (an IA5String).
    pub ocsp_url: Option<String>,
    /// How long an OCSP answer about this domain's certificates is valid: nextUpdate =
    /// thisUpdate + this (RFC 6960 §4.2.2.1), also the HTTP max-age of a GET answer.
    pub ocsp_validity: Duration,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            validity: Duration::from_secs(365 * 86400),
            backdate: Duration::from_secs(300),
            key_usage: vec![
                KeyUsageBit::DigitalSignature,
                KeyUsageBit::KeyEncipherment,
                KeyUsageBit::KeyAgreement,
            ],
            extended_key_usage: vec![ExtendedKeyUsage::ClientAuth],
            keys: KeyPolicy::default(),
            copy_san: true,
            allow_wildcard: false,
            allow_key_reuse: true,
            allow_sha1_csr: false,
            crl_validity: Duration::from_secs(7 * 86400),
            crl_distribution_point: None,
            ocsp_url: None,
            ocsp_validity: Duration::from_secs(3600),
        }
    }
}

impl Profile {
    /// The RFC 5280 name checks with this profile's switches: every name a certificate of
    /// this profile would carry (SEC-11).
    pub(crate) fn check_names(
        &self,
        subject: &Name,
        san: Option<&SubjectAltName>,
    ) -> Result<(), CaError> {
        crate::name_syntax::check_names(
            subject,
            san,
            crate::name_syntax::NameRules {
                allow_wildcard: self.allow_wildcard,
                san_copied: self.copy_san,
            },
        )
    }

    /// Key usage bits adapted to the key: keyEncipherment only for RSA, keyAgreement only for
    /// EC keys (RFC 5480 §3, RFC 8410 §5), so one profile serves every key type correctly.
    pub(crate) fn key_usages_for(&self, k: PublicKeyKind) -> KeyUsage {
        let mut flags = flagset::FlagSet::<KeyUsages>::default();
        for bit in &self.key_usage {
            let f = match bit {
                KeyUsageBit::DigitalSignature => Some(KeyUsages::DigitalSignature),
                KeyUsageBit::NonRepudiation => Some(KeyUsages::NonRepudiation),
                KeyUsageBit::KeyEncipherment if k.is_rsa() => Some(KeyUsages::KeyEncipherment),
                KeyUsageBit::DataEncipherment if k.is_rsa() => Some(KeyUsages::DataEncipherment),
                KeyUsageBit::KeyAgreement if k.is_ec() => Some(KeyUsages::KeyAgreement),
                _ => None,
            };
            if let Some(f) = f {
                flags |= f;
            }
        }
        KeyUsage(flags)
    }
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents.
pub fn key_identifier(spki: SubjectPublicKeyInfoRef<'_>) -> Result<Vec<u8>, CaError> {
    let bits = spki.subject_public_key.raw_bytes();
    Ok(openssl::hash::hash(openssl::hash::MessageDigest::sha1(), bits)?.to_vec())
}

pub(crate) fn extension<T: Encode + AssociatedOid>(
    critical: bool,
    v: &T,
) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(v.to_der()?)?,
    })
}

/// RFC 5280 §4.2.1.13: one DistributionPoint whose fullName is the URI of the CRL, without
/// reasons or cRLIssuer (the CRL covers every reason and is signed by the certificate's issuer).
/// Non-critical, as the section recommends.
fn crl_distribution_points(url: &str) -> Result<CrlDistributionPoints, CaError> {
    let uri = Ia5String::new(url)
        .map_err(|e| CaError::Internal(format!("CRL distribution point URL {url:?}: {e}")))?;
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(uri),
        ])),
        reasons: None,
        crl_issuer: None,
    }]))
}

/// RFC 5280 §4.2.2.1: one AccessDescription, id-ad-ocsp with the responder's URI.
/// Non-critical, as the section requires.
fn authority_info_access(url: &str) -> Result<AuthorityInfoAccessSyntax, CaError> {
    let uri = Ia5String::new(url)
        .map_err(|e| CaError::Internal(format!("OCSP responder URL {url:?}: {e}")))?;
    Ok(AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: est_asn1::ocsp::oids::AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(uri),
    }]))
}

/// What kind of certificate a [`TbsProfile`] builds.
#[derive(Debug, Clone)]
pub(crate) enum CertKind {
    /// A CA certificate; `None` path length means unconstrained.
    Ca { path_len: Option<u8> },
    /// An end-entity certificate with these key usages, EKUs, SAN, CRL distribution point
    /// URL and OCSP responder URL.
    EndEntity {
        key_usage: KeyUsage,
        eku: Vec<ObjectIdentifier>,
        san: Option<SubjectAltName>,
        crl_url: Option<String>,
        ocsp_url: Option<String>,
    },
    /// A delegated OCSP responder (RFC 6960 §4.2.2.2): digitalSignature, id-kp-OCSPSigning
    /// only, and id-pkix-ocsp-nocheck (§4.2.2.2.1) so that clients do not ask the responder
    /// about its own certificate; no CRL distribution point or AIA.
    OcspResponder,
}

/// The x509-cert [`BuilderProfile`] used for every certificate we sign.
#[derive(Debug, Clone)]
pub(crate) struct TbsProfile {
    pub issuer: Option<Name>,
    pub subject: Name,
    pub kind: CertKind,
}

impl BuilderProfile for TbsProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        self.extensions(spk, issuer_spk).map_err(|e| {
            x509_cert::builder::Error::Signature(signature::Error::from_source(e.to_string()))
        })
    }
}

impl TbsProfile {
    fn extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
    ) -> Result<Vec<Extension>, CaError> {
        let mut v = Vec::new();
        let ski = key_identifier(spk)?;
        let aki = key_identifier(issuer_spk)?;
        match &self.kind {
            CertKind::Ca { path_len } => {
                v.push(extension(
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: *path_len,
                    },
                )?);
                v.push(extension(
                    true,
                    &KeyUsage(
                        KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature,
                    ),
                )?);
            }
            CertKind::EndEntity {
                key_usage,
                eku,
                san,
                crl_url,
                ocsp_url,
            } => {
                v.push(extension(
                    true,
                    &BasicConstraints {
                        ca: false,
                        path_len_constraint: None,
                    },
                )?);
                if !key_usage.0.is_empty() {
                    v.push(extension(true, key_usage)?);
                }
                if !eku.is_empty() {
                    v.push(extension(false, &EkuExt(eku.clone()))?);
                }
                if let Some(san) = san {
                    // RFC 5280 §4.2.1.6: critical when the subject is empty.
                    v.push(extension(self.subject.is_empty(), san)?);
                }
                if let Some(url) = crl_url {
                    v.push(extension(false, &crl_distribution_points(url)?)?);
                }
                if let Some(url) = ocsp_url {
                    v.push(extension(false, &authority_info_access(url)?)?);
                }
            }
            CertKind::OcspResponder => {
                v.push(extension(
                    true,
                    &BasicConstraints {
                        ca: false,
                        path_len_constraint: None,
                    },
                )?);
                v.push(extension(
                    true,
                    &KeyUsage(KeyUsages::DigitalSignature.into()),
                )?);
                v.push(extension(
                    false,
                    &EkuExt(vec![est_asn1::ocsp::oids::KP_OCSP_SIGNING]),
                )?);
                // id-pkix-ocsp-nocheck: extnValue is a DER NULL (RFC 6960 §4.2.2.2.1).
                v.push(Extension {
                    extn_id: est_asn1::ocsp::oids::NOCHECK,
                    critical: false,
                    extn_value: OctetString::new(der::asn1::Null.to_der()?)?,
                });
            }
        }
        v.push(extension(
            false,
            &SubjectKeyIdentifier(OctetString::new(ski)?),
        )?);
        if self.issuer.is_some() {
            v.push(extension(
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(aki)?),
                    ..Default::default()
                },
            )?);
        }
        Ok(v)
    }
}
