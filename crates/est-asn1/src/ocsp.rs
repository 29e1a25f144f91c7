//! OCSP (RFC 6960) messages, one type per production of the ASN.1 module in RFC 6960
//! Appendix B.1 (`DEFINITIONS EXPLICIT TAGS`: every context tag below is EXPLICIT unless the
//! module says IMPLICIT). RustCrypto's `x509-ocsp` 0.2 is built on der 0.7 / x509-cert 0.2 and
//! cannot sit next to the workspace's der 0.8, so the types are written here, derive-based.
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Int, Null, OctetString};
use der::{Choice, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

pub mod oids {
    //! OCSP object identifiers (RFC 6960 §4.2.1, §4.4; RFC 5280 §4.2.2.1, §4.2.1.12).
    use const_oid::ObjectIdentifier as O;
    /// id-pkix-ocsp-basic: the only responseType (RFC 6960 §4.2.1).
    pub const BASIC: O = O::new_unwrap("1.3.6.1.5.5.7.48.1.1");
    /// id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 8954).
    pub const NONCE: O = O::new_unwrap("1.3.6.1.5.5.7.48.1.2");
    /// id-pkix-ocsp-nocheck: a delegated responder's certificate is not checked itself
    /// (RFC 6960 §4.2.2.2.1).
    pub const NOCHECK: O = O::new_unwrap("1.3.6.1.5.5.7.48.1.5");
    /// id-pkix-ocsp-pref-sig-algs (RFC 6960 §4.4.7).
    pub const PREF_SIG_ALGS: O = O::new_unwrap("1.3.6.1.5.5.7.48.1.8");
    /// id-kp-OCSPSigning (RFC 5280 §4.2.1.12).
    pub const KP_OCSP_SIGNING: O = O::new_unwrap("1.3.6.1.5.5.7.3.9");
    /// id-ad-ocsp, the accessMethod of an OCSP responder in AIA (RFC 5280 §4.2.2.1).
    pub const AD_OCSP: O = O::new_unwrap("1.3.6.1.5.5.7.48.1");
}

/// `Version ::= INTEGER { v1(0) }`: only v1 exists.
pub const V1: u8 = 0;

fn v1() -> u8 {
    V1
}

/// ```text
/// OCSPRequest ::= SEQUENCE {
///     tbsRequest                  TBSRequest,
///     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
/// ```
/// (RFC 6960 §4.1.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspRequest {
    pub tbs_request: TbsRequest,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<Signature>,
}

/// ```text
/// TBSRequest ::= SEQUENCE {
///     version             [0]     EXPLICIT Version DEFAULT v1,
///     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
///     requestList                 SEQUENCE OF Request,
///     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
/// ```
/// (RFC 6960 §4.1.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TbsRequest {
    #[asn1(context_specific = "0", default = "v1", tag_mode = "EXPLICIT")]
    pub version: u8,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<GeneralName>,
    pub request_list: Vec<Request>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Extensions>,
}

/// ```text
/// Signature ::= SEQUENCE {
///     signatureAlgorithm      AlgorithmIdentifier,
///     signature               BIT STRING,
///     certs               [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
/// (RFC 6960 §4.1.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Signature {
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Certificate>>,
}

/// ```text
/// Request ::= SEQUENCE {
///     reqCert                     CertID,
///     singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
/// ```
/// (RFC 6960 §4.1.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Request {
    pub req_cert: CertId,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<Extensions>,
}

/// ```text
/// CertID ::= SEQUENCE {
///     hashAlgorithm           AlgorithmIdentifier,
///     issuerNameHash          OCTET STRING, -- Hash of issuer's DN
///     issuerKeyHash           OCTET STRING, -- Hash of issuer's public key
///     serialNumber            CertificateSerialNumber }
/// ```
/// (RFC 6960 §4.1.1). The serial is a plain INTEGER, not x509-cert's `SerialNumber`: a request
/// may name any serial (negative, longer than 20 octets) and is answered "unknown" for it, not
/// refused as malformed.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertId {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub issuer_name_hash: OctetString,
    pub issuer_key_hash: OctetString,
    pub serial_number: Int,
}

/// ```text
/// OCSPResponse ::= SEQUENCE {
///    responseStatus         OCSPResponseStatus,
///    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspResponse {
    pub response_status: OcspResponseStatus,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytes>,
}

/// ```text
/// OCSPResponseStatus ::= ENUMERATED {
///     successful            (0),  -- Response has valid confirmations
///     malformedRequest      (1),  -- Illegal confirmation request
///     internalError         (2),  -- Internal error in issuer
///     tryLater              (3),  -- Try again later
///                                 -- (4) is not used
///     sigRequired           (5),  -- Must sign the request
///     unauthorized          (6)   -- Request unauthorized }
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Copy, Debug, Eq, PartialEq, Enumerated)]
#[repr(u32)]
pub enum OcspResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// ```text
/// ResponseBytes ::= SEQUENCE {
///     responseType   OBJECT IDENTIFIER,
///     response       OCTET STRING }
/// ```
/// (RFC 6960 §4.2.1); for id-pkix-ocsp-basic the octets are a DER [`BasicOcspResponse`].
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseBytes {
    pub response_type: ObjectIdentifier,
    pub response: OctetString,
}

