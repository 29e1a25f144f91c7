use crate::{KeyError, StoreError};

/// Why the authority refused or failed a request. The mapping to an HTTP status or a CMC
/// failure code happens at the edge (server), never here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The request could not be parsed (DER, structure).
    #[error("malformed certification request: {0}")]
    MalformedRequest(String),
    /// The CSR signature (its proof of possession) did not verify.
    #[error("the CSR signature does not verify (proof of possession failed)")]
    BadCsrSignature,
    /// The public key or signature algorithm is not allowed by the profile.
    #[error("{0}")]
    KeyNotAllowed(String),
    /// A name RFC 5280 forbids in a certificate, or one the profile does not issue (a
    /// wildcard): the request is wrong whoever sends it (SEC-11).
    #[error("{0}")]
    InvalidName(String),
    /// The requester may not ask for these names.
    #[error("{0}")]
    NameNotAllowed(String),
    /// A renewal whose subject or SubjectAltName differs from the certificate being renewed
    /// (EST-82).
    #[error("{0}")]
    SubjectMismatch(String),
    /// Renewal target not found, expired, revoked or ambiguous (EST-84).
    #[error("{0}")]
    NoRenewalTarget(String),
    /// Key reuse on renewal is forbidden by policy (EST-86).
    #[error("key reuse not permitted")]
    KeyReuse,
    /// A server-generated key cannot be delivered as asked: unknown decrypt key identifier
    /// (SKG-12/13), an unusable recipient (SKG-14) or no acceptable algorithm (SKG-23).
    #[error("{0}")]
    KeyDelivery(String),
    /// The identity is not authorized for this operation.
    #[error("{0}")]
    NotAuthorized(String),
    /// A secret given to the authority to keep is unusable: a CMC shared secret that is too
    /// short (CMC-45), or whose identifier or linked subject is invalid.
    #[error("{0}")]
    InvalidSecret(String),
    /// A revocation request the authority refuses as asked: a serial that is not hex, a
    /// reason not used in full CRLs (removeFromCRL), an invalidity date in the future.
    #[error("{0}")]
    Revocation(String),
    /// The request's (transactionId, senderNonce) pair was used before (CMC-53): nothing was
    /// issued.
    #[error("this transactionId and senderNonce were already used: a replayed request (CMC-53)")]
    Replayed,
    /// The signing key failed.
    #[error("CA signing failed")]
    Key(#[from] KeyError),
    /// The store failed; the certificate was not issued.
    #[error("certificate store unavailable")]
    Store(#[source] StoreError),
    /// Any other internal failure (encoding of our own structures).
    #[error("internal CA error: {0}")]
    Internal(String),
}

impl From<StoreError> for CaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Replayed => CaError::Replayed,
            other => CaError::Store(other),
        }
    }
}

impl From<der::Error> for CaError {
    fn from(e: der::Error) -> Self {
        CaError::Internal(format!("DER: {e}"))
    }
}

impl From<openssl::error::ErrorStack> for CaError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CaError::Internal(format!("openssl: {e}"))
    }
}
