//! KeyAgreeRecipientInfo with ephemeral-static ECDH (RFC 5753 §3.1, RFC 5652 §6.2.2).
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo, OriginatorIdentifierOrKey,
    OriginatorPublicKey, RecipientEncryptedKey, RecipientKeyIdentifier,
};
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Any, Encode, Sequence};
use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcKey, EcPoint, PointConversionForm};
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{Id, PKey, Private, Public};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::Zeroizing;

use crate::alg::{KeyWrap, alg, alg_with};
use crate::enveloped::RecipientId;
use crate::error::{CmsError, Result};
use crate::oids;

/// The ECDH key-agreement scheme, named by its KDF hash (RFC 5753 §7.1.4).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAgreeKdf {
    /// dhSinglePass-stdDH-sha256kdf-scheme.
    Sha256,
    /// dhSinglePass-stdDH-sha384kdf-scheme.
    Sha384,
    /// dhSinglePass-stdDH-sha512kdf-scheme.
    Sha512,
}

impl KeyAgreeKdf {
    /// The scheme OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha256 => oids::DH_SINGLE_PASS_STD_DH_SHA256KDF,
            Self::Sha384 => oids::DH_SINGLE_PASS_STD_DH_SHA384KDF,
            Self::Sha512 => oids::DH_SINGLE_PASS_STD_DH_SHA512KDF,
        }
    }
    /// Look up by OID (the SHA-1 scheme is accepted by decryption only).
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            oids::DH_SINGLE_PASS_STD_DH_SHA256KDF => Some(Self::Sha256),
            oids::DH_SINGLE_PASS_STD_DH_SHA384KDF => Some(Self::Sha384),
            oids::DH_SINGLE_PASS_STD_DH_SHA512KDF => Some(Self::Sha512),
            _ => None,
        }
    }
    fn md(self) -> MessageDigest {
        match self {
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// ```text
/// ECC-CMS-SharedInfo ::= SEQUENCE {
///   keyInfo      AlgorithmIdentifier,
///   entityUInfo  [0] EXPLICIT OCTET STRING OPTIONAL,
///   suppPubInfo  [2] EXPLICIT OCTET STRING }
/// ```
/// RFC 5753 §7.2. suppPubInfo is the KEK length in bits, 32-bit big-endian.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct EccCmsSharedInfo {
    /// keyInfo: the key-wrap AlgorithmIdentifier.
    pub key_info: AlgorithmIdentifierOwned,
    /// entityUInfo: the ukm, when present.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub entity_u_info: Option<OctetString>,
    /// suppPubInfo.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    pub supp_pub_info: OctetString,
}

/// ANSI X9.63 KDF (SEC 1 §3.6.1) with the DER SharedInfo of RFC 5753 §7.2.
fn kek(
    md: MessageDigest,
    z: &[u8],
    wrap_alg: &AlgorithmIdentifierOwned,
    ukm: Option<&OctetString>,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let bits = u32::try_from(len * 8).map_err(|_| CmsError::invalid("KEK length"))?;
    let info = EccCmsSharedInfo {
        key_info: wrap_alg.clone(),
        entity_u_info: ukm.cloned(),
        supp_pub_info: OctetString::new(bits.to_be_bytes())?,
    }
    .to_der()?;
    let mut out = Zeroizing::new(Vec::with_capacity(len + md.size()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut h = Hasher::new(md)?;
        h.update(z)?;
        h.update(&counter.to_be_bytes())?;
        h.update(&info)?;
        out.extend_from_slice(&h.finish()?);
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}

/// Build a version-3 KeyAgreeRecipientInfo: a fresh ephemeral key on the recipient's curve,
/// originatorKey with id-ecPublicKey and absent parameters (RFC 5753 §3.1.1).
pub(crate) fn wrap(
    rid: &RecipientId,
    peer: &PKey<Public>,
    kdf: KeyAgreeKdf,
    wrap: KeyWrap,
    ukm: Option<&[u8]>,
    cek: &[u8],
) -> Result<KeyAgreeRecipientInfo> {
    if peer.id() != Id::EC {
        return Err(CmsError::invalid("key agreement needs an EC recipient key"));
    }
    let peer_ec = peer.ec_key()?;
    let group = peer_ec.group();
    let eph = EcKey::generate(group)?;
    let mut ctx = BigNumContext::new()?;
    let point = eph
        .public_key()
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
    let z = agree_ec(&eph, &peer_ec)?;
    let wrap_alg = wrap.algorithm_identifier();
    let ukm = ukm.map(OctetString::new).transpose()?;
    let kek = kek(kdf.md(), &z, &wrap_alg, ukm.as_ref(), wrap.key_len())?;
    let enc_key = wrap.wrap(&kek, cek)?;
    let rid = match rid {
        RecipientId::IssuerAndSerialNumber(ias) => {
            KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias.clone())
        }
        RecipientId::SubjectKeyIdentifier(ski) => {
            KeyAgreeRecipientIdentifier::RKeyId(RecipientKeyIdentifier {
                subject_key_identifier: SubjectKeyIdentifier(OctetString::new(ski.as_slice())?),
                date: None,
                other: None,
            })
        }
    };
    Ok(KeyAgreeRecipientInfo {
        version: CmsVersion::V3,
        originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
            algorithm: alg(oids::ID_EC_PUBLIC_KEY),
            public_key: BitString::from_bytes(&point)?,
        }),
        ukm,
        key_enc_alg: alg_with(kdf.oid(), Any::encode_from(&wrap_alg)?),
        recipient_enc_keys: vec![RecipientEncryptedKey {
            rid,
            enc_key: OctetString::new(enc_key)?,
        }],
    })
}

