//! The key seam: CA keys sign through a handle; the caller never sees key bytes, so a PKCS#11
//! key plugs in where a file key does.
use std::fmt::Debug;
use std::sync::Arc;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::Null;
use der::{Any, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// Name of a key inside a [`KeyBackend`] (a file stem, a PKCS#11 label).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(pub String);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("key {0} not found")]
    NotFound(KeyId),
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("key backend failure: {0}")]
    Backend(String),
}

/// The signature algorithms a CA key can produce, with their X.509 AlgorithmIdentifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    Ed25519,
}

impl SignatureAlgorithm {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::EcdsaSha256 => rfc5912::ECDSA_WITH_SHA_256,
            Self::EcdsaSha384 => rfc5912::ECDSA_WITH_SHA_384,
            Self::EcdsaSha512 => rfc5912::ECDSA_WITH_SHA_512,
            Self::RsaPkcs1Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            Self::RsaPkcs1Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            Self::RsaPkcs1Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            Self::Ed25519 => const_oid::db::rfc8410::ID_ED_25519,
        }
    }

    /// The AlgorithmIdentifier: RSA PKCS#1 v1.5 carries an explicit NULL (RFC 4055 §5), ECDSA
    /// and Ed25519 carry no parameters (RFC 5758 §3.2, RFC 8410 §3).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            Self::RsaPkcs1Sha256 | Self::RsaPkcs1Sha384 | Self::RsaPkcs1Sha512 => {
                Null.to_der().ok().and_then(|d| Any::from_der_bytes(&d))
            }
            _ => None,
        };
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        }
    }
}

trait AnyFromDer {
    fn from_der_bytes(d: &[u8]) -> Option<Any>;
}
impl AnyFromDer for Any {
    fn from_der_bytes(d: &[u8]) -> Option<Any> {
        use der::Decode;
        Any::from_der(d).ok()
    }
}

/// A key that can sign, held by some backend.
pub trait SigningKey: Send + Sync + Debug {
    /// The public key, as it goes into certificates and AKI/SKI computation.
    fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned;
    /// The algorithm this key signs with.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// Signs `message` (the backend hashes as the algorithm says) and returns the signature in
    /// its X.509 encoding (ECDSA as a DER `Ecdsa-Sig-Value`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// Where CA keys live. Implementations: files (est-keys), PKCS#11 (later).
pub trait KeyBackend: Send + Sync + Debug {
    /// Returns a handle to an existing key.
    fn load(&self, id: &KeyId) -> Result<Arc<dyn SigningKey>, KeyError>;
    /// Generates a new key of `key_type` under `id` (which must not exist yet).
    fn generate(
        &self,
        id: &KeyId,
        key_type: crate::KeyType,
    ) -> Result<Arc<dyn SigningKey>, KeyError>;
}
