//! The Estuary certificate authority core, protocol-neutral.
//!
//! This crate knows how to verify a certification request, apply a certificate profile and a
//! name policy, and issue a certificate durably. It knows nothing of HTTP, EST paths or TLS: the
//! EST server (and later CMC) drive it through [`Authority`].
//!
//! It defines the three seams that backends implement:
//! - [`Store`]: where issued certificates and users are recorded (SQLite, PostgreSQL);
//! - [`KeyBackend`]: where CA keys live and sign (files, PKCS#11): callers only ever sign through
//!   a handle and never see key bytes;
//! - [`Clock`]: the time, so tests can move it.

pub mod admin;
mod approval;
mod audit;
mod audit_hooks;
mod authority;
mod authz;
mod clock;
mod cmc_secrets;
mod credentials;
mod crl;
mod csr;
mod delivery;
mod digest_secrets;
mod error;
mod keygen;
mod keys;
mod name_syntax;
mod names;
mod observe;
mod ocsp;
mod package;
mod password;
mod profile;
mod sealed;
mod serial;
pub mod setup;
mod store;
mod tokens;
mod user_cache;

pub use approval::{EnrollOutcome, HeldOutcome, match_key, rejection};
pub use audit::{
    AUDIT_GENESIS, AuditEvent, AuditRecord, ChainBreak, ChainVerifier, action as audit_action,
    verify_chain,
};
pub use authority::{
    Authority, CaDomain, CertifyRequest, EnrollRequest, GenerateRequest, GeneratedKey, Identity,
    IssuedCert, Issuer, Origin, RenewalTarget,
};
pub use authz::{
    AccessRule, ID_KP_CMC_RA, ImplicitNameMapping, LabelPolicy, any_dn_glob, any_glob,
    is_registration_authority,
};
pub use clock::{Clock, SystemClock, fmt_time};
pub use cmc_secrets::{
    CMC_NONCE_MAX_LEN, CMC_REPLAY_PRUNE_INTERVAL, CMC_REPLAY_WINDOW, CMC_SECRET_MIN_LEN, CmcSecret,
    CmcSecrets, ENCRYPTED_POP_WINDOW, ReplayClaim,
};
pub use crl::{
    CRL_STATE_CHECK_INTERVAL, CrlReason, RevokeOutcome, UnknownCrlReason, normalize_serial,
};
pub use csr::{KeyType, PublicKeyKind, VerifiedCsr};
pub use delivery::{
    ClientKeys, DeliveryKey, DeliveryRequest, check_kek_size, check_recipient,
    subject_key_identifier,
};
pub use digest_secrets::DigestSecrets;
pub use error::CaError;
pub use est_asn1::ocsp::OcspResponseStatus;
pub use keygen::{KeyGenCsr, KeyPool, KeySource};
pub use keys::{KeyBackend, KeyError, KeyId, SignatureAlgorithm, SigningKey};
pub use name_syntax::{MAX_SAN_ENTRIES, MAX_SUBJECT_ATTRIBUTES};
pub use names::{NamePolicy, RequestedNames};
pub use observe::{NoObserver, Observer, StoreCommit};
pub use ocsp::{
    OCSP_MAX_REQUESTS, OCSP_NONCE_MAX_LEN, OcspAnswer, OcspHash, OcspRequestError, OcspResponder,
    ParsedOcspRequest, cert_id, cert_id_names_issuer, parse_ocsp_request,
};
pub use package::{DeliveredKey, DeliveryPlan, IssuerSigner, KeyGenRequest, KeyPart};
pub use password::{PasswordHasher, PasswordVerifier};
pub use profile::{ExtendedKeyUsage, KeyPolicy, KeyUsageBit, Profile, key_identifier};
pub use sealed::SecretBox;
pub use serial::{new_serial, serial_hex};

pub use tokens::{TOKEN_PREFIX, check_token_subject, new_token, parse_lifetime};

/// Lowercase hex SHA-256 of an enrollment token secret, as stored ([`TokenRecord`]).
pub fn token_secret_hash(secret: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(secret))
}
pub use store::{
    AdminRecord, CertFilter, CertRecord, CertStatus, ClientKeyKind, ClientKeyRecord,
    CmcSecretRecord, PendingRecord, ReplayPair, Revocation, RevokedEntry, Store, StoreError,
    TOKEN_REVOKED_BY, TokenRecord, UserRecord, scan_certificates,
};
