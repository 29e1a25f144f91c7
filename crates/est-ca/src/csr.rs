//! Parsing and verifying a PKCS#10 certification request: decoding yields a [`VerifiedCsr`]
//! whose signature has been checked and whose public key has been classified and validated.
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::{Decode, Encode};
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509Req;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::CaError;

/// Key algorithms the authority can certify and generate.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    Ed25519,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::P256 => "p256",
            Self::P384 => "p384",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Rsa2048,
            Self::Rsa3072,
            Self::Rsa4096,
            Self::P256,
            Self::P384,
            Self::Ed25519,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// The public key of a request, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyKind {
    Rsa { bits: u32 },
    P256,
    P384,
    Ed25519,
}

impl PublicKeyKind {
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa { .. })
    }
    pub fn is_ec(self) -> bool {
        matches!(self, Self::P256 | Self::P384)
    }
}

impl std::fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::P256 => f.write_str("EC P-256"),
            Self::P384 => f.write_str("EC P-384"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A PKCS#10 request whose self-signature verified (EST-75: it is the proof of possession) and
/// whose public key passed the syntactic and weak-key checks of SEC-11 / CMC-34.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    pub req: CertReq,
    pub spki: SubjectPublicKeyInfoOwned,
    pub spki_der: Vec<u8>,
    pub key_kind: PublicKeyKind,
    /// The SubjectAltName requested through the extensionRequest attribute, if any.
    pub san: Option<SubjectAltName>,
}

const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");

impl VerifiedCsr {
    /// Decodes and verifies `der`. `allow_sha1` admits SHA-1 signatures (SEC-22: off by default).
    pub fn verify(der: &[u8], allow_sha1: bool) -> Result<Self, CaError> {
        let req = CertReq::from_der(der)
            .map_err(|e| CaError::MalformedRequest(format!("PKCS#10: {e}")))?;
        check_signature_algorithm(req.algorithm.oid, allow_sha1)?;
        let spki = req.info.public_key.clone();
        let spki_der = spki.to_der()?;
        // The signature covers the request's own encoding of CertificationRequestInfo.
        let info = raw_request_info(der)?;
        let sig = req.signature.as_bytes().ok_or(CaError::BadCsrSignature)?;
        let key_kind = if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
            verify_ecdsa(&spki, req.algorithm.oid, info, sig)?
        } else {
            verify_generic(&spki, &spki_der, der)?
        };
        let san = requested_san(&req)?;
        Ok(Self {
            req,
            spki,
            spki_der,
            key_kind,
            san,
        })
    }

    pub fn subject(&self) -> &Name {
        &self.req.info.subject
    }

    /// Raw bytes of the challengePassword attribute value (any DirectoryString choice, EST-58),
    /// if the request carries one.
    pub fn challenge_password(&self) -> Result<Option<Vec<u8>>, CaError> {
        const CHALLENGE_PASSWORD: ObjectIdentifier =
            ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
        for attr in self.req.info.attributes.iter() {
            if attr.oid != CHALLENGE_PASSWORD {
                continue;
            }
            let value = attr.values.iter().next().ok_or_else(|| {
                CaError::MalformedRequest("empty challengePassword attribute".into())
            })?;
            return Ok(Some(value.value().to_vec()));
        }
        Ok(None)
    }
}

/// The raw TLV of CertificationRequestInfo inside a (structurally valid) request.
fn raw_request_info(der: &[u8]) -> Result<&[u8], CaError> {
    use der::Reader;
    let malformed = |e: der::Error| CaError::MalformedRequest(format!("PKCS#10: {e}"));
    let mut r = der::SliceReader::new(der).map_err(malformed)?;
    let _outer = der::Header::decode(&mut r).map_err(malformed)?;
    r.tlv_bytes().map_err(malformed)
}

struct Curves {
    p256: openssl::ec::EcGroup,
    p384: openssl::ec::EcGroup,
}

