//! The one error type of this crate.
use der::asn1::ObjectIdentifier;

/// Everything that can go wrong while building, decrypting or verifying CMS structures.
///
/// Messages are safe to show to a peer: decryption failures deliberately do not say whether the
/// key, the padding or the integrity check was wrong.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    /// The input is not valid DER for the expected ASN.1 structure.
    #[error("malformed DER: {0}")]
    Der(#[from] der::Error),
    /// An OpenSSL primitive failed.
    #[error("OpenSSL error: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// The structure is well-formed DER but violates RFC 5652 (or a companion RFC).
    #[error("malformed CMS: {0}")]
    Malformed(String),
    /// The ContentInfo or encapsulated content type is not the one expected.
    #[error("unexpected content type {0}")]
    UnexpectedContentType(ObjectIdentifier),
    /// An algorithm (or parameter set) this crate does not implement.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A caller-supplied value is unusable (wrong key size, missing extension, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No RecipientInfo matches the key or password given for decryption.
    #[error("no recipient info matches the given key")]
    NoMatchingRecipient,
    /// Unwrapping the content-encryption key or decrypting the content failed.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The message authentication code does not match.
    #[error("MAC verification failed")]
    BadMac,
    /// A SignerInfo signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The messageDigest attribute does not match the digest of the content.
    #[error("message digest mismatch")]
    DigestMismatch,
    /// The contentType attribute does not match eContentType.
    #[error("content type attribute does not match the encapsulated content type")]
    ContentTypeMismatch,
    /// The SignedData does not carry the certificate a SignerInfo names.
    #[error("signer certificate not found in the message")]
    SignerCertNotFound,
    /// The signer certificate does not chain to a trust anchor.
    #[error("certificate chain validation failed: {0}")]
    ChainValidation(String),
    /// The signing backend (e.g. an HSM) reported an error.
    #[error("signer backend: {0}")]
    Signer(String),
}

impl CmsError {
    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        Self::Malformed(msg.into())
    }
    pub(crate) fn unsupported(msg: impl Into<String>) -> Self {
        Self::UnsupportedAlgorithm(msg.into())
    }
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, CmsError>;
