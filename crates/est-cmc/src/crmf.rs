//! The parts of CRMF (RFC 4211) that CMC uses (RFC 5272 §3.2.1.2.2): CertReqMsg, CertRequest,
//! CertTemplate and ProofOfPossession. The module is `IMPLICIT TAGS`; tagged `Name` fields are
//! CHOICEs and so explicitly tagged (X.680 §31.2.7).
use der::asn1::{BitString, Int, Null, ObjectIdentifier};
use der::{
    Any, Choice, Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader,
    Sequence, Tag, Writer,
};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::time::Time;

/// ```text
/// CertReqMsg ::= SEQUENCE {
///     certReq   CertRequest,
///     popo      ProofOfPossession  OPTIONAL,
///     regInfo   SEQUENCE SIZE(1..MAX) OF AttributeTypeAndValue OPTIONAL }
/// ```
/// Decoding keeps the received encoding of `certReq`: the POP signature covers it (RFC 4211
/// §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertReqMsg {
    pub cert_req: CertRequest,
    pub popo: Option<ProofOfPossession>,
    pub reg_info: Option<Vec<AttributeTypeAndValue>>,
    /// DER of `certReq` as received (or as encoded, for a message built here).
    pub cert_req_der: Vec<u8>,
}

impl CertReqMsg {
    pub fn new(
        cert_req: CertRequest,
        popo: Option<ProofOfPossession>,
        reg_info: Option<Vec<AttributeTypeAndValue>>,
    ) -> der::Result<Self> {
        let cert_req_der = cert_req.to_der()?;
        Ok(Self {
            cert_req,
            popo,
            reg_info,
            cert_req_der,
        })
    }
}

impl<'a> DecodeValue<'a> for CertReqMsg {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
        let cert_req_der = reader.tlv_bytes()?.to_vec();
        let cert_req = CertRequest::from_der(&cert_req_der)?;
        let popo = match Tag::peek(reader).ok() {
            Some(Tag::Sequence) | None => None,
            Some(_) => Some(ProofOfPossession::decode(reader)?),
        };
        let reg_info = if reader.is_finished() {
            None
        } else {
            Some(Vec::<AttributeTypeAndValue>::decode(reader)?)
        };
        Ok(Self {
            cert_req,
            popo,
            reg_info,
            cert_req_der,
        })
    }
}

impl EncodeValue for CertReqMsg {
    fn value_len(&self) -> der::Result<Length> {
        let mut len = Length::try_from(self.cert_req_der.len())?;
        if let Some(p) = &self.popo {
            len = (len + p.encoded_len()?)?;
        }
        if let Some(r) = &self.reg_info {
            len = (len + r.encoded_len()?)?;
        }
        Ok(len)
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.cert_req_der)?;
        if let Some(p) = &self.popo {
            p.encode(writer)?;
        }
        if let Some(r) = &self.reg_info {
            r.encode(writer)?;
        }
        Ok(())
    }
}

impl FixedTag for CertReqMsg {
    const TAG: Tag = Tag::Sequence;
}

/// ```text
/// CertRequest ::= SEQUENCE {
///     certReqId     INTEGER,
///     certTemplate  CertTemplate,
///     controls      Controls OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertRequest {
    pub cert_req_id: Int,
    pub cert_template: CertTemplate,
    pub controls: Option<Vec<AttributeTypeAndValue>>,
}

impl CertRequest {
    /// certReqId as a BodyPartID (CMC-6), if it is one.
    pub fn body_part_id(&self) -> Option<u32> {
        self.cert_req_id
            .to_der()
            .ok()
            .and_then(|d| u32::from_der(&d).ok())
    }
}

/// ```text
/// CertTemplate ::= SEQUENCE {
///     version      [0] Version               OPTIONAL,
///     serialNumber [1] INTEGER               OPTIONAL,
///     signingAlg   [2] AlgorithmIdentifier   OPTIONAL,
///     issuer       [3] Name                  OPTIONAL,
///     validity     [4] OptionalValidity      OPTIONAL,
///     subject      [5] Name                  OPTIONAL,
///     publicKey    [6] SubjectPublicKeyInfo  OPTIONAL,
///     issuerUID    [7] UniqueIdentifier      OPTIONAL,
///     subjectUID   [8] UniqueIdentifier      OPTIONAL,
///     extensions   [9] Extensions            OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence, Default)]
pub struct CertTemplate {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub version: Option<u8>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub serial_number: Option<Int>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub signing_alg: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub issuer: Option<Name>,
    #[asn1(context_specific = "4", tag_mode = "IMPLICIT", optional = "true")]
    pub validity: Option<OptionalValidity>,
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    pub subject: Option<Name>,
    #[asn1(context_specific = "6", tag_mode = "IMPLICIT", optional = "true")]
    pub public_key: Option<SubjectPublicKeyInfoOwned>,
    #[asn1(context_specific = "7", tag_mode = "IMPLICIT", optional = "true")]
    pub issuer_uid: Option<BitString>,
    #[asn1(context_specific = "8", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_uid: Option<BitString>,
    #[asn1(context_specific = "9", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// ```text
/// OptionalValidity ::= SEQUENCE {
///     notBefore  [0] Time OPTIONAL,
///     notAfter   [1] Time OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OptionalValidity {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub not_before: Option<Time>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub not_after: Option<Time>,
}

/// `AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }` (RFC 4211 §5).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct AttributeTypeAndValue {
    pub oid: ObjectIdentifier,
    pub value: Any,
}

/// ```text
/// ProofOfPossession ::= CHOICE {
///     raVerified        [0] NULL,
///     signature         [1] POPOSigningKey,
///     keyEncipherment   [2] POPOPrivKey,
///     keyAgreement      [3] POPOPrivKey }
/// ```
/// POPOPrivKey is a CHOICE, so [2] and [3] are explicit; their content is kept as DER.
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum ProofOfPossession {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    RaVerified(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Signature(PopoSigningKey),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    KeyEncipherment(Any),
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", constructed = "true")]
    KeyAgreement(Any),
}

/// ```text
/// POPOSigningKey ::= SEQUENCE {
///     poposkInput          [0] POPOSigningKeyInput OPTIONAL,
///     algorithmIdentifier  AlgorithmIdentifier,
///     signature            BIT STRING }
/// ```
/// CMC forbids poposkInput (CMC-14); it is kept as DER only to be detected and refused.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PopoSigningKey {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub poposk_input: Option<SequenceBody>,
    pub algorithm_identifier: AlgorithmIdentifierOwned,
    pub signature: BitString,
}

/// The content octets of a SEQUENCE this crate does not model (`POPOSigningKeyInput`), kept
/// so that it re-encodes unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceBody(pub Vec<u8>);

impl<'a> DecodeValue<'a> for SequenceBody {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        Ok(Self(reader.read_vec(header.length())?))
    }
}

impl EncodeValue for SequenceBody {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl FixedTag for SequenceBody {
    const TAG: Tag = Tag::Sequence;
}
