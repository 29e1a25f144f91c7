//! ASN.1 types for EST that no published crate has, derived with `der`; no I/O.
use const_oid::ObjectIdentifier;
use der::Sequence;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralNames;
use x509_cert::name::Name;

pub mod ocsp;

pub mod oids {
    //! Object identifiers used by EST (REQUIREMENTS §2.13).
    use const_oid::ObjectIdentifier as O;
    pub const CHALLENGE_PASSWORD: O = O::new_unwrap("1.2.840.113549.1.9.7");
    pub const EXTENSION_REQUEST: O = O::new_unwrap("1.2.840.113549.1.9.14");
    pub const SMIME_CAPABILITIES: O = O::new_unwrap("1.2.840.113549.1.9.15");
    pub const DECRYPT_KEY_ID: O = O::new_unwrap("1.2.840.113549.1.9.16.2.37");
    pub const ASYMM_DECRYPT_KEY_ID: O = O::new_unwrap("1.2.840.113549.1.9.16.2.54");
    pub const CHANGE_SUBJECT_NAME: O = O::new_unwrap("1.3.6.1.5.5.7.7.36");
    pub const KP_CMC_CA: O = O::new_unwrap("1.3.6.1.5.5.7.3.27");
    pub const KP_CMC_RA: O = O::new_unwrap("1.3.6.1.5.5.7.3.28");
    pub const KP_CMC_ARCHIVE: O = O::new_unwrap("1.3.6.1.5.5.7.3.29");
    pub const CT_KP_AKEY_PACKAGE: O = O::new_unwrap("2.16.840.1.101.2.1.2.78.5");
    pub const MAC_ADDRESS: O = O::new_unwrap("1.3.6.1.1.1.1.22");
    pub const ID_DATA: O = O::new_unwrap("1.2.840.113549.1.7.1");
    pub const ID_SIGNED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.2");
}

/// `AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }` (RFC 8951 §4, EST-104).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrOrOid {
    Oid(ObjectIdentifier),
    Attribute(Attribute),
    /// A well-formed entry whose OID this library cannot represent, kept as DER so it
    /// re-encodes unchanged. RFC 7030 App. A.2 has such private OIDs (`2.999.1`: the second arc
    /// of a `2.` OID above 39 is beyond `const-oid`). Clients ignore what they do not
    /// recognise (EST-106, EST-111).
    Other(der::Any),
}

impl<'a> der::Decode<'a> for AttrOrOid {
    type Error = der::Error;
    fn decode<R: der::Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        use der::Tagged;
        let any = der::Any::decode(reader)?;
        match any.tag() {
            der::Tag::ObjectIdentifier => Ok(any
                .decode_as::<ObjectIdentifier>()
                .map(Self::Oid)
                .unwrap_or(Self::Other(any))),
            der::Tag::Sequence => Ok(any
                .decode_as::<Attribute>()
                .map(Self::Attribute)
                .unwrap_or(Self::Other(any))),
            tag => Err(der::Error::from(der::ErrorKind::TagUnexpected {
                expected: Some(der::Tag::Sequence),
                actual: tag,
            })),
        }
    }
}

impl der::Encode for AttrOrOid {
    fn encoded_len(&self) -> der::Result<der::Length> {
        match self {
            Self::Oid(o) => o.encoded_len(),
            Self::Attribute(a) => a.encoded_len(),
            Self::Other(any) => any.encoded_len(),
        }
    }
    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        match self {
            Self::Oid(o) => o.encode(writer),
            Self::Attribute(a) => a.encode(writer),
            Self::Other(any) => any.encode(writer),
        }
    }
}

/// `CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID` (RFC 8951 §4, EST-104).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CsrAttrs(pub Vec<AttrOrOid>);

impl<'a> der::DecodeValue<'a> for CsrAttrs {
    type Error = der::Error;
    fn decode_value<R: der::Reader<'a>>(reader: &mut R, header: der::Header) -> der::Result<Self> {
        Ok(Self(Vec::<AttrOrOid>::decode_value(reader, header)?))
    }
}

