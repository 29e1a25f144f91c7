//! Algorithm identifiers and the symmetric primitives shared by every content type.
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::symm::Cipher;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::error::{CmsError, Result};
use crate::oids;

/// A digest algorithm usable for SignedData and the kari KDF (RFC 5754).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// The hash OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha256 => oids::ID_SHA256,
            Self::Sha384 => oids::ID_SHA384,
            Self::Sha512 => oids::ID_SHA512,
        }
    }
    /// The AlgorithmIdentifier with absent parameters (RFC 5754 §2: SHOULD omit).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        alg(self.oid())
    }
    /// The matching OpenSSL digest.
    pub fn message_digest(self) -> MessageDigest {
        match self {
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }
    /// Look up by OID (parameters, absent or NULL, are not checked).
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            oids::ID_SHA256 => Some(Self::Sha256),
            oids::ID_SHA384 => Some(Self::Sha384),
            oids::ID_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }
    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Result<Vec<u8>> {
        Ok(openssl::hash::hash(self.message_digest(), data)?.to_vec())
    }
}

/// Content-encryption algorithm: AES-CBC with PKCS#7 padding (RFC 3565 §2.1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncryption {
    /// id-aes128-CBC.
    Aes128Cbc,
    /// id-aes192-CBC.
    Aes192Cbc,
    /// id-aes256-CBC.
    Aes256Cbc,
}

impl ContentEncryption {
    /// The algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128Cbc => oids::AES128_CBC,
            Self::Aes192Cbc => oids::AES192_CBC,
            Self::Aes256Cbc => oids::AES256_CBC,
        }
    }
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc => 16,
            Self::Aes192Cbc => 24,
            Self::Aes256Cbc => 32,
        }
    }
    /// Look up by OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            oids::AES128_CBC => Some(Self::Aes128Cbc),
            oids::AES192_CBC => Some(Self::Aes192Cbc),
            oids::AES256_CBC => Some(Self::Aes256Cbc),
            _ => None,
        }
    }
    pub(crate) fn cipher(self) -> Cipher {
        match self {
            Self::Aes128Cbc => Cipher::aes_128_cbc(),
            Self::Aes192Cbc => Cipher::aes_192_cbc(),
            Self::Aes256Cbc => Cipher::aes_256_cbc(),
        }
    }
    /// A fresh random key.
    pub(crate) fn generate_key(self) -> Result<Zeroizing<Vec<u8>>> {
        random(self.key_len())
    }
    /// Encrypt with a random IV; returns (AlgorithmIdentifier with the IV, ciphertext).
    pub(crate) fn encrypt(
        self,
        key: &[u8],
        data: &[u8],
    ) -> Result<(AlgorithmIdentifierOwned, Vec<u8>)> {
        let iv = random(16)?;
        let ct = openssl::symm::encrypt(self.cipher(), key, Some(&iv), data)?;
        let params = Any::encode_from(&OctetString::new(iv.as_slice())?)?;
        Ok((alg_with(self.oid(), params), ct))
    }
}

/// Decrypt content given its AlgorithmIdentifier (IV in the parameters). Every failure is the
/// same opaque [`CmsError::DecryptionFailed`].
pub(crate) fn content_decrypt(
    algorithm: &AlgorithmIdentifierOwned,
    key: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let cea = ContentEncryption::from_oid(&algorithm.oid)
        .ok_or_else(|| CmsError::unsupported(format!("content encryption {}", algorithm.oid)))?;
    let iv = iv_param(algorithm)?;
    if key.len() != cea.key_len() {
        return Err(CmsError::DecryptionFailed);
    }
    openssl::symm::decrypt(cea.cipher(), key, Some(&iv), data)
        .map(Zeroizing::new)
        .map_err(|_| CmsError::DecryptionFailed)
}

/// The 16-byte IV of an AES-CBC AlgorithmIdentifier (RFC 3565 §4.1: AES-IV ::= OCTET STRING).
pub(crate) fn iv_param(algorithm: &AlgorithmIdentifierOwned) -> Result<Vec<u8>> {
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| CmsError::malformed("AES-CBC parameters (IV) missing"))?;
    let iv: OctetString = params.decode_as()?;
    if iv.as_bytes().len() != 16 {
        return Err(CmsError::malformed("AES-CBC IV is not 16 bytes"));
    }
    Ok(iv.as_bytes().to_vec())
}

/// AES key wrap (RFC 3394, RFC 3565 §2.3.2): the KEK size decides the algorithm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWrap {
    /// id-aes128-wrap.
    Aes128,
    /// id-aes192-wrap.
    Aes192,
    /// id-aes256-wrap.
    Aes256,
}