/// Curve groups are immutable; building them is costly in OpenSSL 3, so once per process.
fn curves() -> Result<&'static Curves, CaError> {
    static CURVES: std::sync::OnceLock<Option<Curves>> = std::sync::OnceLock::new();
    CURVES
        .get_or_init(|| {
            use openssl::nid::Nid;
            Some(Curves {
                p256: openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok()?,
                p384: openssl::ec::EcGroup::from_curve_name(Nid::SECP384R1).ok()?,
            })
        })
        .as_ref()
        .ok_or_else(|| CaError::Internal("elliptic curves unavailable".into()))
}

/// ECDSA through the low-level EC API: decoding the point checks that it lies on the curve
/// (P-256 and P-384 have cofactor 1, so that is the whole public-key validation of SEC-11), and
/// no per-call algorithm fetch or key decoder of OpenSSL 3 is involved.
fn verify_ecdsa(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: ObjectIdentifier,
    info: &[u8],
    sig: &[u8],
) -> Result<PublicKeyKind, CaError> {
    let (key, kind) = ec_public_key(spki)?;
    let digest: Vec<u8> = match sig_alg {
        a if a == rfc5912::ECDSA_WITH_SHA_256 => openssl::sha::sha256(info).to_vec(),
        a if a == rfc5912::ECDSA_WITH_SHA_384 => openssl::sha::sha384(info).to_vec(),
        a if a == rfc5912::ECDSA_WITH_SHA_512 => openssl::sha::sha512(info).to_vec(),
        a if a == ObjectIdentifier::new_unwrap("1.2.840.10045.4.1") => {
            openssl::sha::sha1(info).to_vec()
        }
        _ => {
            return Err(CaError::KeyNotAllowed(
                "the CSR signature algorithm does not match its EC key".into(),
            ));
        }
    };
    let sig = openssl::ecdsa::EcdsaSig::from_der(sig).map_err(|_| CaError::BadCsrSignature)?;
    match sig.verify(&digest, &key) {
        Ok(true) => Ok(kind),
        _ => Err(CaError::BadCsrSignature),
    }
}

/// Classifies and validates a public key whose possession was proven elsewhere (CMC, where the
/// CMC layer checks POP): the same checks as for a CSR's key (SEC-11, CMC-34).
pub(crate) fn classify_public_key(
    spki: &SubjectPublicKeyInfoOwned,
    spki_der: &[u8],
) -> Result<PublicKeyKind, CaError> {
    if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
        return Ok(ec_public_key(spki)?.1);
    }
    let pkey = PKey::public_key_from_der(spki_der)
        .map_err(|_| CaError::KeyNotAllowed("the public key cannot be decoded".into()))?;
    classify_key(spki, &pkey)
}

