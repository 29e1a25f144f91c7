//! Values of the CMC controls (RFC 5272 §6, RFC 6402 §2), one type per production. Controls
//! whose value is a plain OCTET STRING, UTF8String or INTEGER (senderNonce, dataReturn,
//! identification, transactionId, queryPending, regInfo, ...) use the `der` types directly.
use der::asn1::{GeneralizedTime, Int, OctetString};
use der::{Any, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::crmf::CertTemplate;
use crate::types::{BodyPartId, BodyPartList, BodyPartPath, BodyPartReference, TaggedRequest};

/// ```text
/// IdentifyProofV2 ::= SEQUENCE {
///     proofAlgID       AlgorithmIdentifier,
///     macAlgId         AlgorithmIdentifier,
///     witness          OCTET STRING }
/// ```
/// (RFC 5272 §6.2.1, CMC-43, CMC-44; §2.14 item 5: the text calls proofAlgID hashAlgID)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IdentifyProofV2 {
    pub proof_alg_id: AlgorithmIdentifierOwned,
    pub mac_alg_id: AlgorithmIdentifierOwned,
    pub witness: OctetString,
}

/// ```text
/// PopLinkWitnessV2 ::= SEQUENCE {
///     keyGenAlgorithm   AlgorithmIdentifier,
///     macAlgorithm      AlgorithmIdentifier,
///     witness           OCTET STRING }
/// ```
/// (RFC 5272 §6.3.1.1, CMC-48)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PopLinkWitnessV2 {
    pub key_gen_algorithm: AlgorithmIdentifierOwned,
    pub mac_algorithm: AlgorithmIdentifierOwned,
    pub witness: OctetString,
}

/// ```text
/// AddExtensions ::= SEQUENCE {
///     pkiDataReference    BodyPartID,
///     certReferences      SEQUENCE OF BodyPartID,
///     extensions          SEQUENCE OF Extension }
/// ```
/// (RFC 5272 §6.5.2, CMC-60)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct AddExtensions {
    pub pki_data_reference: BodyPartId,
    pub cert_references: Vec<BodyPartId>,
    pub extensions: Vec<Extension>,
}

/// ```text
/// EncryptedPOP ::= SEQUENCE {
///     request       TaggedRequest,
///     cms             ContentInfo,
///     thePOPAlgID     AlgorithmIdentifier,
///     witnessAlgID    AlgorithmIdentifier,
///     witness         OCTET STRING }
/// ```
/// (RFC 5272 §6.7, CMC-67)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct EncryptedPop {
    pub request: TaggedRequest,
    pub cms: cms::content_info::ContentInfo,
    pub the_pop_alg_id: AlgorithmIdentifierOwned,
    pub witness_alg_id: AlgorithmIdentifierOwned,
    pub witness: OctetString,
}

/// ```text
/// DecryptedPOP ::= SEQUENCE {
///     bodyPartID      BodyPartID,
///     thePOPAlgID     AlgorithmIdentifier,
///     thePOP          OCTET STRING }
/// ```
/// (RFC 5272 §6.7, CMC-67)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct DecryptedPop {
    pub body_part_id: BodyPartId,
    pub the_pop_alg_id: AlgorithmIdentifierOwned,
    pub the_pop: OctetString,
}

/// ```text
/// LraPopWitness ::= SEQUENCE {
///     pkiDataBodyid   BodyPartID,
///     bodyIds         SEQUENCE OF BodyPartID }
/// ```
/// (RFC 5272 §6.8, CMC-61)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct LraPopWitness {
    pub pki_data_bodyid: BodyPartId,
    pub body_ids: Vec<BodyPartId>,
}

/// ```text
/// GetCert ::= SEQUENCE {
///     issuerName      GeneralName,
///     serialNumber    INTEGER }
/// ```
/// (RFC 5272 §6.9, CMC-70)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct GetCert {
    pub issuer_name: GeneralName,
    pub serial_number: SerialNumber,
}

/// ```text
/// GetCRL ::= SEQUENCE {
///     issuerName    Name,
///     cRLName       GeneralName OPTIONAL,
///     time          GeneralizedTime OPTIONAL,
///     reasons       ReasonFlags OPTIONAL }
/// ```
/// (RFC 5272 §6.10, CMC-71)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct GetCrl {
    pub issuer_name: Name,
    #[asn1(optional = "true")]
    pub crl_name: Option<GeneralName>,
    #[asn1(optional = "true")]
    pub time: Option<GeneralizedTime>,
    #[asn1(optional = "true")]
    pub reasons: Option<der::asn1::BitString>,
}

