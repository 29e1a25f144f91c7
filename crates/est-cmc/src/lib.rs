//! CMC, Certificate Management over CMS (RFC 5272, 5273, 5274 as updated by RFC 6402), for
//! Estuary: the message types (no published crate has them), the CRMF subset CMC uses, and
//! sans-I/O request processing and response building. The CA core executes what a request
//! asks; this crate never touches a store, a key backend or a socket.
//!
//! - [`types`], [`controls`], [`crmf`]: one Rust type per ASN.1 production, derived with
//!   `der`; decoders never panic (fuzzed).
//! - [`FullPkiRequest`]: verifies the outer SignedData (CMC-16, CMC-17), decodes the controls
//!   (CMC-8, CMC-9) and checks every certification request's syntax and POP (CMC-13,
//!   CMC-14, CMC-68), identity proof and POP linking with a shared secret the caller finds
//!   (CMC-43..CMC-48).
//! - [`ResponseBuilder`]: the PKIResponse with echoed transaction controls (CMC-50..CMC-54)
//!   and CMCStatusInfoV2 per body part (CMC-35..CMC-41).
//! - [`serverkeygen`]: the CMC server-side key generation draft (SKGD-1..SKGD-44), with
//!   configurable OIDs ([`serverkeygen::SkgOids`]) and the wide [`Oid`] they need.
//! - [`client`]: building Full PKI Requests (PKCS#10 or CRMF, signed with the request key or
//!   an existing certificate) and reading responses.
mod certreq;
pub mod client;
mod control_set;
pub mod controls;
pub mod crmf;
pub mod encrypted_pop;
mod error;
pub mod linking;
mod oid;
pub mod oids;
pub mod ra;
pub mod ra_keygen;
mod request;
mod response;
pub mod serverkeygen;
#[cfg(test)]
mod test_util;
pub mod types;

pub use certreq::{CertificationRequest, PopLinkWitness, RequestForm};
pub use control_set::Controls;
pub use error::Failure;
pub use oid::{Oid, OidError};
pub use request::{
    FullPkiRequest, MAX_NESTING, OuterSigner, RequestError, RequestPolicy, prefix_path,
};
pub use response::{NONCE_LEN, ResponseBuilder, ResponseSummary, describe_status};
pub use types::{
    BodyPartId, BodyPartReference, CmcFailInfo, CmcStatus, CmcStatusInfoV2, OtherStatusInfo,
    PendInfo, PkiData, PkiResponse, TaggedAttribute, TaggedRequest,
};
