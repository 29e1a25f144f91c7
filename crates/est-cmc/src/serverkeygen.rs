//! CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02; REQUIREMENTS
//! §2.12, SKGD-1..SKGD-44): the draft's types, its OIDs (unassigned, so configurable:
//! [`SkgOids`]), and the I/O-free logic of both sides.
//!
//! - [`server`]: reading a ServerKeyGenRequest out of a verified PKIData (SKGD-1..SKGD-10,
//!   SKGD-15), the name and certificate checks the server runs with the authenticated
//!   identity (SKGD-12, SKGD-13, SKGD-16), the delivery plan and seal of the generated key
//!   (SKGD-8, SKGD-14, SKGD-18, SKGD-19) and the response controls (SKGD-22, SKGD-25).
//! - [`client`]: building the request (SKGD-1..SKGD-3, SKGD-9, SKGD-17) and opening the
//!   response (SKGD-24).
//!
//! The draft's ASN.1 module declares no tagging default, so EXPLICIT tagging applies (§2.12,
//! §2.14 item 9): `certIdentifier [1]` and `bareKey [2]` are explicit tags.
use der::asn1::SetOfVec;
use der::{Any, Choice, Decode, Encode, Sequence};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::oid::{Oid, OidError};
use crate::types::{BodyPartId, ExtendedFailInfo, TaggedRequest};

pub mod client;
pub mod server;

pub use cms::signed_data::SignerIdentifier;

/// The five OIDs of the draft, all `TBD` there and never assigned by IANA (§2.12: from
/// configuration, defaulting to a private arc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkgOids {
    /// id-cmc-serverKeyGenRequest (SKGD-1).
    pub server_key_gen_request: Oid,
    /// id-cmc-serverKeyGenResponse (SKGD-22).
    pub server_key_gen_response: Oid,
    /// id-alg-shroudWithPublicKey (SKGD-6, SKGD-11).
    pub shroud_with_public_key: Oid,
    /// id-alg-shroudWithSharedSecret (SKGD-6, SKGD-15).
    pub shroud_with_shared_secret: Oid,
    /// id-cet-serverKeyGen, the failInfoOID of the draft's errors (SKGD-25).
    pub cet_server_key_gen: Oid,
}

impl SkgOids {
    /// Estuary's private arc (X.667 UUID arc): the defaults sit under it.
    pub const ESTUARY_ARC: &'static str = "2.25.35258263107720737511850855134089286928";

    /// The OIDs under `arc`: requests `arc.1.1`, responses `arc.1.2`, shroud with public key
    /// `arc.2.1`, with shared secret `arc.2.2`, error type `arc.3.1`.
    pub fn under_arc(arc: &str) -> Result<Self, OidError> {
        let a: Oid = arc.parse()?;
        let two = |x: u128, y: u128| a.child(x).child(y);
        Ok(Self {
            server_key_gen_request: two(1, 1),
            server_key_gen_response: two(1, 2),
            shroud_with_public_key: two(2, 1),
            shroud_with_shared_secret: two(2, 2),
            cet_server_key_gen: two(3, 1),
        })
    }

    /// Five OIDs given one by one (e.g. should IANA ever assign them). They must differ.
    pub fn new(
        server_key_gen_request: Oid,
        server_key_gen_response: Oid,
        shroud_with_public_key: Oid,
        shroud_with_shared_secret: Oid,
        cet_server_key_gen: Oid,
    ) -> Result<Self, String> {
        let o = Self {
            server_key_gen_request,
            server_key_gen_response,
            shroud_with_public_key,
            shroud_with_shared_secret,
            cet_server_key_gen,
        };
        let all = [
            &o.server_key_gen_request,
            &o.server_key_gen_response,
            &o.shroud_with_public_key,
            &o.shroud_with_shared_secret,
            &o.cet_server_key_gen,
        ];
        for (i, a) in all.iter().enumerate() {
            if all[i + 1..].contains(a) {
                return Err(format!("server keygen OID {a} is configured twice"));
            }
        }
        Ok(o)
    }
}

/// Content octets of [`SkgOids::ESTUARY_ARC`] (checked against the dotted form in a test).
const ESTUARY_ARC_CONTENT: &[u8] = &[
    0x69, 0xb5, 0x86, 0xbf, 0xa5, 0xb4, 0x87, 0xc2, 0x87, 0x81, 0xb3, 0x89, 0xec, 0x86, 0xb1, 0xcf,
    0xc6, 0xaa, 0x10,
];