/// ECDH (SEC 1 §3.3.1, cofactor 1 curves): the x-coordinate of our private scalar times their
/// point, as `ECDH_compute_key` computes it, but on the low-level keys: going through EVP would
/// export both keys to the provider and rebuild the curve on every call, which cost more than
/// the point multiplication (docs/performance.md). Their point was checked to lie on the curve
/// when it was decoded.
fn agree_ec(
    ours: &openssl::ec::EcKeyRef<openssl::pkey::Private>,
    theirs: &openssl::ec::EcKeyRef<openssl::pkey::Public>,
) -> Result<Zeroizing<Vec<u8>>> {
    let group = ours.group();
    let mut ctx = BigNumContext::new()?;
    let mut shared = openssl::ec::EcPoint::new(group)?;
    shared.mul2(group, theirs.public_key(), ours.private_key(), &mut ctx)?;
    if shared.is_infinity(group) {
        return Err(CmsError::invalid(
            "key agreement produced the point at infinity",
        ));
    }
    let mut x = openssl::bn::BigNum::new()?;
    let mut y = openssl::bn::BigNum::new()?;
    shared.affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
    let len = i32::try_from(group.degree().div_ceil(8))
        .map_err(|_| CmsError::invalid("curve too large"))?;
    let z = Zeroizing::new(x.to_vec_padded(len)?);
    // The shared secret's coordinates are cleared, not just freed (the point itself has no
    // clearing free in the bindings; it is freed at once).
    x.clear();
    y.clear();
    Ok(z)
}

fn agree<T: openssl::pkey::HasPrivate, U: openssl::pkey::HasPublic>(
    ours: &PKey<T>,
    theirs: &PKey<U>,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut d = Deriver::new(ours)?;
    d.set_peer(theirs)?;
    Ok(Zeroizing::new(d.derive_to_vec()?))
}

/// Unwrap `enc_key` (one RecipientEncryptedKey of `kari`) with our static EC key.
pub(crate) fn unwrap(
    kari: &KeyAgreeRecipientInfo,
    enc_key: &[u8],
    key: &PKey<Private>,
) -> Result<Zeroizing<Vec<u8>>> {
    let OriginatorIdentifierOrKey::OriginatorKey(orig) = &kari.originator else {
        return Err(CmsError::unsupported(
            "kari originator other than originatorKey",
        ));
    };
    if orig.algorithm.oid != oids::ID_EC_PUBLIC_KEY {
        return Err(CmsError::unsupported(format!(
            "originator key {}",
            orig.algorithm.oid
        )));
    }
    let md = match kari.key_enc_alg.oid {
        oids::DH_SINGLE_PASS_STD_DH_SHA1KDF => MessageDigest::sha1(),
        oid => KeyAgreeKdf::from_oid(&oid)
            .ok_or_else(|| CmsError::unsupported(format!("key agreement {oid}")))?
            .md(),
    };
    let wrap_alg: AlgorithmIdentifierOwned = kari
        .key_enc_alg
        .parameters
        .as_ref()
        .ok_or_else(|| CmsError::malformed("key agreement without key-wrap parameter"))?
        .decode_as()?;
    let wrap = KeyWrap::from_oid(&wrap_alg.oid)
        .ok_or_else(|| CmsError::unsupported(format!("key wrap {}", wrap_alg.oid)))?;
    let ours = key.ec_key()?;
    let group = ours.group();
    let point_bytes = orig
        .public_key
        .as_bytes()
        .ok_or_else(|| CmsError::malformed("originator key has unused bits"))?;
    let mut ctx = BigNumContext::new()?;
    let point = EcPoint::from_bytes(group, point_bytes, &mut ctx).map_err(|_| {
        CmsError::malformed("originator key is not a point on the recipient's curve")
    })?;
    let peer = PKey::from_ec_key(EcKey::from_public_key(group, &point)?)?;
    let z = agree(key, &peer).map_err(|_| CmsError::DecryptionFailed)?;
    let kek = kek(md, &z, &wrap_alg, kari.ukm.as_ref(), wrap.key_len())?;
    wrap.unwrap(&kek, enc_key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use der::Decode;

    #[test]
    fn shared_info_matches_rfc5753_layout() {
        let info = EccCmsSharedInfo {
            key_info: alg(oids::AES128_WRAP),
            entity_u_info: None,
            supp_pub_info: OctetString::new(128u32.to_be_bytes()).unwrap(),
        };
        let der = info.to_der().unwrap();
        // SEQUENCE { SEQUENCE { id-aes128-wrap }, [2] { OCTET STRING 00000080 } }
        assert_eq!(
            der,
            [
                0x30, 0x15, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01,
                0x05, 0xa2, 0x06, 0x04, 0x04, 0x00, 0x00, 0x00, 0x80
            ]
        );
        assert_eq!(EccCmsSharedInfo::from_der(&der).unwrap(), info);
    }

    #[test]
    fn x963_kdf_counter_and_truncation() {
        let z = [0x11u8; 32];
        let wrap = alg(oids::AES256_WRAP);
        let k = kek(MessageDigest::sha256(), &z, &wrap, None, 32).unwrap();
        let info = EccCmsSharedInfo {
            key_info: wrap.clone(),
            entity_u_info: None,
            supp_pub_info: OctetString::new(256u32.to_be_bytes()).unwrap(),
        }
        .to_der()
        .unwrap();
        let mut input = z.to_vec();
        input.extend_from_slice(&1u32.to_be_bytes());
        input.extend_from_slice(&info);
        let expect = openssl::hash::hash(MessageDigest::sha256(), &input).unwrap();
        assert_eq!(k.as_slice(), &expect[..]);
        let ukm = OctetString::new(b"ukm".to_vec()).unwrap();
        assert_ne!(
            kek(MessageDigest::sha256(), &z, &wrap, Some(&ukm), 32).unwrap(),
            k
        );
    }
}
