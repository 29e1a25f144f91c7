//! CMS engine (RFC 5652) for Estuary: SignedData, EnvelopedData (kekri, ktri, kari, pwri),
//! AuthenticatedData, RFC 5958 asymmetric key packages and SMIMECapabilities.
//!
//! Types come from the RustCrypto `cms` crate (without its broken `builder` feature); every
//! primitive is OpenSSL. The crate does no I/O. All decoders accept DER only (no BER
//! indefinite lengths) and never panic on malformed input. Certs-only SignedData lives in
//! `est-proto`.
mod alg;
mod authenticated;
mod enveloped;
mod error;
mod kari;
mod key_delivery;
mod keypackage;
pub mod oids;
mod pwri;
mod rawder;
mod signed;
mod signer;
mod smime_caps;
mod verify_key;

pub use alg::{
    ContentEncryption, DigestAlgorithm, KeyWrap, RsaesOaepParams, RsassaPssParams,
    issuer_and_serial,
};
pub use authenticated::{
    Authenticated, authenticate, authenticated_content_unverified, verify_authenticated,
};
pub use enveloped::{
    Decrypted, KeyTransport, Recipient, RecipientId, RecipientSecret, decrypt, envelope,
};
pub use error::{CmsError, Result};
pub use kari::{EccCmsSharedInfo, KeyAgreeKdf};
pub use key_delivery::{
    OpenedKeyPackage, check_recipient_certificate, content_encryption_for, open_key_package,
    recipient_for_key, recipient_for_spki, seal_key_package,
};
pub use keypackage::{PackagedKey, decode_key_package, encode_key_package, one_asymmetric_key};
pub use pwri::{MAX_PBKDF2_ITERATIONS, Pbkdf2Params, PwriParams};
pub use signed::{
    ParsedSignedData, SignOptions, SignerIdKind, Verified, VerifyOptions, sign, sign_with,
    sign_with_der_certs, sign_with_key_id, validate_chain, verify, verify_x509_signature,
};
pub use signer::{CmsSigner, OpensslSigner, sign_x509};
pub use smime_caps::{
    SmimeCapabilities, SmimeCapability, decode_smime_capabilities, pick_content_encryption,
    pick_key_agreement, pick_key_transport, pick_key_wrap, smime_capabilities_attribute,
    smime_capabilities_from_attribute,
};
pub use verify_key::{VerifyKey, verify_x509_signature_with};