impl Default for SkgOids {
    /// The OIDs under [`Self::ESTUARY_ARC`]: `A.1.1`, `A.1.2`, `A.2.1`, `A.2.2`, `A.3.1`.
    fn default() -> Self {
        let a = Oid::from_trusted_content(ESTUARY_ARC_CONTENT);
        let two = |x: u128, y: u128| a.child(x).child(y);
        Self {
            server_key_gen_request: two(1, 1),
            server_key_gen_response: two(1, 2),
            shroud_with_public_key: two(2, 1),
            shroud_with_shared_secret: two(2, 2),
            cet_server_key_gen: two(3, 1),
        }
    }
}

/// ```text
/// ServerKeyGenRequest ::= SEQUENCE {
///   certificateRequest TaggedRequest,
///   shroudMethod      ShroudMethod,
///   algCapabilities   SMimeCapabilities,
///   archiveKey        BOOLEAN DEFAULT TRUE }
/// ```
/// (draft §6.1; SKGD-1, SKGD-2). algCapabilities decodes as optional and our builder always
/// sets it (SKGD-9): the text makes it OPTIONAL, the module mandatory.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ServerKeyGenRequest {
    pub certificate_request: TaggedRequest,
    pub shroud_method: ShroudMethod,
    #[asn1(optional = "true")]
    pub alg_capabilities: Option<Vec<SkgCapability>>,
    #[asn1(default = "default_true")]
    pub archive_key: bool,
}

fn default_true() -> bool {
    true
}

/// `ShroudMethod ::= AlgorithmIdentifier { SHROUD-ALGORITHM, { ShroudAlgorithmSet } }`
/// (draft §4, SKGD-6). The algorithm is a wide [`Oid`]: the shroud OIDs are configurable.
/// Both defined methods take mandatory parameters: [`ShroudWithPublicKey`] or
/// [`ShroudWithSharedSecret`].
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ShroudMethod {
    pub algorithm: Oid,
    #[asn1(optional = "true")]
    pub parameters: Option<Any>,
}

/// An SMIMECapability (RFC 5751 §2.5.2) whose capabilityID may be wide: the draft lets a
/// client list the shroud methods themselves (`SMIME-CAPS { IDENTIFIED BY
/// id-alg-shroudWithPublicKey }`), which are configured OIDs.
/// ```text
/// SMIMECapability ::= SEQUENCE {
///   capabilityID OBJECT IDENTIFIER,
///   parameters ANY DEFINED BY capabilityID OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SkgCapability {
    pub capability_id: Oid,
    #[asn1(optional = "true")]
    pub parameters: Option<Any>,
}

impl SkgCapability {
    /// The capability as est-cms knows it, when its OID fits `const-oid` (every algorithm
    /// est-cms implements does).
    pub fn to_smime(&self) -> Option<est_cms::SmimeCapability> {
        Some(est_cms::SmimeCapability {
            capability_id: self.capability_id.to_const()?,
            parameters: self.parameters.clone(),
        })
    }
}

impl From<est_cms::SmimeCapability> for SkgCapability {
    fn from(c: est_cms::SmimeCapability) -> Self {
        Self {
            capability_id: c.capability_id.into(),
            parameters: c.parameters,
        }
    }
}

/// ```text
/// ShroudWithPublicKey ::= CHOICE {
///     certificate          Certificate,
///     certIdentifier [1] SignerIdentifier,
///     bareKey [2] SEQUENCE {
///         publicKey SubjectPublicKeyInfo,
///         ski        SubjectKeyIdentifier } }
/// ```
/// (draft §4.1, SKGD-11; EXPLICIT tags, §2.14 item 9)
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
#[allow(clippy::large_enum_variant)]
pub enum ShroudWithPublicKey {
    Certificate(Certificate),
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    CertIdentifier(SignerIdentifier),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    BareKey(BareKey),
}

/// The `bareKey` alternative of [`ShroudWithPublicKey`] (SKGD-14: ski becomes the recipient
/// identifier).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct BareKey {
    pub public_key: SubjectPublicKeyInfoOwned,
    pub ski: SubjectKeyIdentifier,
}

/// `ShroudWithSharedSecret ::= UTF8String`: names the shared secret the key is protected
/// with (draft §4.2, SKGD-15).
pub type ShroudWithSharedSecret = String;

/// The parameters of a shroudMethod, decoded by its OID.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Shroud {
    PublicKey(ShroudWithPublicKey),
    SharedSecret(ShroudWithSharedSecret),
}

