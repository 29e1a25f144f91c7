//! SMIMECapabilities (RFC 5751 §2.5.2) and the choice of algorithms for server-side key
//! delivery from a client's list (RFC 7030 §4.4.1, SKG-23).
use der::asn1::ObjectIdentifier;
use der::{Any, Decode, Encode, Sequence};
use openssl::pkey::{HasPublic, Id, PKeyRef};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use crate::alg::{ContentEncryption, KeyWrap, RsaesOaepParams, rsa_param_hashes};
use crate::enveloped::KeyTransport;
use crate::error::{CmsError, Result};
use crate::kari::KeyAgreeKdf;
use crate::oids;

/// ```text
/// SMIMECapability ::= SEQUENCE {
///   capabilityID OBJECT IDENTIFIER,
///   parameters ANY DEFINED BY capabilityID OPTIONAL }
/// ```
/// RFC 5751 §2.5.2.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SmimeCapability {
    /// capabilityID.
    pub capability_id: ObjectIdentifier,
    /// parameters.
    pub parameters: Option<Any>,
}

/// `SMIMECapabilities ::= SEQUENCE OF SMIMECapability` (RFC 5751 §2.5.2), in the sender's
/// order of preference.
pub type SmimeCapabilities = Vec<SmimeCapability>;

/// Decode one DER SMIMECapabilities value.
pub fn decode_smime_capabilities(der: &[u8]) -> Result<SmimeCapabilities> {
    Ok(SmimeCapabilities::from_der(der)?)
}

/// The capabilities of an smimeCapabilities attribute (exactly one value).
pub fn smime_capabilities_from_attribute(attr: &Attribute) -> Result<SmimeCapabilities> {
    if attr.oid != oids::ID_SMIME_CAPABILITIES {
        return Err(CmsError::malformed(format!(
            "attribute {} is not smimeCapabilities",
            attr.oid
        )));
    }
    let mut values = attr.values.iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(v.decode_as()?),
        _ => Err(CmsError::malformed(
            "smimeCapabilities must have exactly one value",
        )),
    }
}

/// An smimeCapabilities attribute carrying `caps`.
pub fn smime_capabilities_attribute(caps: &[SmimeCapability]) -> Result<Attribute> {
    let value = Any::from_der(&caps.to_vec().to_der()?)?;
    Ok(Attribute {
        oid: oids::ID_SMIME_CAPABILITIES,
        values: der::asn1::SetOfVec::try_from(vec![value])?,
    })
}

/// The first AES-CBC content-encryption algorithm the client lists; AES-256-CBC when it sent
/// no list; `None` when the list has none we support.
pub fn pick_content_encryption(caps: Option<&[SmimeCapability]>) -> Option<ContentEncryption> {
    match caps {
        None => Some(ContentEncryption::Aes256Cbc),
        Some(c) => c
            .iter()
            .find_map(|cap| ContentEncryption::from_oid(&cap.capability_id)),
    }
}

/// The first AES key-wrap algorithm listed; AES-256 wrap when no list.
pub fn pick_key_wrap(caps: Option<&[SmimeCapability]>) -> Option<KeyWrap> {
    match caps {
        None => Some(KeyWrap::Aes256),
        Some(c) => c
            .iter()
            .find_map(|cap| KeyWrap::from_oid(&cap.capability_id)),
    }
}

/// The first RSA key-transport algorithm listed; OAEP with SHA-256 when no list.
/// id-RSAES-OAEP without parameters (or with the default ones) means SHA-1 OAEP.
pub fn pick_key_transport(caps: Option<&[SmimeCapability]>) -> Option<KeyTransport> {
    let Some(c) = caps else {
        return Some(KeyTransport::RsaOaepSha256);
    };
    c.iter().find_map(|cap| match cap.capability_id {
        oids::RSA_ENCRYPTION => Some(KeyTransport::RsaPkcs1v15),
        oids::ID_RSAES_OAEP => oaep_variant(cap.parameters.as_ref()),
        _ => None,
    })
}

fn oaep_variant(params: Option<&Any>) -> Option<KeyTransport> {
    let p: RsaesOaepParams = match params {
        Some(a) if !a.is_null() => a.decode_as().ok()?,
        _ => RsaesOaepParams::default(),
    };
    if p.p_source_algorithm.is_some() {
        return None;
    }
    let (md, mgf) =
        rsa_param_hashes(p.hash_algorithm.as_ref(), p.mask_gen_algorithm.as_ref()).ok()?;
    let sha1 = openssl::hash::MessageDigest::sha1();
    let sha256 = openssl::hash::MessageDigest::sha256();
    match (md.type_(), mgf.type_()) {
        (a, b) if a == sha1.type_() && b == sha1.type_() => Some(KeyTransport::RsaOaepSha1),
        (a, b) if a == sha256.type_() && b == sha256.type_() => Some(KeyTransport::RsaOaepSha256),
        _ => None,
    }
}

