//! The CMC message types of RFC 5272 §3.2, §4.2 and App. A, as updated by RFC 6402, one Rust
//! type per ASN.1 production, derived with `der`. The module is `IMPLICIT TAGS`.
use der::asn1::{GeneralizedTime, Int, OctetString, SetOfVec, Utf8StringRef};
use der::{
    Any, Choice, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader,
    Sequence, Tag, Tagged, Writer,
};
use x509_cert::request::CertReq;

use crate::crmf::CertReqMsg;
use crate::oid::Oid;

/// `BodyPartID ::= INTEGER(0..4294967295)` (CMC-6).
pub type BodyPartId = u32;

/// `BodyPartPath ::= SEQUENCE SIZE (1..max) OF BodyPartID` (CMC-7).
pub type BodyPartPath = Vec<BodyPartId>;

/// `BodyPartList ::= SEQUENCE SIZE (1..max) OF BodyPartID` (CMC-7).
pub type BodyPartList = Vec<BodyPartId>;

/// ```text
/// BodyPartReference ::= CHOICE {
///    bodyPartID           BodyPartID,
///    bodyPartPath         BodyPartPath }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum BodyPartReference {
    Id(BodyPartId),
    Path(BodyPartPath),
}

/// ```text
/// PKIData ::= SEQUENCE {
///     controlSequence    SEQUENCE SIZE(0..MAX) OF TaggedAttribute,
///     reqSequence        SEQUENCE SIZE(0..MAX) OF TaggedRequest,
///     cmsSequence        SEQUENCE SIZE(0..MAX) OF TaggedContentInfo,
///     otherMsgSequence   SEQUENCE SIZE(0..MAX) OF OtherMsg }
/// ```
/// All four sequences are always encoded, possibly empty (CMC-1).
#[derive(Clone, Debug, PartialEq, Eq, Sequence, Default)]
pub struct PkiData {
    pub control_sequence: Vec<TaggedAttribute>,
    pub req_sequence: Vec<TaggedRequest>,
    pub cms_sequence: Vec<TaggedContentInfo>,
    pub other_msg_sequence: Vec<OtherMsg>,
}

/// ```text
/// PKIResponse ::= SEQUENCE {
///     controlSequence   SEQUENCE SIZE(0..MAX) OF TaggedAttribute,
///     cmsSequence       SEQUENCE SIZE(0..MAX) OF TaggedContentInfo,
///     otherMsgSequence  SEQUENCE SIZE(0..MAX) OF OtherMsg }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence, Default)]
pub struct PkiResponse {
    pub control_sequence: Vec<TaggedAttribute>,
    pub cms_sequence: Vec<TaggedContentInfo>,
    pub other_msg_sequence: Vec<OtherMsg>,
}

/// ```text
/// TaggedAttribute ::= SEQUENCE {
///     bodyPartID         BodyPartID,
///     attrType           OBJECT IDENTIFIER,
///     attrValues         SET OF AttributeValue }
/// ```
/// attrType is a wide [`Oid`]: a control under a 128-bit arc (the server-side key generation
/// draft's configurable OIDs, SKGD-1) must not make the whole PKIData undecodable; an unknown
/// one is reported like any other (CMC-9).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TaggedAttribute {
    pub body_part_id: BodyPartId,
    pub attr_type: Oid,
    pub attr_values: SetOfVec<Any>,
}

impl TaggedAttribute {
    /// A control with a single value.
    pub fn single(
        body_part_id: BodyPartId,
        attr_type: impl Into<Oid>,
        value: &impl Encode,
    ) -> der::Result<Self> {
        Ok(Self {
            body_part_id,
            attr_type: attr_type.into(),
            attr_values: SetOfVec::try_from(vec![Any::from_der(&value.to_der()?)?])?,
        })
    }
}

/// ```text
/// TaggedRequest ::= CHOICE {
///     tcr               [0] TaggedCertificationRequest,
///     crm               [1] CertReqMsg,
///     orm               [2] SEQUENCE {
///         bodyPartID            BodyPartID,
///         requestMessageType    OBJECT IDENTIFIER,
///         requestMessageValue   ANY DEFINED BY requestMessageType } }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
#[allow(clippy::large_enum_variant)]
pub enum TaggedRequest {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true")]
    Tcr(TaggedCertificationRequest),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Crm(CertReqMsg),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", constructed = "true")]
    Orm(OtherRequestMsg),
}