impl KeyWrap {
    /// The algorithm OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128 => oids::AES128_WRAP,
            Self::Aes192 => oids::AES192_WRAP,
            Self::Aes256 => oids::AES256_WRAP,
        }
    }
    /// KEK length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }
    /// Look up by OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            oids::AES128_WRAP => Some(Self::Aes128),
            oids::AES192_WRAP => Some(Self::Aes192),
            oids::AES256_WRAP => Some(Self::Aes256),
            _ => None,
        }
    }
    /// The wrap algorithm for a KEK of this many bytes.
    pub fn for_kek_len(len: usize) -> Result<Self> {
        match len {
            16 => Ok(Self::Aes128),
            24 => Ok(Self::Aes192),
            32 => Ok(Self::Aes256),
            n => Err(CmsError::invalid(format!(
                "AES KEK must be 16, 24 or 32 bytes, not {n}"
            ))),
        }
    }
    /// AlgorithmIdentifier with absent parameters (RFC 3565 §4.3).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        alg(self.oid())
    }
    /// Wrap `key` (a multiple of 8 bytes, at least 16) under `kek`.
    pub(crate) fn wrap(self, kek: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        if kek.len() != self.key_len() || key.len() < 16 || !key.len().is_multiple_of(8) {
            return Err(CmsError::invalid("bad key or KEK length for AES key wrap"));
        }
        let aes =
            openssl::aes::AesKey::new_encrypt(kek).map_err(|_| CmsError::invalid("bad AES KEK"))?;
        let mut out = vec![0u8; key.len() + 8];
        let n = openssl::aes::wrap_key(&aes, None, &mut out, key)
            .map_err(|_| CmsError::invalid("AES key wrap failed"))?;
        out.truncate(n);
        Ok(out)
    }
    /// Unwrap; any failure (wrong KEK, tampering) is [`CmsError::DecryptionFailed`].
    pub(crate) fn unwrap(self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if kek.len() != self.key_len() || wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
            return Err(CmsError::DecryptionFailed);
        }
        let aes = openssl::aes::AesKey::new_decrypt(kek).map_err(|_| CmsError::DecryptionFailed)?;
        let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
        let n = openssl::aes::unwrap_key(&aes, None, &mut out, wrapped)
            .map_err(|_| CmsError::DecryptionFailed)?;
        out.truncate(n);
        Ok(out)
    }
}

/// `n` random bytes from OpenSSL's CSPRNG.
pub(crate) fn random(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    openssl::rand::rand_bytes(&mut buf)?;
    Ok(buf)
}

/// AlgorithmIdentifier with absent parameters.
pub(crate) fn alg(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// AlgorithmIdentifier with the given parameters.
pub(crate) fn alg_with(oid: ObjectIdentifier, params: Any) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: Some(params),
    }
}

/// AlgorithmIdentifier with NULL parameters.
pub(crate) fn alg_null(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    alg_with(oid, Any::null())
}

/// Hash algorithm in RSA parameter blocks and in PBKDF2/kari: SHA-1 is accepted there only.
pub(crate) fn md_for_hash_oid(oid: &ObjectIdentifier) -> Result<MessageDigest> {
    match *oid {
        oids::ID_SHA1 => Ok(MessageDigest::sha1()),
        other => DigestAlgorithm::from_oid(&other)
            .map(DigestAlgorithm::message_digest)
            .ok_or_else(|| CmsError::unsupported(format!("hash {other}"))),
    }
}

/// ```text
/// RSAES-OAEP-params ::= SEQUENCE {
///   hashAlgorithm      [0] HashAlgorithm     DEFAULT sha1,
///   maskGenAlgorithm   [1] MaskGenAlgorithm  DEFAULT mgf1SHA1,
///   pSourceAlgorithm   [2] PSourceAlgorithm  DEFAULT pSpecifiedEmpty }
/// ```
/// RFC 4055 §4.1 (RFC 8017 App. A.2.1). Defaults are represented as `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Sequence)]
pub struct RsaesOaepParams {
    /// hashAlgorithm.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// maskGenAlgorithm (id-mgf1 with a hash AlgorithmIdentifier as parameter).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    /// pSourceAlgorithm (id-pSpecified with an OCTET STRING label).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub p_source_algorithm: Option<AlgorithmIdentifierOwned>,
}

/// ```text
/// RSASSA-PSS-params ::= SEQUENCE {
///   hashAlgorithm      [0] HashAlgorithm     DEFAULT sha1,
///   maskGenAlgorithm   [1] MaskGenAlgorithm  DEFAULT mgf1SHA1,
///   saltLength         [2] INTEGER           DEFAULT 20,
///   trailerField       [3] INTEGER           DEFAULT 1 }
/// ```
/// RFC 4055 §3.1. Defaults are represented as `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Sequence)]
pub struct RsassaPssParams {
    /// hashAlgorithm.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// maskGenAlgorithm.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    /// saltLength.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub salt_length: Option<u32>,
    /// trailerField (must be 1).
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub trailer_field: Option<u32>,
}