/// The ECDH scheme and key wrap for a recipient EC key. With a list: the first listed
/// dhSinglePass-stdDH-sha256/384/512kdf scheme, its key wrap taken from the capability's
/// parameters (a KeyWrapAlgorithm, RFC 5753 §7.2) or else from the listed wrap algorithms.
/// Without a list: sha256kdf for P-256, sha384kdf for P-384, with AES-256 wrap. `None` for
/// non-EC keys or when nothing listed is supported.
pub fn pick_key_agreement<T: HasPublic>(
    caps: Option<&[SmimeCapability]>,
    recipient_key: &PKeyRef<T>,
) -> Option<(KeyAgreeKdf, KeyWrap)> {
    if recipient_key.id() != Id::EC {
        return None;
    }
    let Some(c) = caps else {
        let bits = recipient_key.bits();
        let kdf = if bits > 256 {
            KeyAgreeKdf::Sha384
        } else {
            KeyAgreeKdf::Sha256
        };
        return Some((kdf, KeyWrap::Aes256));
    };
    c.iter().find_map(|cap| {
        let kdf = KeyAgreeKdf::from_oid(&cap.capability_id)?;
        let wrap = match &cap.parameters {
            Some(p) => {
                let a: AlgorithmIdentifierOwned = p.decode_as().ok()?;
                KeyWrap::from_oid(&a.oid)?
            }
            None => pick_key_wrap(caps)?,
        };
        Some((kdf, wrap))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::alg::{alg, alg_with};

    fn cap(oid: ObjectIdentifier, params: Option<Any>) -> SmimeCapability {
        SmimeCapability {
            capability_id: oid,
            parameters: params,
        }
    }

    #[test]
    fn round_trips_byte_equal_through_the_attribute() {
        let caps = vec![
            cap(oids::AES128_CBC, None),
            cap(
                oids::ID_RSAES_OAEP,
                Some(Any::encode_from(&RsaesOaepParams::default()).unwrap()),
            ),
            cap(
                oids::DH_SINGLE_PASS_STD_DH_SHA256KDF,
                Some(Any::encode_from(&alg(oids::AES128_WRAP)).unwrap()),
            ),
        ];
        let der = caps.to_der().unwrap();
        let back = decode_smime_capabilities(&der).unwrap();
        assert_eq!(back, caps);
        assert_eq!(back.to_der().unwrap(), der);
        let attr = smime_capabilities_attribute(&caps).unwrap();
        let attr_der = attr.to_der().unwrap();
        let attr_back = Attribute::from_der(&attr_der).unwrap();
        assert_eq!(attr_back.to_der().unwrap(), attr_der);
        assert_eq!(smime_capabilities_from_attribute(&attr_back).unwrap(), caps);
    }

    #[test]
    fn decodes_rfc5751_style_list() {
        // SEQUENCE { SEQUENCE { aes256-CBC }, SEQUENCE { rsaEncryption, NULL } }
        let der = hex_literal("301c300b060960864801650304012a300d06092a864886f70d0101010500");
        let caps = decode_smime_capabilities(&der).unwrap();
        assert_eq!(caps.len(), 2);
        assert_eq!(
            pick_content_encryption(Some(&caps)),
            Some(ContentEncryption::Aes256Cbc)
        );
        assert_eq!(
            pick_key_transport(Some(&caps)),
            Some(KeyTransport::RsaPkcs1v15)
        );
        assert_eq!(pick_key_wrap(Some(&caps)), None);
        assert!(decode_smime_capabilities(&der[..der.len() - 1]).is_err());
    }

    fn hex_literal(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn picks_first_supported_in_client_order() {
        let sha256_oaep = RsaesOaepParams {
            hash_algorithm: Some(alg(oids::ID_SHA256)),
            mask_gen_algorithm: Some(alg_with(
                oids::ID_MGF1,
                Any::encode_from(&alg(oids::ID_SHA256)).unwrap(),
            )),
            p_source_algorithm: None,
        };
        let caps = vec![
            cap(ObjectIdentifier::new_unwrap("1.2.840.113549.3.7"), None), // des-ede3-cbc
            cap(oids::AES192_WRAP, None),
            cap(oids::AES128_CBC, None),
            cap(
                oids::ID_RSAES_OAEP,
                Some(Any::encode_from(&sha256_oaep).unwrap()),
            ),
            cap(oids::RSA_ENCRYPTION, None),
            cap(oids::DH_SINGLE_PASS_STD_DH_SHA384KDF, None),
            cap(oids::AES256_CBC, None),
        ];
        assert_eq!(
            pick_content_encryption(Some(&caps)),
            Some(ContentEncryption::Aes128Cbc)
        );
        assert_eq!(pick_key_wrap(Some(&caps)), Some(KeyWrap::Aes192));
        assert_eq!(
            pick_key_transport(Some(&caps)),
            Some(KeyTransport::RsaOaepSha256)
        );
        let ec = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            pick_key_agreement(Some(&caps), &ec),
            Some((KeyAgreeKdf::Sha384, KeyWrap::Aes192))
        );
        let only_oaep_default = vec![cap(oids::ID_RSAES_OAEP, None)];
        assert_eq!(
            pick_key_transport(Some(&only_oaep_default)),
            Some(KeyTransport::RsaOaepSha1)
        );
        let nothing = vec![cap(oids::ID_SHA256, None)];
        assert_eq!(pick_content_encryption(Some(&nothing)), None);
        assert_eq!(pick_key_transport(Some(&nothing)), None);
        assert_eq!(pick_key_agreement(Some(&nothing), &ec), None);
    }

    #[test]
    fn defaults_without_a_list() {
        assert_eq!(
            pick_content_encryption(None),
            Some(ContentEncryption::Aes256Cbc)
        );
        assert_eq!(pick_key_wrap(None), Some(KeyWrap::Aes256));
        assert_eq!(pick_key_transport(None), Some(KeyTransport::RsaOaepSha256));
        for (nid, kdf) in [
            (openssl::nid::Nid::X9_62_PRIME256V1, KeyAgreeKdf::Sha256),
            (openssl::nid::Nid::SECP384R1, KeyAgreeKdf::Sha384),
        ] {
            let k = openssl::pkey::PKey::from_ec_key(
                openssl::ec::EcKey::generate(&openssl::ec::EcGroup::from_curve_name(nid).unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(pick_key_agreement(None, &k), Some((kdf, KeyWrap::Aes256)));
        }
        let rsa =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        assert_eq!(pick_key_agreement(None, &rsa), None);
    }
}
