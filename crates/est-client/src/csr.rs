//! Keys and PKCS#10 requests made on the client.
use std::str::FromStr;

use der::asn1::{BitString, Ia5String, OctetString, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{SubjectAltName, SubjectKeyIdentifier};
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::ClientError;

/// Key types the client generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

impl FromStr for KeyKind {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self, ClientError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "p256" => Self::P256,
            "p384" => Self::P384,
            "rsa2048" => Self::Rsa2048,
            "rsa3072" => Self::Rsa3072,
            "rsa4096" => Self::Rsa4096,
            "ed25519" => Self::Ed25519,
            _ => {
                return Err(ClientError::Config(format!(
                    "unknown key type {s:?} (p256, p384, rsa2048, rsa3072, rsa4096, ed25519)"
                )));
            }
        })
    }
}

pub fn generate_key(kind: KeyKind) -> Result<PKey<Private>, ClientError> {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    let ec = |nid: Nid| -> Result<PKey<Private>, ClientError> {
        let group = EcGroup::from_curve_name(nid)?;
        Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
    };
    Ok(match kind {
        KeyKind::P256 => ec(Nid::X9_62_PRIME256V1)?,
        KeyKind::P384 => ec(Nid::SECP384R1)?,
        KeyKind::Rsa2048 => PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?,
        KeyKind::Rsa3072 => PKey::from_rsa(openssl::rsa::Rsa::generate(3072)?)?,
        KeyKind::Rsa4096 => PKey::from_rsa(openssl::rsa::Rsa::generate(4096)?)?,
        KeyKind::Ed25519 => PKey::generate_ed25519()?,
    })
}

/// A SubjectAltName entry: `dns:`, `ip:`, `email:` or `uri:` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Ip(std::net::IpAddr),
    Email(String),
    Uri(String),
}

impl FromStr for San {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self, ClientError> {
        let (kind, v) = s.split_once(':').ok_or_else(|| {
            ClientError::Config(format!("SAN {s:?}: use dns:, ip:, email: or uri:"))
        })?;
        Ok(match kind.to_ascii_lowercase().as_str() {
            "dns" => Self::Dns(v.into()),
            "ip" => Self::Ip(
                v.parse()
                    .map_err(|_| ClientError::Config(format!("bad IP address {v:?}")))?,
            ),
            "email" => Self::Email(v.into()),
            "uri" => Self::Uri(v.into()),
            _ => {
                return Err(ClientError::Config(format!(
                    "SAN {s:?}: use dns:, ip:, email: or uri:"
                )));
            }
        })
    }
}

/// The form [`San::from_str`] reads: `dns:NAME`, `ip:ADDR`, `email:ADDR`, `uri:URI`.
impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(d) => write!(f, "dns:{d}"),
            San::Ip(a) => write!(f, "ip:{a}"),
            San::Email(e) => write!(f, "email:{e}"),
            San::Uri(u) => write!(f, "uri:{u}"),
        }
    }
}

impl San {
    fn general_name(&self) -> Result<GeneralName, der::Error> {
        Ok(match self {
            San::Dns(d) => GeneralName::DnsName(Ia5String::new(d)?),
            San::Email(e) => GeneralName::Rfc822Name(Ia5String::new(e)?),
            San::Uri(u) => GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
            San::Ip(std::net::IpAddr::V4(a)) => {
                GeneralName::IpAddress(OctetString::new(a.octets().to_vec())?)
            }
            San::Ip(std::net::IpAddr::V6(a)) => {
                GeneralName::IpAddress(OctetString::new(a.octets().to_vec())?)
            }
        })
    }

    /// From a certificate's SAN entry (for re-enrollment, which must repeat it, EST-82).
    pub fn from_general_name(gn: &GeneralName) -> Option<San> {
        Some(match gn {
            GeneralName::DnsName(s) => San::Dns(s.to_string()),
            GeneralName::Rfc822Name(s) => San::Email(s.to_string()),
            GeneralName::UniformResourceIdentifier(s) => San::Uri(s.to_string()),
            GeneralName::IpAddress(o) => {
                let b = o.as_bytes();
                if let Ok(a) = <[u8; 4]>::try_from(b) {
                    San::Ip(a.into())
                } else {
                    San::Ip(<[u8; 16]>::try_from(b).ok()?.into())
                }
            }
            _ => return None,
        })
    }
}

/// The SubjectAltName extension for `sans`; `None` when there are none.
pub fn san_extension(sans: &[San]) -> Result<Option<Extension>, ClientError> {
    if sans.is_empty() {
        return Ok(None);
    }
    let e = |x: der::Error| ClientError::Other(format!("encoding the SAN: {x}"));
    let names = sans
        .iter()
        .map(San::general_name)
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    Ok(Some(Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
        critical: false,
        extn_value: OctetString::new(SubjectAltName(names).to_der().map_err(e)?).map_err(e)?,
    }))
}

/// A key identifier for `key`: SHA-1 of the subjectPublicKey BIT STRING's bits (RFC 5280
/// §4.2.1.2, method 1).
pub fn subject_key_id(key: &PKey<Private>) -> Result<Vec<u8>, ClientError> {
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?)
        .map_err(|x| ClientError::Other(format!("public key: {x}")))?;
    Ok(openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec())
}