impl TaggedRequest {
    /// The body part ID (for CRMF, the certReqId, CMC-6). `None` for a certReqId that is not a
    /// valid BodyPartID.
    pub fn body_part_id(&self) -> Option<BodyPartId> {
        match self {
            Self::Tcr(t) => Some(t.body_part_id),
            Self::Crm(c) => c.cert_req.body_part_id(),
            Self::Orm(o) => Some(o.body_part_id),
        }
    }
}

/// ```text
/// TaggedCertificationRequest ::= SEQUENCE {
///     bodyPartID            BodyPartID,
///     certificationRequest  CertificationRequest }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TaggedCertificationRequest {
    pub body_part_id: BodyPartId,
    pub certification_request: CertReq,
}

/// The `orm` alternative of TaggedRequest.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OtherRequestMsg {
    pub body_part_id: BodyPartId,
    pub request_message_type: Oid,
    pub request_message_value: Any,
}

/// ```text
/// TaggedContentInfo ::= SEQUENCE {
///     bodyPartID              BodyPartID,
///     contentInfo             ContentInfo }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TaggedContentInfo {
    pub body_part_id: BodyPartId,
    pub content_info: cms::content_info::ContentInfo,
}

/// ```text
/// OtherMsg ::= SEQUENCE {
///     bodyPartID        BodyPartID,
///     otherMsgType      OBJECT IDENTIFIER,
///     otherMsgValue     ANY DEFINED BY otherMsgType }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OtherMsg {
    pub body_part_id: BodyPartId,
    pub other_msg_type: Oid,
    pub other_msg_value: Any,
}

/// `CMCStatus ::= INTEGER` (CMC-37). Decoding keeps unknown values (reserved 1 included) so a
/// client can report them instead of failing to parse the whole response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmcStatus(pub u32);

impl CmcStatus {
    pub const SUCCESS: Self = Self(0);
    pub const FAILED: Self = Self(2);
    pub const PENDING: Self = Self(3);
    pub const NO_SUPPORT: Self = Self(4);
    pub const CONFIRM_REQUIRED: Self = Self(5);
    pub const POP_REQUIRED: Self = Self(6);
    pub const PARTIAL: Self = Self(7);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "success",
            2 => "failed",
            3 => "pending",
            4 => "noSupport",
            5 => "confirmRequired",
            6 => "popRequired",
            7 => "partial",
            _ => "unknown status",
        }
    }
}

/// `CMCFailInfo ::= INTEGER` (CMC-39); private values 1000..1999 are kept as they come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmcFailInfo(pub u32);

impl CmcFailInfo {
    pub const BAD_ALG: Self = Self(0);
    pub const BAD_MESSAGE_CHECK: Self = Self(1);
    pub const BAD_REQUEST: Self = Self(2);
    pub const BAD_TIME: Self = Self(3);
    pub const BAD_CERT_ID: Self = Self(4);
    pub const UNSUPPORTED_EXT: Self = Self(5);
    pub const MUST_ARCHIVE_KEYS: Self = Self(6);
    pub const BAD_IDENTITY: Self = Self(7);
    pub const POP_REQUIRED: Self = Self(8);
    pub const POP_FAILED: Self = Self(9);
    pub const NO_KEY_REUSE: Self = Self(10);
    pub const INTERNAL_CA_ERROR: Self = Self(11);
    pub const TRY_LATER: Self = Self(12);
    pub const AUTH_DATA_FAIL: Self = Self(13);

    pub fn name(self) -> &'static str {
        const NAMES: [&str; 14] = [
            "badAlg",
            "badMessageCheck",
            "badRequest",
            "badTime",
            "badCertId",
            "unsupportedExt",
            "mustArchiveKeys",
            "badIdentity",
            "popRequired",
            "popFailed",
            "noKeyReuse",
            "internalCAError",
            "tryLater",
            "authDataFail",
        ];
        NAMES
            .get(self.0 as usize)
            .copied()
            .unwrap_or("unknown failInfo")
    }
}