impl der::EncodeValue for CsrAttrs {
    fn value_len(&self) -> der::Result<der::Length> {
        self.0.value_len()
    }
    fn encode_value(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        self.0.encode_value(writer)
    }
}

impl der::FixedTag for CsrAttrs {
    const TAG: der::Tag = der::Tag::Sequence;
}

/// `ChangeSubjectName ::= SEQUENCE { subject Name OPTIONAL, subjectAlt GeneralNames OPTIONAL }`
/// (RFC 6402 §2.8, CMC-23).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ChangeSubjectName {
    #[asn1(optional = "true")]
    pub subject: Option<Name>,
    #[asn1(optional = "true")]
    pub subject_alt: Option<GeneralNames>,
}

/// Resolves a name (`challengePassword`, `secp384r1`, `ecdsa-with-SHA256`...) or a dotted OID.
pub fn oid_from_str(s: &str) -> Result<ObjectIdentifier, der::Error> {
    let named: &[(&str, ObjectIdentifier)] = &[
        ("challengePassword", oids::CHALLENGE_PASSWORD),
        ("extensionRequest", oids::EXTENSION_REQUEST),
        ("smimeCapabilities", oids::SMIME_CAPABILITIES),
        ("macAddress", oids::MAC_ADDRESS),
        ("id-ecPublicKey", const_oid::db::rfc5912::ID_EC_PUBLIC_KEY),
        ("rsaEncryption", const_oid::db::rfc5912::RSA_ENCRYPTION),
        ("secp256r1", const_oid::db::rfc5912::SECP_256_R_1),
        ("prime256v1", const_oid::db::rfc5912::SECP_256_R_1),
        ("secp384r1", const_oid::db::rfc5912::SECP_384_R_1),
        (
            "ecdsa-with-SHA256",
            const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
        ),
        (
            "ecdsa-with-SHA384",
            const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
        ),
        (
            "sha256WithRSAEncryption",
            const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        ),
        ("sha256", const_oid::db::rfc5912::ID_SHA_256),
        ("sha384", const_oid::db::rfc5912::ID_SHA_384),
        ("id-Ed25519", const_oid::db::rfc8410::ID_ED_25519),
    ];
    if let Some((_, o)) = named.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Ok(*o);
    }
    if let Some(o) = const_oid::db::DB.by_name(s) {
        return Ok(*o);
    }
    ObjectIdentifier::new(s).map_err(|_| der::Error::from(der::ErrorKind::OidMalformed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use der::{Decode, Encode};

    /// RFC 8951 §4 example (REQUIREMENTS vector V7), built from typed values, byte-exact.
    #[test]
    fn v7_encodes_byte_exactly() {
        use der::Any;
        use der::asn1::SetOfVec;
        let b64 = "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==";
        let expected = base64_decode(b64);
        let attrs = CsrAttrs(vec![
            AttrOrOid::Oid(oids::CHALLENGE_PASSWORD),
            AttrOrOid::Attribute(Attribute {
                oid: oid_from_str("id-ecPublicKey").unwrap(),
                values: SetOfVec::try_from(vec![
                    Any::encode_from(&oid_from_str("secp384r1").unwrap()).unwrap(),
                ])
                .unwrap(),
            }),
            AttrOrOid::Attribute(Attribute {
                oid: oids::EXTENSION_REQUEST,
                values: SetOfVec::try_from(vec![Any::encode_from(&oids::MAC_ADDRESS).unwrap()])
                    .unwrap(),
            }),
            AttrOrOid::Oid(oid_from_str("ecdsa-with-SHA384").unwrap()),
        ]);
        assert_eq!(attrs.to_der().unwrap(), expected);
        assert_eq!(CsrAttrs::from_der(&expected).unwrap(), attrs);
    }

    #[test]
    fn names_and_dotted() {
        assert_eq!(oid_from_str("1.2.3.4").unwrap().to_string(), "1.2.3.4");
        assert_eq!(
            oid_from_str("challengepassword").unwrap(),
            oids::CHALLENGE_PASSWORD
        );
        assert!(oid_from_str("no-such-name").is_err());
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for c in s.bytes().filter(|c| *c != b'=') {
            acc = (acc << 6) | A.iter().position(|x| *x == c).unwrap() as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}
