//! A public key ready to verify signatures. EC P-256/P-384 keys go through OpenSSL's low-level
//! EC API: decoding the point checks that it lies on the curve (both curves have cofactor 1,
//! so that is the whole public-key validation), and no per-call OpenSSL 3 decoder or algorithm
//! fetch is involved, which cost a CMC request a third of its CPU. Other keys use EVP.
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::{CmsError, Result};
use crate::oids;

/// A verification key.
#[derive(Debug, Clone)]
pub struct VerifyKey(Kind);

#[derive(Debug, Clone)]
enum Kind {
    Ec(EcKey<Public>),
    Other(PKey<Public>),
}

struct Curves {
    p256: EcGroup,
    p384: EcGroup,
}

fn curves() -> Result<&'static Curves> {
    static CURVES: std::sync::OnceLock<Option<Curves>> = std::sync::OnceLock::new();
    CURVES
        .get_or_init(|| {
            use openssl::nid::Nid;
            Some(Curves {
                p256: EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok()?,
                p384: EcGroup::from_curve_name(Nid::SECP384R1).ok()?,
            })
        })
        .as_ref()
        .ok_or_else(|| CmsError::unsupported("elliptic curves unavailable"))
}

impl VerifyKey {
    /// From a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)?;
        if spki.algorithm.oid == oids::ID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            let c = curves()?;
            let group = match curve {
                Some(oids::SECP256R1) => &c.p256,
                Some(oids::SECP384R1) => &c.p384,
                // Other curves: OpenSSL decides.
                _ => return Ok(Self(Kind::Other(PKey::public_key_from_der(der)?))),
            };
            let bytes = spki
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| CmsError::malformed("EC public key is not whole octets"))?;
            let mut ctx = openssl::bn::BigNumContext::new()?;
            let point = EcPoint::from_bytes(group, bytes, &mut ctx)
                .map_err(|_| CmsError::malformed("EC public key is not a curve point"))?;
            if point.is_infinity(group) {
                return Err(CmsError::malformed(
                    "EC public key is the point at infinity",
                ));
            }
            return Ok(Self(Kind::Ec(EcKey::from_public_key(group, &point)?)));
        }
        Ok(Self(Kind::Other(PKey::public_key_from_der(der)?)))
    }

    /// The key as an OpenSSL `PKey` (EC keys wrapped from the low-level key, no decoder).
    pub fn to_pkey(&self) -> Result<PKey<Public>> {
        match &self.0 {
            Kind::Ec(k) => Ok(PKey::from_ec_key(k.clone())?),
            Kind::Other(k) => Ok(k.clone()),
        }
    }

    /// From a certificate's SubjectPublicKeyInfo.
    pub fn from_certificate(cert: &x509_cert::Certificate) -> Result<Self> {
        Self::from_spki_der(&cert.tbs_certificate().subject_public_key_info().to_der()?)
    }

    /// Wraps an OpenSSL key.
    pub fn from_pkey(key: PKey<Public>) -> Self {
        Self(Kind::Other(key))
    }

    /// Verifies `signature` over `message` under `sig_alg`; `digest` is the hash a bare key
    /// algorithm OID (rsaEncryption, id-ecPublicKey as signatureAlgorithm) implies.
    pub(crate) fn verify(
        &self,
        sig_alg: &AlgorithmIdentifierOwned,
        digest: MessageDigest,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        match &self.0 {
            Kind::Other(k) => {
                crate::signed::verify_signature(k, sig_alg, digest, message, signature)
            }
            Kind::Ec(k) => {
                let md = match sig_alg.oid {
                    oids::ECDSA_WITH_SHA256 => MessageDigest::sha256(),
                    oids::ECDSA_WITH_SHA384 => MessageDigest::sha384(),
                    oids::ECDSA_WITH_SHA512 => MessageDigest::sha512(),
                    oids::ECDSA_WITH_SHA1 => MessageDigest::sha1(),
                    oids::ID_EC_PUBLIC_KEY => digest,
                    _ => {
                        return Err(CmsError::malformed(
                            "signature algorithm does not match the signer's key",
                        ));
                    }
                };
                let h = openssl::hash::hash(md, message)?;
                let sig = openssl::ecdsa::EcdsaSig::from_der(signature)
                    .map_err(|_| CmsError::BadSignature)?;
                if sig.verify(&h, k).unwrap_or(false) {
                    Ok(())
                } else {
                    Err(CmsError::BadSignature)
                }
            }
        }
    }
}

/// [`crate::verify_x509_signature`] with a [`VerifyKey`].
pub fn verify_x509_signature_with(
    key: &VerifyKey,
    sig_alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    key.verify(sig_alg, MessageDigest::sha256(), message, signature)
}