macro_rules! integer_newtype {
    ($t:ty) => {
        impl<'a> der::DecodeValue<'a> for $t {
            type Error = der::Error;
            fn decode_value<R: der::Reader<'a>>(
                reader: &mut R,
                header: der::Header,
            ) -> der::Result<Self> {
                Ok(Self(<u32 as der::DecodeValue>::decode_value(
                    reader, header,
                )?))
            }
        }
        impl der::EncodeValue for $t {
            fn value_len(&self) -> der::Result<der::Length> {
                der::EncodeValue::value_len(&self.0)
            }
            fn encode_value(&self, writer: &mut impl der::Writer) -> der::Result<()> {
                der::EncodeValue::encode_value(&self.0, writer)
            }
        }
        impl der::FixedTag for $t {
            const TAG: der::Tag = der::Tag::Integer;
        }
    };
}
pub(crate) use integer_newtype;
integer_newtype!(CmcStatus);
integer_newtype!(CmcFailInfo);

/// `PendInfo ::= SEQUENCE { pendToken OCTET STRING, pendTime GeneralizedTime }` (CMC-38).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PendInfo {
    pub pend_token: OctetString,
    pub pend_time: GeneralizedTime,
}

/// `ExtendedFailInfo ::= SEQUENCE { failInfoOID OBJECT IDENTIFIER, failInfoValue ANY }`.
/// failInfoOID is wide: id-cet-serverKeyGen is configurable (SKGD-25).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ExtendedFailInfo {
    pub fail_info_oid: Oid,
    pub fail_info_value: Any,
}

/// ```text
/// OtherStatusInfo ::= CHOICE {
///     failInfo              CMCFailInfo,
///     pendInfo              PendInfo,
///     extendedFailInfo      ExtendedFailInfo }
/// ```
/// pendInfo and extendedFailInfo are both SEQUENCEs in the 1988 module: they are told apart
/// by their first element (OCTET STRING vs OBJECT IDENTIFIER). The 2008 module tags
/// extendedFailInfo `[1]`; both forms decode, the untagged one is emitted (CMC-42).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtherStatusInfo {
    FailInfo(CmcFailInfo),
    PendInfo(PendInfo),
    ExtendedFailInfo(ExtendedFailInfo),
}

impl<'a> Decode<'a> for OtherStatusInfo {
    type Error = der::Error;
    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        let any = Any::decode(reader)?;
        match any.tag() {
            Tag::Integer => Ok(Self::FailInfo(any.decode_as()?)),
            Tag::Sequence => {
                let first = any.value().first().copied();
                if first == Some(0x04) {
                    Ok(Self::PendInfo(any.decode_as()?))
                } else {
                    Ok(Self::ExtendedFailInfo(any.decode_as()?))
                }
            }
            Tag::ContextSpecific {
                number,
                constructed: true,
            } if number.value() == 1 => {
                // [1] IMPLICIT ExtendedFailInfo: the value is the SEQUENCE's content.
                let mut inner = der::SliceReader::new(any.value())?;
                let fail_info_oid = Oid::decode(&mut inner)?;
                let fail_info_value = Any::decode(&mut inner)?;
                inner.finish()?;
                Ok(Self::ExtendedFailInfo(ExtendedFailInfo {
                    fail_info_oid,
                    fail_info_value,
                }))
            }
            tag => Err(der::ErrorKind::TagUnexpected {
                expected: None,
                actual: tag,
            }
            .into()),
        }
    }
}

impl Encode for OtherStatusInfo {
    fn encoded_len(&self) -> der::Result<Length> {
        match self {
            Self::FailInfo(f) => f.encoded_len(),
            Self::PendInfo(p) => p.encoded_len(),
            Self::ExtendedFailInfo(e) => e.encoded_len(),
        }
    }
    fn encode(&self, writer: &mut impl Writer) -> der::Result<()> {
        match self {
            Self::FailInfo(f) => f.encode(writer),
            Self::PendInfo(p) => p.encode(writer),
            Self::ExtendedFailInfo(e) => e.encode(writer),
        }
    }
}