/// The EC key of an SPKI: decoding the point checks that it lies on the curve (P-256 and
/// P-384 have cofactor 1, so that is the whole public-key validation of SEC-11).
fn ec_public_key(
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<(openssl::ec::EcKey<Public>, PublicKeyKind), CaError> {
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let c = curves()?;
    let (group, kind) = match curve {
        Some(x) if x == rfc5912::SECP_256_R_1 => (&c.p256, PublicKeyKind::P256),
        Some(x) if x == rfc5912::SECP_384_R_1 => (&c.p384, PublicKeyKind::P384),
        _ => {
            return Err(CaError::KeyNotAllowed(
                "unsupported elliptic curve (P-256 and P-384 are allowed)".into(),
            ));
        }
    };
    let point_bytes = spki.subject_public_key.as_bytes().ok_or_else(|| {
        CaError::KeyNotAllowed("EC public key is not a whole number of bytes".into())
    })?;
    let mut ctx = openssl::bn::BigNumContext::new()?;
    let point = openssl::ec::EcPoint::from_bytes(group, point_bytes, &mut ctx)
        .map_err(|_| CaError::KeyNotAllowed("EC public key is not a valid curve point".into()))?;
    if point.is_infinity(group) {
        return Err(CaError::KeyNotAllowed(
            "EC public key is the point at infinity".into(),
        ));
    }
    let key = openssl::ec::EcKey::from_public_key(group, &point)?;
    Ok((key, kind))
}

/// RSA and Ed25519 through OpenSSL's generic request verification.
fn verify_generic(
    spki: &SubjectPublicKeyInfoOwned,
    spki_der: &[u8],
    der: &[u8],
) -> Result<PublicKeyKind, CaError> {
    let pkey = PKey::public_key_from_der(spki_der)
        .map_err(|_| CaError::KeyNotAllowed("the CSR public key cannot be decoded".into()))?;
    let kind = classify_key(spki, &pkey)?;
    let ossl = X509Req::from_der(der)
        .map_err(|_| CaError::MalformedRequest("PKCS#10 rejected by parser".into()))?;
    match ossl.verify(&pkey) {
        Ok(true) => Ok(kind),
        _ => Err(CaError::BadCsrSignature),
    }
}

fn check_signature_algorithm(oid: ObjectIdentifier, allow_sha1: bool) -> Result<(), CaError> {
    let ok = [
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        rfc5912::ECDSA_WITH_SHA_256,
        rfc5912::ECDSA_WITH_SHA_384,
        rfc5912::ECDSA_WITH_SHA_512,
        rfc8410::ID_ED_25519,
    ];
    if ok.contains(&oid) {
        return Ok(());
    }
    let sha1 = [
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.1"),
    ];
    if sha1.contains(&oid) {
        if allow_sha1 {
            return Ok(());
        }
        return Err(CaError::KeyNotAllowed(
            "CSR signed with SHA-1; use SHA-256 or stronger".into(),
        ));
    }
    Err(CaError::KeyNotAllowed(format!(
        "unsupported CSR signature algorithm {oid}"
    )))
}

fn classify_key(
    spki: &SubjectPublicKeyInfoOwned,
    pkey: &PKey<Public>,
) -> Result<PublicKeyKind, CaError> {
    match pkey.id() {
        Id::RSA => {
            let rsa = pkey.rsa()?;
            let e = rsa.e().to_vec();
            // SEC-11: an even or tiny public exponent is a broken key.
            let odd = e.last().is_some_and(|b| b & 1 == 1);
            if !odd || rsa.e().num_bits() < 2 || rsa.e().num_bits() > 256 {
                return Err(CaError::KeyNotAllowed(
                    "RSA public exponent is invalid".into(),
                ));
            }
            if rsa.n().num_bits() > 16384 {
                return Err(CaError::KeyNotAllowed("RSA modulus too large".into()));
            }
            Ok(PublicKeyKind::Rsa {
                bits: u32::try_from(rsa.n().num_bits()).unwrap_or(0),
            })
        }
        Id::ED25519 => Ok(PublicKeyKind::Ed25519),
        _ => Err(CaError::KeyNotAllowed(format!(
            "unsupported public key algorithm {}",
            spki.algorithm.oid
        ))),
    }
}

/// The SubjectAltName a PKCS#10 request asks for. One extensionRequest attribute with one
/// value, and each extension in it once (RFC 5280 §4.2: a certificate never has two instances
/// of an extension, so a request for two is refused rather than resolved by guessing).
pub(crate) fn requested_san(req: &CertReq) -> Result<Option<SubjectAltName>, CaError> {
    let mut requests = req
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == EXTENSION_REQUEST);
    let Some(attr) = requests.next() else {
        return Ok(None);
    };
    if requests.next().is_some() {
        return Err(CaError::MalformedRequest(
            "the request has more than one extensionRequest attribute".into(),
        ));
    }
    let mut values = attr.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(CaError::MalformedRequest(
            "the extensionRequest attribute must have exactly one value".into(),
        ));
    };
    let exts: x509_cert::ext::Extensions = value
        .decode_as()
        .map_err(|e| CaError::MalformedRequest(format!("extensionRequest: {e}")))?;
    check_unique_extensions(&exts)?;
    exts.iter()
        .find(|e| e.extn_id == <SubjectAltName as const_oid::AssociatedOid>::OID)
        .map(|ext| {
            SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|e| CaError::MalformedRequest(format!("SubjectAltName: {e}")))
        })
        .transpose()
}

/// RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular
/// extension." Linear in the number of extensions (a set), so 2,000 of them cost nothing.
pub(crate) fn check_unique_extensions(exts: &[x509_cert::ext::Extension]) -> Result<(), CaError> {
    let mut seen = std::collections::HashSet::with_capacity(exts.len());
    for e in exts {
        if !seen.insert(e.extn_id) {
            return Err(CaError::MalformedRequest(format!(
                "extension {} is requested more than once (RFC 5280 §4.2)",
                e.extn_id
            )));
        }
    }
    Ok(())
}

/// The SAN entries as a sorted list of DER encodings, for set comparison (EST-82).
pub(crate) fn san_set(san: Option<&SubjectAltName>) -> Result<Vec<Vec<u8>>, CaError> {
    let mut v = Vec::new();
    if let Some(san) = san {
        for gn in san.0.iter() {
            v.push(gn.to_der()?);
        }
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// A printable form of a GeneralName for policy matching and messages.
pub(crate) fn general_name_string(gn: &GeneralName) -> Option<String> {
    match gn {
        GeneralName::DnsName(s) => Some(s.to_string()),
        GeneralName::Rfc822Name(s) => Some(s.to_string()),
        GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            if let Ok(a) = <[u8; 4]>::try_from(b) {
                Some(std::net::Ipv4Addr::from(a).to_string())
            } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                Some(std::net::Ipv6Addr::from(a).to_string())
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use der::asn1::{Ia5String, OctetString, SetOfVec};
    use x509_cert::attr::Attribute;
    use x509_cert::ext::Extension;
    use x509_cert::request::{CertReqInfo, Version};

    use super::*;

    fn san_ext(name: &str) -> Extension {
        let san = SubjectAltName(vec![GeneralName::DnsName(Ia5String::new(name).unwrap())]);
        Extension {
            extn_id: <SubjectAltName as const_oid::AssociatedOid>::OID,
            critical: false,
            extn_value: OctetString::new(san.to_der().unwrap()).unwrap(),
        }
    }

    fn ext_request(values: Vec<Vec<Extension>>) -> Attribute {
        Attribute {
            oid: EXTENSION_REQUEST,
            values: SetOfVec::try_from(
                values
                    .iter()
                    .map(|v| der::Any::encode_from(v).unwrap())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        }
    }

    /// A request with these attributes; requested_san reads attributes only, so the
    /// signature is a placeholder.
    fn request(attrs: Vec<Attribute>) -> CertReq {
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(
            &PKey::from_ec_key(key).unwrap().public_key_to_der().unwrap(),
        )
        .unwrap();
        CertReq {
            info: CertReqInfo {
                version: Version::V1,
                subject: Name::default(),
                public_key: spki,
                attributes: SetOfVec::try_from(attrs).unwrap(),
            },
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: der::asn1::BitString::from_bytes(&[0]).unwrap(),
        }
    }

    fn refused(attrs: Vec<Attribute>) -> String {
        match requested_san(&request(attrs)) {
            Err(CaError::MalformedRequest(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_extension_request_with_each_extension_once() {
        let one = requested_san(&request(vec![ext_request(vec![vec![san_ext(
            "a.example",
        )]])]));
        assert_eq!(one.unwrap().unwrap().0.len(), 1);
        assert!(requested_san(&request(vec![])).unwrap().is_none());
        // 2,000 SAN extensions: refused at the first repeat, in linear time.
        let many: Vec<Extension> = (0..2000)
            .map(|i| san_ext(&format!("h{i}.example")))
            .collect();
        assert!(refused(vec![ext_request(vec![many])]).contains("more than once"));
        // Two extensionRequest attributes, or one with two values.
        let two = vec![
            ext_request(vec![vec![san_ext("a.example")]]),
            ext_request(vec![vec![san_ext("b.example")]]),
        ];
        assert!(refused(two).contains("more than one extensionRequest"));
        let two_values = ext_request(vec![vec![san_ext("a.example")], vec![san_ext("b.example")]]);
        assert!(refused(vec![two_values]).contains("exactly one value"));
    }
}