/// ```text
/// RevokeRequest ::= SEQUENCE {
///     issuerName            Name,
///     serialNumber          INTEGER,
///     reason                CRLReason,
///     invalidityDate         GeneralizedTime OPTIONAL,
///     passphrase            OCTET STRING OPTIONAL,
///     comment               UTF8String OPTIONAL }
/// ```
/// (RFC 5272 §6.11, CMC-72; §2.14 item 5: the text calls passphrase sharedSecret)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct RevokeRequest {
    pub issuer_name: Name,
    pub serial_number: SerialNumber,
    pub reason: x509_cert::ext::pkix::crl::CrlReason,
    #[asn1(optional = "true")]
    pub invalidity_date: Option<GeneralizedTime>,
    #[asn1(optional = "true")]
    pub passphrase: Option<OctetString>,
    #[asn1(optional = "true")]
    pub comment: Option<String>,
}

/// `CMCCertId ::= IssuerAndSerialNumber` (RFC 5272 §6.14, CMC-69).
pub type CmcCertId = cms::cert::IssuerAndSerialNumber;

/// ```text
/// PublishTrustAnchors ::= SEQUENCE {
///     seqNumber      INTEGER,
///     hashAlgorithm  AlgorithmIdentifier,
///     anchorHashes   SEQUENCE OF OCTET STRING }
/// ```
/// (RFC 5272 §6.15, CMC-73)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PublishTrustAnchors {
    pub seq_number: Int,
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub anchor_hashes: Vec<OctetString>,
}

/// `AuthPublish ::= BodyPartID` (RFC 5272 §6.16, CMC-74).
pub type AuthPublish = BodyPartId;

/// `BatchRequests ::= SEQUENCE SIZE (1..MAX) OF BodyPartID`, and BatchResponses the same
/// (RFC 5272 §6.17, CMC-66).
pub type BatchRequests = BodyPartList;
pub type BatchResponses = BodyPartList;

/// ```text
/// CMCPublicationInfo ::= SEQUENCE {
///     hashAlg        AlgorithmIdentifier,
///     certHashes     SEQUENCE OF OCTET STRING,
///     pubInfo        PKIPublicationInfo }
/// ```
/// (RFC 5272 §6.18, CMC-75); PKIPublicationInfo (RFC 4211) is kept as DER.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CmcPublicationInfo {
    pub hash_alg: AlgorithmIdentifierOwned,
    pub cert_hashes: Vec<OctetString>,
    pub pub_info: Any,
}

/// ```text
/// ModCertTemplate ::= SEQUENCE {
///     pkiDataReference             BodyPartPath,
///     certReferences               BodyPartList,
///     replace                      BOOLEAN DEFAULT TRUE,
///     certTemplate                 CertTemplate }
/// ```
/// (RFC 5272 §6.5.1, CMC-59)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ModCertTemplate {
    pub pki_data_reference: BodyPartPath,
    pub cert_references: BodyPartList,
    #[asn1(default = "default_true")]
    pub replace: bool,
    pub cert_template: CertTemplate,
}

fn default_true() -> bool {
    true
}

/// ```text
/// ControlsProcessed ::= SEQUENCE {
///     bodyList              SEQUENCE SIZE(1..MAX) OF BodyPartReference }
/// ```
/// (RFC 5272 §6.19, CMC-65)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ControlsProcessed {
    pub body_list: Vec<BodyPartReference>,
}

/// `ChangeSubjectName ::= SEQUENCE { subject Name OPTIONAL, subjectAlt GeneralNames
/// OPTIONAL }` (RFC 6402 §2.8, CMC-23).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ChangeSubjectName {
    #[asn1(optional = "true")]
    pub subject: Option<Name>,
    #[asn1(optional = "true")]
    pub subject_alt: Option<GeneralNames>,
}

/// `RAIdentityWitness ::= BodyPartPath` and `ResponseBody ::= BodyPartPath` (RFC 6402 §2.5,
/// §2.6; CMC-62, CMC-63).
pub type RaIdentityWitness = BodyPartPath;
pub type ResponseBody = BodyPartPath;

/// An OID-named control value the processor does not model, for error messages.
pub fn describe(oid: &crate::Oid) -> String {
    match oid.to_const().as_ref().and_then(crate::oids::control_name) {
        Some(n) => format!("{n} ({oid})"),
        None => oid.to_string(),
    }
}