/// ```text
/// CMCStatusInfoV2 ::= SEQUENCE {
///    cMCStatus             CMCStatus,
///    bodyList              SEQUENCE SIZE (1..MAX) OF BodyPartReference,
///    statusString          UTF8String OPTIONAL,
///    otherInfo             OtherStatusInfo OPTIONAL }
/// ```
/// (CMC-35, CMC-36)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmcStatusInfoV2 {
    pub status: CmcStatus,
    pub body_list: Vec<BodyPartReference>,
    pub status_string: Option<String>,
    pub other_info: Option<OtherStatusInfo>,
}

impl<'a> DecodeValue<'a> for CmcStatusInfoV2 {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
        let status = CmcStatus::decode(reader)?;
        let body_list = Vec::<BodyPartReference>::decode(reader)?;
        if body_list.is_empty() {
            return Err(der::ErrorKind::Value { tag: Tag::Sequence }.into());
        }
        let mut status_string = None;
        if Tag::peek(reader).ok() == Some(Tag::Utf8String) {
            status_string = Some(Utf8StringRef::decode(reader)?.as_str().to_owned());
        }
        let other_info = if reader.is_finished() {
            None
        } else {
            Some(OtherStatusInfo::decode(reader)?)
        };
        Ok(Self {
            status,
            body_list,
            status_string,
            other_info,
        })
    }
}

impl EncodeValue for CmcStatusInfoV2 {
    fn value_len(&self) -> der::Result<Length> {
        let mut len = (self.status.encoded_len()? + self.body_list.encoded_len()?)?;
        if let Some(s) = &self.status_string {
            len = (len + Utf8StringRef::new(s)?.encoded_len()?)?;
        }
        if let Some(o) = &self.other_info {
            len = (len + o.encoded_len()?)?;
        }
        Ok(len)
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.status.encode(writer)?;
        self.body_list.encode(writer)?;
        if let Some(s) = &self.status_string {
            Utf8StringRef::new(s)?.encode(writer)?;
        }
        if let Some(o) = &self.other_info {
            o.encode(writer)?;
        }
        Ok(())
    }
}

impl FixedTag for CmcStatusInfoV2 {
    const TAG: Tag = Tag::Sequence;
}

/// The version 1 `CMCStatusInfo` (RFC 5272 §6.1.2), decoded for old responses (CMC-35).
/// ```text
/// CMCStatusInfo ::= SEQUENCE {
///     cMCStatus       CMCStatus,
///     bodyList        SEQUENCE SIZE (1..MAX) OF BodyPartID,
///     statusString    UTF8String OPTIONAL,
///     otherInfo       CHOICE { failInfo CMCFailInfo, pendInfo PendInfo } OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmcStatusInfo {
    pub status: CmcStatus,
    pub body_list: Vec<BodyPartId>,
    pub status_string: Option<String>,
    pub other_info: Option<OtherStatusInfo>,
}

impl<'a> DecodeValue<'a> for CmcStatusInfo {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let v2 = CmcStatusInfoV2::decode_value(reader, header)?;
        let body_list = v2
            .body_list
            .iter()
            .map(|r| match r {
                BodyPartReference::Id(id) => Ok(*id),
                BodyPartReference::Path(_) => {
                    Err(der::Error::from(der::ErrorKind::TagUnexpected {
                        expected: Some(Tag::Integer),
                        actual: Tag::Sequence,
                    }))
                }
            })
            .collect::<der::Result<Vec<_>>>()?;
        if matches!(v2.other_info, Some(OtherStatusInfo::ExtendedFailInfo(_))) {
            return Err(der::ErrorKind::Value { tag: Tag::Sequence }.into());
        }
        Ok(Self {
            status: v2.status,
            body_list,
            status_string: v2.status_string,
            other_info: v2.other_info,
        })
    }
}

impl FixedTag for CmcStatusInfo {
    const TAG: Tag = Tag::Sequence;
}

/// A transactionId value (`TransactionId ::= INTEGER`, CMC-50), kept as the DER INTEGER so
/// any size echoes unchanged.
pub type TransactionId = Int;