impl Shroud {
    /// The ShroudMethod AlgorithmIdentifier under `oids`.
    pub fn to_method(&self, oids: &SkgOids) -> der::Result<ShroudMethod> {
        let (algorithm, parameters) = match self {
            Self::PublicKey(p) => (oids.shroud_with_public_key.clone(), Any::encode_from(p)?),
            Self::SharedSecret(s) => (
                oids.shroud_with_shared_secret.clone(),
                Any::encode_from(&der::asn1::Utf8StringRef::new(s)?)?,
            ),
        };
        Ok(ShroudMethod {
            algorithm,
            parameters: Some(parameters),
        })
    }
}

/// ```text
/// ServerKeyGenResponse ::= SEQUENCE {
///   cmsBodyPartId      BodyPartID,
///   requestBodyPartId  BodyPartID,
///   signerIdentifier    SignerIdentifier }
/// ```
/// (draft §6.2, SKGD-22)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ServerKeyGenResponse {
    pub cms_body_part_id: BodyPartId,
    pub request_body_part_id: BodyPartId,
    pub signer_identifier: SignerIdentifier,
}

/// ```text
/// ErrorList ::= INTEGER {
///   archiveNotSupported (1),
///   badCertificate (2),
///   badSharedSecret (3) }
/// ```
/// The failInfoValue of an extendedFailInfo with failInfoOID id-cet-serverKeyGen (draft §7,
/// SKGD-25). Unknown values decode, for a client to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkgErrorCode(pub u32);

impl SkgErrorCode {
    pub const ARCHIVE_NOT_SUPPORTED: Self = Self(1);
    pub const BAD_CERTIFICATE: Self = Self(2);
    pub const BAD_SHARED_SECRET: Self = Self(3);

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "archiveNotSupported",
            2 => "badCertificate",
            3 => "badSharedSecret",
            _ => "unknown server keygen error",
        }
    }

    /// The extendedFailInfo carrying this code (SKGD-25).
    pub fn extended_fail_info(self, oids: &SkgOids) -> der::Result<ExtendedFailInfo> {
        Ok(ExtendedFailInfo {
            fail_info_oid: oids.cet_server_key_gen.clone(),
            fail_info_value: Any::encode_from(&self)?,
        })
    }

    /// The code an extendedFailInfo carries, if its failInfoOID is id-cet-serverKeyGen.
    pub fn from_extended(e: &ExtendedFailInfo, oids: &SkgOids) -> Option<Self> {
        if e.fail_info_oid != oids.cet_server_key_gen {
            return None;
        }
        e.fail_info_value.decode_as().ok()
    }
}

crate::types::integer_newtype!(SkgErrorCode);

/// id-aa-contentHint (RFC 2634 §2.9).
pub const ID_AA_CONTENT_HINT: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.4");

/// ```text
/// ContentHints ::= SEQUENCE {
///   contentDescription UTF8String (SIZE (1..MAX)) OPTIONAL,
///   contentType ContentType }
/// ```
/// (RFC 2634 §2.9)
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ContentHints {
    #[asn1(optional = "true")]
    pub content_description: Option<String>,
    pub content_type: const_oid::ObjectIdentifier,
}

/// A Content Hints signed attribute naming the innermost content, id-ct-KP-aKeyPackage, for
/// the outer SignedData of a response that returns keys (SKGD-20, a MAY): pass it in
/// `est_cms::SignOptions::signed_attributes`.
pub fn key_package_content_hints() -> der::Result<x509_cert::attr::Attribute> {
    let hints = ContentHints {
        content_description: None,
        content_type: est_cms::oids::ID_CT_KP_A_KEY_PACKAGE,
    };
    Ok(x509_cert::attr::Attribute {
        oid: ID_AA_CONTENT_HINT,
        values: SetOfVec::try_from(vec![Any::encode_from(&hints)?])?,
    })
}

/// The one value of a control, decoded as `T`.
pub fn control_value<T>(attr: &crate::types::TaggedAttribute) -> Result<T, String>
where
    T: for<'a> Decode<'a, Error = der::Error>,
{
    let values: &SetOfVec<Any> = &attr.attr_values;
    let mut it = values.iter();
    match (it.next(), it.next()) {
        (Some(v), None) => v
            .to_der()
            .and_then(|d| T::from_der(&d))
            .map_err(|e| e.to_string()),
        _ => Err("a server keygen control has exactly one value".into()),
    }
}

#[cfg(test)]
mod tests;
