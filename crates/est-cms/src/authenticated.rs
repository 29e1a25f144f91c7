//! AuthenticatedData (RFC 5652 §9) with HMAC-SHA-256 and a random MAC key delivered to the
//! recipients (for CMC, RFC 5272 §3.2: a pwri recipient, CMC-18).
use cms::authenticated_data::AuthenticatedData;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::RecipientInfos;
use cms::signed_data::EncapsulatedContentInfo;
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::alg::{DigestAlgorithm, alg, random};
use crate::enveloped::{Recipient, RecipientSecret, recipient_info, unwrap_candidates};
use crate::error::{CmsError, Result};
use crate::oids;
use crate::rawder;
use crate::signed::{single_attr, unique_attr_value};

/// Length of the random HMAC-SHA-256 key.
const MAC_KEY_LEN: usize = 32;

/// The authenticated content of a verified AuthenticatedData.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// eContentType.
    pub content_type: ObjectIdentifier,
    /// The content.
    pub content: Vec<u8>,
}

/// Build DER ContentInfo(AuthenticatedData): version 0, macAlgorithm hmacWithSHA256,
/// digestAlgorithm SHA-256, authAttrs contentType + messageDigest, the MAC over the DER SET OF
/// authAttrs (RFC 5652 §9.2), and the MAC key wrapped for each recipient.
pub fn authenticate(
    content_type: ObjectIdentifier,
    content: &[u8],
    recipients: &[Recipient],
) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(CmsError::invalid("no recipients"));
    }
    let mac_key = random(MAC_KEY_LEN)?;
    let infos = recipients
        .iter()
        .map(|r| recipient_info(r, &mac_key))
        .collect::<Result<Vec<_>>>()?;
    let digest = DigestAlgorithm::Sha256;
    let attrs = SetOfVec::try_from(vec![
        single_attr(oids::ID_CONTENT_TYPE, Any::encode_from(&content_type)?)?,
        single_attr(
            oids::ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.digest(content)?)?)?,
        )?,
    ])?;
    let mac = hmac(MessageDigest::sha256(), &mac_key, &attrs.to_der()?)?;
    let ad = AuthenticatedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(SetOfVec::try_from(infos)?),
        mac_alg: alg(oids::HMAC_WITH_SHA256),
        digest_alg: Some(digest.algorithm_identifier()),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(Any::encode_from(&OctetString::new(content)?)?),
        },
        auth_attrs: Some(attrs),
        mac: OctetString::new(mac)?,
        unauth_attrs: None,
    };
    Ok(ContentInfo {
        content_type: oids::ID_CT_AUTH_DATA,
        content: Any::encode_from(&ad)?,
    }
    .to_der()?)
}

fn hmac(md: MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let pkey = PKey::hmac(key)?;
    let mut s = Signer::new(md, &pkey)?;
    Ok(s.sign_oneshot_to_vec(data)?)
}

/// The encapsulated content of a DER ContentInfo(AuthenticatedData), **not authenticated**:
/// for a receiver that must read the content to find its key (a CMC request names its shared
/// secret in the Identification control inside, RFC 5272 §3.2). Verify with
/// [`verify_authenticated`] before acting on it.
pub fn authenticated_content_unverified(der: &[u8]) -> Result<Authenticated> {
    let ci = ContentInfo::from_der(der)?;
    if ci.content_type != oids::ID_CT_AUTH_DATA {
        return Err(CmsError::UnexpectedContentType(ci.content_type));
    }
    let ad: AuthenticatedData = ci.content.decode_as()?;
    let content = ad
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| CmsError::malformed("detached content is not supported"))?
        .decode_as::<OctetString>()?
        .as_bytes()
        .to_vec();
    Ok(Authenticated {
        content_type: ad.encap_content_info.econtent_type,
        content,
    })
}

/// Verify a DER ContentInfo(AuthenticatedData) with `secret` (typically a password): unwrap
/// the MAC key, recompute the MAC (constant-time compare), and check the contentType and
/// messageDigest attributes. A wrong password gives [`CmsError::BadMac`] or
/// [`CmsError::DecryptionFailed`].
pub fn verify_authenticated(der: &[u8], secret: &RecipientSecret) -> Result<Authenticated> {
    let ci = ContentInfo::from_der(der)?;
    if ci.content_type != oids::ID_CT_AUTH_DATA {
        return Err(CmsError::UnexpectedContentType(ci.content_type));
    }
    let ad_der = ci.content.to_der()?;
    let ad = AuthenticatedData::from_der(&ad_der)?;
    let md = match ad.mac_alg.oid {
        oids::HMAC_WITH_SHA256 => MessageDigest::sha256(),
        oids::HMAC_WITH_SHA384 => MessageDigest::sha384(),
        oids::HMAC_WITH_SHA512 => MessageDigest::sha512(),
        other => return Err(CmsError::unsupported(format!("MAC algorithm {other}"))),
    };
    let content_type = ad.encap_content_info.econtent_type;
    let content = ad
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| CmsError::malformed("detached content is not supported"))?
        .decode_as::<OctetString>()?
        .as_bytes()
        .to_vec();
    let mac_input = match &ad.auth_attrs {
        Some(_) => rawder::implicit_set_field(&ad_der, 2)?
            .ok_or_else(|| CmsError::malformed("authAttrs not found"))?,
        None if content_type == oids::ID_DATA => content.clone(),
        None => {
            return Err(CmsError::malformed(
                "authAttrs missing for non-data content",
            ));
        }
    };
    let expected = ad.mac.as_bytes();
    let mut authentic = false;
    for key in unwrap_candidates(&ad.recip_infos, secret, MAC_KEY_LEN)? {
        let mac = hmac(md, &key, &mac_input)?;
        if mac.len() == expected.len() && openssl::memcmp::eq(&mac, expected) {
            authentic = true;
            break;
        }
    }
    if !authentic {
        return Err(CmsError::BadMac);
    }
    if let Some(attrs) = &ad.auth_attrs {
        let digest_alg = ad
            .digest_alg
            .as_ref()
            .ok_or_else(|| CmsError::malformed("digestAlgorithm missing with authAttrs"))?;
        let digest = DigestAlgorithm::from_oid(&digest_alg.oid)
            .ok_or_else(|| CmsError::unsupported(format!("digest {}", digest_alg.oid)))?;
        let ct: ObjectIdentifier = unique_attr_value(attrs, oids::ID_CONTENT_TYPE)?.decode_as()?;
        if ct != content_type {
            return Err(CmsError::ContentTypeMismatch);
        }
        let md: OctetString = unique_attr_value(attrs, oids::ID_MESSAGE_DIGEST)?.decode_as()?;
        if md.as_bytes() != digest.digest(&content)?.as_slice() {
            return Err(CmsError::DigestMismatch);
        }
    }
    Ok(Authenticated {
        content_type,
        content,
    })
}
