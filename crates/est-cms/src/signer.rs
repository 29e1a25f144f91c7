//! The signing seam: anything that can produce a CMS signature (file key, HSM key).
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::alg::{DigestAlgorithm, alg, alg_null};
use crate::error::{CmsError, Result};
use crate::oids;

/// A key that signs SignerInfos. Implement it over a PKCS#11 session to sign with an HSM key.
pub trait CmsSigner {
    /// The signer's certificate (its issuer/serial or SKI become the sid).
    fn certificate(&self) -> &Certificate;
    /// The digest algorithm for the content and the messageDigest attribute.
    fn digest(&self) -> DigestAlgorithm;
    /// The signatureAlgorithm of the SignerInfo.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// Sign `message` (the DER signed attributes); the backend hashes it itself. ECDSA
    /// signatures are returned as DER Ecdsa-Sig-Value.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// A [`CmsSigner`] over an OpenSSL private key: RSA (PKCS#1 v1.5), ECDSA P-256/P-384,
/// Ed25519 (RFC 8419).
pub struct OpensslSigner {
    key: PKey<Private>,
    cert: Certificate,
    digest: DigestAlgorithm,
}

impl std::fmt::Debug for OpensslSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensslSigner")
            .field("key_type", &self.key.id())
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl OpensslSigner {
    /// Pick the natural digest: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for
    /// Ed25519 (RFC 8419 §3). Other key types are rejected. The key is not checked against
    /// the certificate here; a mismatch makes verification fail.
    pub fn new(key: PKey<Private>, cert: Certificate) -> Result<Self> {
        let digest = natural_digest(&key)?;
        Ok(Self { key, cert, digest })
    }

    /// Override the digest (RSA and ECDSA only; Ed25519 stays SHA-512).
    pub fn with_digest(mut self, digest: DigestAlgorithm) -> Self {
        if self.key.id() != Id::ED25519 {
            self.digest = digest;
        }
        self
    }
}

impl CmsSigner for OpensslSigner {
    fn certificate(&self) -> &Certificate {
        &self.cert
    }

    fn digest(&self) -> DigestAlgorithm {
        self.digest
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        signature_algorithm_for(self.key.id(), self.digest)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        sign_message(&self.key, self.digest, message)
    }
}

/// The natural digest of a key: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for
/// Ed25519 (RFC 8419 §3); other key types are rejected.
pub(crate) fn natural_digest(key: &PKey<Private>) -> Result<DigestAlgorithm> {
    Ok(match key.id() {
        Id::RSA => DigestAlgorithm::Sha256,
        Id::EC => {
            let ec = key.ec_key()?;
            match ec.group().curve_name() {
                Some(openssl::nid::Nid::X9_62_PRIME256V1) => DigestAlgorithm::Sha256,
                Some(openssl::nid::Nid::SECP384R1) => DigestAlgorithm::Sha384,
                _ => return Err(CmsError::unsupported("EC curve other than P-256/P-384")),
            }
        }
        Id::ED25519 => DigestAlgorithm::Sha512,
        other => return Err(CmsError::unsupported(format!("signing key type {other:?}"))),
    })
}

/// The SignerInfo signatureAlgorithm for a key type and digest.
pub(crate) fn signature_algorithm_for(id: Id, digest: DigestAlgorithm) -> AlgorithmIdentifierOwned {
    match (id, digest) {
        (Id::ED25519, _) => alg(oids::ID_ED25519),
        (Id::EC, DigestAlgorithm::Sha256) => alg(oids::ECDSA_WITH_SHA256),
        (Id::EC, DigestAlgorithm::Sha384) => alg(oids::ECDSA_WITH_SHA384),
        (Id::EC, DigestAlgorithm::Sha512) => alg(oids::ECDSA_WITH_SHA512),
        (_, DigestAlgorithm::Sha256) => alg_null(oids::SHA256_WITH_RSA),
        (_, DigestAlgorithm::Sha384) => alg_null(oids::SHA384_WITH_RSA),
        (_, DigestAlgorithm::Sha512) => alg_null(oids::SHA512_WITH_RSA),
    }
}

/// Signs `message` with `key` (ECDSA as DER Ecdsa-Sig-Value; Ed25519 without a digest).
pub(crate) fn sign_message(
    key: &PKey<Private>,
    digest: DigestAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>> {
    if key.id() == Id::ED25519 {
        let mut s = Signer::new_without_digest(key)?;
        return Ok(s.sign_oneshot_to_vec(message)?);
    }
    let mut s = Signer::new(digest.message_digest(), key)?;
    s.update(message)?;
    Ok(s.sign_to_vec()?)
}

/// An X.509-style signature (PKCS#10, CRMF POPOSigningKey) over `message` with `key`, and
/// its AlgorithmIdentifier; digest as [`OpensslSigner::new`] picks it.
pub fn sign_x509(
    key: &PKey<Private>,
    message: &[u8],
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>)> {
    let digest = natural_digest(key)?;
    Ok((
        signature_algorithm_for(key.id(), digest),
        sign_message(key, digest, message)?,
    ))
}