/// The (non-critical) SubjectKeyIdentifier extension carrying `key_id`.
pub fn subject_key_id_extension(key_id: &[u8]) -> Result<Extension, ClientError> {
    let e = |x: der::Error| ClientError::Other(format!("encoding the SubjectKeyIdentifier: {x}"));
    Ok(Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        critical: false,
        extn_value: OctetString::new(
            SubjectKeyIdentifier(OctetString::new(key_id).map_err(e)?)
                .to_der()
                .map_err(e)?,
        )
        .map_err(e)?,
    })
}

/// A PKCS#10 request for `key` with an RFC 4514 `subject`, SAN entries in an extensionRequest,
/// and, when given, a challengePassword (UTF8String) carrying the channel binding (EST-53).
/// Signed with SHA-256 (Ed25519: pure EdDSA).
pub fn build_csr(
    key: &PKey<Private>,
    subject: &str,
    sans: &[San],
    challenge_password: Option<&str>,
) -> Result<Vec<u8>, ClientError> {
    build_csr_with(key, subject, sans, challenge_password, Vec::new())
}

/// [`build_csr`] with further attributes (e.g. the /serverkeygen DecryptKeyIdentifier and
/// SMIMECapabilities, SKG-9).
pub fn build_csr_with(
    key: &PKey<Private>,
    subject: &str,
    sans: &[San],
    challenge_password: Option<&str>,
    extra_attributes: Vec<Attribute>,
) -> Result<Vec<u8>, ClientError> {
    build_csr_full(
        key,
        subject,
        sans,
        challenge_password,
        Vec::new(),
        extra_attributes,
    )
}

/// [`build_csr_with`] with further requested extensions besides the SAN (all in one
/// extensionRequest), e.g. the SubjectKeyIdentifier a CMC request signed with its own key
/// names it by (CMC-17).
pub fn build_csr_full(
    key: &PKey<Private>,
    subject: &str,
    sans: &[San],
    challenge_password: Option<&str>,
    extra_extensions: Vec<Extension>,
    extra_attributes: Vec<Attribute>,
) -> Result<Vec<u8>, ClientError> {
    let e = |x: der::Error| ClientError::Other(format!("encoding the CSR: {x}"));
    let subject = x509_cert::name::Name::from_str(subject)
        .map_err(|x| ClientError::Config(format!("subject {subject:?}: {x}")))?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?).map_err(e)?;
    let mut attrs = Vec::new();
    let mut exts: Vec<Extension> = san_extension(sans)?.into_iter().collect();
    exts.extend(extra_extensions);
    if !exts.is_empty() {
        attrs.push(Attribute {
            oid: est_asn1::oids::EXTENSION_REQUEST,
            values: SetOfVec::try_from(vec![Any::encode_from(&exts).map_err(e)?]).map_err(e)?,
        });
    }
    if let Some(cp) = challenge_password {
        let v = Utf8StringRef::new(cp).map_err(e)?;
        attrs.push(Attribute {
            oid: est_asn1::oids::CHALLENGE_PASSWORD,
            values: SetOfVec::try_from(vec![Any::encode_from(&v).map_err(e)?]).map_err(e)?,
        });
    }
    attrs.extend(extra_attributes);
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: spki,
        attributes: SetOfVec::try_from(attrs).map_err(e)?,
    };
    let tbs = info.to_der().map_err(e)?;
    let (oid, sig) = match key.id() {
        Id::ED25519 => (
            "1.3.101.112",
            Signer::new_without_digest(key)?.sign_oneshot_to_vec(&tbs)?,
        ),
        Id::RSA => (
            "1.2.840.113549.1.1.11",
            Signer::new(MessageDigest::sha256(), key)?.sign_oneshot_to_vec(&tbs)?,
        ),
        Id::EC => {
            let bits = key.bits();
            let (oid, md) = if bits > 256 {
                ("1.2.840.10045.4.3.3", MessageDigest::sha384())
            } else {
                ("1.2.840.10045.4.3.2", MessageDigest::sha256())
            };
            (oid, Signer::new(md, key)?.sign_oneshot_to_vec(&tbs)?)
        }
        _ => return Err(ClientError::Config("unsupported key type".into())),
    };
    let mut algorithm = AlgorithmIdentifierOwned {
        oid: oid.parse().map_err(|_| ClientError::Other("oid".into()))?,
        parameters: None,
    };
    if key.id() == Id::RSA {
        algorithm.parameters = Some(Any::from(der::asn1::Null));
    }
    let req = CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(&sig).map_err(e)?,
    };
    req.to_der().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_makes_a_verifiable_csr_with_challenge_password() {
        for kind in [
            KeyKind::P256,
            KeyKind::P384,
            KeyKind::Rsa2048,
            KeyKind::Ed25519,
        ] {
            let k = generate_key(kind).unwrap();
            let der = build_csr(
                &k,
                "CN=dev,O=Acme",
                &[
                    "dns:a.example".parse().unwrap(),
                    "ip:10.0.0.1".parse().unwrap(),
                ],
                Some("AAAAAAAAAAAAAAAA"),
            )
            .unwrap();
            let req = openssl::x509::X509Req::from_der(&der).unwrap();
            assert!(req.verify(&req.public_key().unwrap()).unwrap(), "{kind:?}");
            let parsed = CertReq::from_der(&der).unwrap();
            assert_eq!(
                est_proto::challenge_password(&parsed).unwrap().unwrap(),
                b"AAAAAAAAAAAAAAAA"
            );
            assert_eq!(parsed.info.subject.to_string(), "CN=dev,O=Acme");
        }
        assert!("ftp:x".parse::<San>().is_err());
        assert!("rsa1024".parse::<KeyKind>().is_err());
    }
}