/// The hash of an (optional) hashAlgorithm and MGF1 pair; SHA-1 when absent (RFC 4055 §3.1).
pub(crate) fn rsa_param_hashes(
    hash: Option<&AlgorithmIdentifierOwned>,
    mgf: Option<&AlgorithmIdentifierOwned>,
) -> Result<(MessageDigest, MessageDigest)> {
    let md = match hash {
        Some(h) => md_for_hash_oid(&h.oid)?,
        None => MessageDigest::sha1(),
    };
    let mgf_md = match mgf {
        None => MessageDigest::sha1(),
        Some(m) if m.oid == oids::ID_MGF1 => {
            let inner: AlgorithmIdentifierOwned = m
                .parameters
                .as_ref()
                .ok_or_else(|| CmsError::malformed("MGF1 without hash parameter"))?
                .decode_as()?;
            md_for_hash_oid(&inner.oid)?
        }
        Some(m) => return Err(CmsError::unsupported(format!("mask generation {}", m.oid))),
    };
    Ok((md, mgf_md))
}

/// DER of an x509 certificate as an OpenSSL X509.
pub(crate) fn to_openssl_cert(cert: &x509_cert::Certificate) -> Result<openssl::x509::X509> {
    Ok(openssl::x509::X509::from_der(&cert.to_der()?)?)
}

/// The OpenSSL public key of a certificate's SPKI.
pub(crate) fn cert_public_key(
    cert: &x509_cert::Certificate,
) -> Result<openssl::pkey::PKey<openssl::pkey::Public>> {
    let spki = cert.tbs_certificate().subject_public_key_info().to_der()?;
    Ok(openssl::pkey::PKey::public_key_from_der(&spki)?)
}

/// The subjectKeyIdentifier extension value of a certificate, if any.
pub(crate) fn cert_ski(cert: &x509_cert::Certificate) -> Option<Vec<u8>> {
    match cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
    {
        Ok(Some((_, ski))) => Some(ski.0.as_bytes().to_vec()),
        _ => None,
    }
}

/// IssuerAndSerialNumber of a certificate (RFC 5652 §10.2.4).
pub fn issuer_and_serial(cert: &x509_cert::Certificate) -> cms::cert::IssuerAndSerialNumber {
    cms::cert::IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use der::Decode;

    #[test]
    fn oaep_params_encode_as_rfc4055_and_round_trip() {
        // rSAES-OAEP-Default-Identifier parameters: an empty SEQUENCE.
        assert_eq!(RsaesOaepParams::default().to_der().unwrap(), [0x30, 0x00]);
        let p = RsaesOaepParams {
            hash_algorithm: Some(alg(oids::ID_SHA256)),
            mask_gen_algorithm: Some(alg_with(
                oids::ID_MGF1,
                Any::encode_from(&alg(oids::ID_SHA256)).unwrap(),
            )),
            p_source_algorithm: None,
        };
        let der = p.to_der().unwrap();
        assert_eq!(
            RsaesOaepParams::from_der(&der).unwrap().to_der().unwrap(),
            der
        );
        let pss = RsassaPssParams {
            salt_length: Some(32),
            ..Default::default()
        };
        let der = pss.to_der().unwrap();
        assert_eq!(RsassaPssParams::from_der(&der).unwrap(), pss);
    }

    #[test]
    fn aes_wrap_rejects_bad_sizes_and_wrong_keks() {
        let w = KeyWrap::Aes128.wrap(&[1; 16], &[2; 32]).unwrap();
        assert_eq!(w.len(), 40);
        assert_eq!(
            KeyWrap::Aes128.unwrap(&[1; 16], &w).unwrap().as_slice(),
            &[2; 32]
        );
        assert!(KeyWrap::Aes128.unwrap(&[3; 16], &w).is_err());
        assert!(KeyWrap::Aes128.unwrap(&[1; 16], &w[..39]).is_err());
        assert!(KeyWrap::Aes256.wrap(&[1; 16], &[2; 32]).is_err());
        assert!(KeyWrap::for_kek_len(20).is_err());
    }

    #[test]
    fn content_decrypt_rejects_bad_iv_and_key() {
        let cea = ContentEncryption::Aes128Cbc;
        let key = [5u8; 16];
        let (a, ct) = cea.encrypt(&key, b"hello").unwrap();
        assert_eq!(content_decrypt(&a, &key, &ct).unwrap().as_slice(), b"hello");
        assert!(matches!(
            content_decrypt(&a, &[5u8; 32], &ct),
            Err(CmsError::DecryptionFailed)
        ));
        let no_iv = alg(oids::AES128_CBC);
        assert!(content_decrypt(&no_iv, &key, &ct).is_err());
    }
}