/// ```text
/// BasicOCSPResponse ::= SEQUENCE {
///    tbsResponseData      ResponseData,
///    signatureAlgorithm   AlgorithmIdentifier,
///    signature            BIT STRING,
///    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct BasicOcspResponse {
    pub tbs_response_data: ResponseData,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Certificate>>,
}

/// ```text
/// ResponseData ::= SEQUENCE {
///    version              [0] EXPLICIT Version DEFAULT v1,
///    responderID              ResponderID,
///    producedAt               GeneralizedTime,
///    responses                SEQUENCE OF SingleResponse,
///    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseData {
    #[asn1(context_specific = "0", default = "v1", tag_mode = "EXPLICIT")]
    pub version: u8,
    pub responder_id: ResponderId,
    pub produced_at: GeneralizedTime,
    pub responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Extensions>,
}

/// ```text
/// ResponderID ::= CHOICE {
///    byName   [1] Name,
///    byKey    [2] KeyHash }
/// KeyHash ::= OCTET STRING -- SHA-1 hash of responder's public key
///                          -- (excluding the tag and length fields)
/// ```
/// (RFC 6960 §4.2.1; EXPLICIT by the module's default)
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// ```text
/// SingleResponse ::= SEQUENCE {
///    certID                       CertID,
///    certStatus                   CertStatus,
///    thisUpdate                   GeneralizedTime,
///    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
///    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleResponse {
    pub cert_id: CertId,
    pub cert_status: CertStatus,
    pub this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub single_extensions: Option<Extensions>,
}

/// ```text
/// CertStatus ::= CHOICE {
///     good        [0]     IMPLICIT NULL,
///     revoked     [1]     IMPLICIT RevokedInfo,
///     unknown     [2]     IMPLICIT UnknownInfo }
/// UnknownInfo ::= NULL
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Copy, Debug, Eq, PartialEq, Choice)]
pub enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// ```text
/// RevokedInfo ::= SEQUENCE {
///     revocationTime              GeneralizedTime,
///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
/// ```
/// (RFC 6960 §4.2.1)
#[derive(Clone, Copy, Debug, Eq, PartialEq, Sequence)]
pub struct RevokedInfo {
    pub revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub revocation_reason: Option<CrlReason>,
}

#[cfg(test)]
mod tests {
    use der::{Decode, Encode};

    use super::*;

    #[test]
    fn a_hand_built_request_round_trips() {
        let sha1 = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: Some(der::Any::from(Null)),
        };
        let req = OcspRequest {
            tbs_request: TbsRequest {
                version: V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: CertId {
                        hash_algorithm: sha1,
                        issuer_name_hash: OctetString::new([1u8; 20]).unwrap(),
                        issuer_key_hash: OctetString::new([2u8; 20]).unwrap(),
                        serial_number: Int::new(&[0x12, 0x34]).unwrap(),
                    },
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        };
        let der = req.to_der().unwrap();
        // DEFAULT v1 is not encoded (X.690 §11.5): TBSRequest starts with requestList.
        assert_eq!((der[0], der[2], der[4]), (0x30, 0x30, 0x30));
        assert_eq!(OcspRequest::from_der(&der).unwrap(), req);
    }

    #[test]
    fn response_status_is_an_enumerated() {
        let r = OcspResponse {
            response_status: OcspResponseStatus::MalformedRequest,
            response_bytes: None,
        };
        assert_eq!(r.to_der().unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
        let back = OcspResponse::from_der(&[0x30, 0x03, 0x0a, 0x01, 0x06]).unwrap();
        assert_eq!(back.response_status, OcspResponseStatus::Unauthorized);
        assert!(OcspResponse::from_der(&[0x30, 0x03, 0x0a, 0x01, 0x04]).is_err());
    }

    #[test]
    fn cert_status_tags() {
        let good = CertStatus::Good(Null).to_der().unwrap();
        assert_eq!(good, [0x80, 0x00]);
        let unknown = CertStatus::Unknown(Null).to_der().unwrap();
        assert_eq!(unknown, [0x82, 0x00]);
        let t = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(0)).unwrap();
        let revoked = CertStatus::Revoked(RevokedInfo {
            revocation_time: t,
            revocation_reason: Some(CrlReason::KeyCompromise),
        })
        .to_der()
        .unwrap();
        assert_eq!(revoked[0], 0xa1);
        // revocationReason [0] EXPLICIT ENUMERATED 1
        assert!(revoked.ends_with(&[0xa0, 0x03, 0x0a, 0x01, 0x01]));
        assert_eq!(
            CertStatus::from_der(&revoked).unwrap(),
            CertStatus::Revoked(RevokedInfo {
                revocation_time: t,
                revocation_reason: Some(CrlReason::KeyCompromise),
            })
        );
    }

    #[test]
    fn responder_id_by_key_is_explicitly_tagged() {
        let id = ResponderId::ByKey(OctetString::new([7u8; 20]).unwrap())
            .to_der()
            .unwrap();
        assert_eq!(&id[..4], &[0xa2, 22, 0x04, 20]);
    }
}
