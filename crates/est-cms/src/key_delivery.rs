//! Delivering a server-generated private key: EnvelopedData(SignedData(AsymmetricKeyPackage)).
//! One implementation for both paths that return generated keys, EST `/serverkeygen`
//! (RFC 7030 §4.4.2, SKG-18..SKG-23) and the CMC server-side key generation draft
//! (draft-turner-cmc-serverkeygeneration-02 §5, SKGD-18/SKGD-19): choosing the recipient's
//! algorithms from its SMIMECapabilities, sealing the key, and opening the layers again.
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::x509::store::X509StoreRef;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use zeroize::Zeroizing;

use crate::alg::ContentEncryption;
use crate::enveloped::{Recipient, RecipientId, RecipientSecret};
use crate::error::{CmsError, Result};
use crate::keypackage::PackagedKey;
use crate::oids;
use crate::signed::{Verified, VerifyOptions};
use crate::signer::CmsSigner;
use crate::smime_caps::SmimeCapability;

fn no_overlap(what: &str) -> CmsError {
    CmsError::UnsupportedAlgorithm(format!(
        "none of the client's SMIMECapabilities is a {what} this server supports"
    ))
}

/// The recipient for a public key: ktri for RSA, kari for EC (P-256/P-384), with the
/// key-transport, key-agreement and key-wrap algorithms picked from `caps` (strong defaults
/// when `None`). Fails with [`CmsError::UnsupportedAlgorithm`] when `caps` lists none we
/// support, or for another key type.
pub fn recipient_for_key(
    rid: RecipientId,
    key: PKey<Public>,
    caps: Option<&[SmimeCapability]>,
) -> Result<Recipient> {
    match key.id() {
        Id::RSA => {
            let algorithm = crate::pick_key_transport(caps)
                .ok_or_else(|| no_overlap("key-transport algorithm (rsaEncryption, RSAES-OAEP)"))?;
            Ok(Recipient::KeyTransport {
                rid,
                key,
                algorithm,
            })
        }
        Id::EC => {
            let (kdf, wrap) = crate::pick_key_agreement(caps, &key).ok_or_else(|| {
                no_overlap(
                    "key-agreement scheme (dhSinglePass-stdDH-sha256kdf/sha384kdf with AES key wrap)",
                )
            })?;
            Ok(Recipient::KeyAgree {
                rid,
                key,
                kdf,
                wrap,
                ukm: None,
            })
        }
        _ => Err(CmsError::UnsupportedAlgorithm(
            "the recipient key must be RSA or EC".into(),
        )),
    }
}

/// [`recipient_for_key`] for the public key in DER SubjectPublicKeyInfo `spki_der`.
pub fn recipient_for_spki(
    rid: RecipientId,
    spki_der: &[u8],
    caps: Option<&[SmimeCapability]>,
) -> Result<Recipient> {
    // P-256/P-384 through the low-level EC API (point on the curve checked), not an OpenSSL 3
    // decoder, which costs more than the key agreement itself (docs/performance.md).
    let key = crate::VerifyKey::from_spki_der(spki_der)
        .and_then(|k| k.to_pkey())
        .map_err(|_| CmsError::invalid("the recipient public key cannot be decoded"))?;
    recipient_for_key(rid, key, caps)
}

/// The content-encryption algorithm from `caps` (AES-256-CBC when `None`), or
/// [`CmsError::UnsupportedAlgorithm`] when the list has no AES-CBC.
pub fn content_encryption_for(caps: Option<&[SmimeCapability]>) -> Result<ContentEncryption> {
    crate::pick_content_encryption(caps)
        .ok_or_else(|| no_overlap("content-encryption algorithm (AES-CBC)"))
}

/// Whether a recipient certificate may be used to protect a key: an RSA key with KeyUsage
/// keyEncipherment, or an EC P-256/P-384 key with keyAgreement; a certificate without
/// KeyUsage allows both (RFC 5280 §4.2.1.3). Errors are [`CmsError::InvalidArgument`] with a
/// reason safe to show the client (SKG-14, SKGD-13).
pub fn check_recipient_certificate(cert: &Certificate) -> Result<()> {
    use const_oid::db::rfc5912;
    let alg = &cert.tbs_certificate().subject_public_key_info().algorithm;
    let needed = if alg.oid == rfc5912::RSA_ENCRYPTION {
        KeyUsages::KeyEncipherment
    } else if alg.oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
        if curve != Some(rfc5912::SECP_256_R_1) && curve != Some(rfc5912::SECP_384_R_1) {
            return Err(CmsError::invalid(
                "the recipient's EC key must be on P-256 or P-384",
            ));
        }
        KeyUsages::KeyAgreement
    } else {
        return Err(CmsError::invalid(format!(
            "cannot encrypt a key to a recipient key of algorithm {} (RSA or EC P-256/P-384 needed)",
            alg.oid
        )));
    };
    let ku = cert
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .map_err(|e| CmsError::malformed(format!("KeyUsage: {e}")))?;
    match ku {
        Some((_, ku)) if !ku.0.contains(needed) => Err(CmsError::invalid(format!(
            "the recipient certificate's key usage does not allow {}",
            if needed == KeyUsages::KeyEncipherment {
                "keyEncipherment"
            } else {
                "keyAgreement"
            }
        ))),
        _ => Ok(()),
    }
}

/// DER ContentInfo(EnvelopedData(SignedData(AsymmetricKeyPackage))): `key` as a v2
/// OneAsymmetricKey (with its public key) in an AsymmetricKeyPackage (RFC 5958), signed by
/// `signer` (the key generator; `extra_certs` join its certificate in `certificates`), then
/// encrypted for `recipient` under `cea` (SKG-18, SKGD-18, SKGD-19 layers 1 and 2).
pub fn seal_key_package(
    key: &PKey<Private>,
    signer: &dyn CmsSigner,
    extra_certs: &[Certificate],
    recipient: &Recipient,
    cea: ContentEncryption,
) -> Result<Vec<u8>> {
    let akp = crate::encode_key_package(&[key])?;
    let signed = Zeroizing::new(crate::sign(
        oids::ID_CT_KP_A_KEY_PACKAGE,
        &akp,
        signer,
        extra_certs,
    )?);
    crate::envelope(
        oids::ID_SIGNED_DATA,
        &signed,
        std::slice::from_ref(recipient),
        cea,
    )
}

/// A key package opened by [`open_key_package`].
#[derive(Debug)]
pub struct OpenedKeyPackage {
    /// The one key of the package.
    pub key: PackagedKey,
    /// The verified SignedData around it (its signer, certificates, attributes).
    pub signed: Verified,
}

/// Opens what [`seal_key_package`] built: decrypts with `secret`, verifies the SignedData
/// (signature, and the signer's chain to `trust` unless `opts` skips it), checks the content
/// is an AsymmetricKeyPackage and that it holds exactly one key.
pub fn open_key_package(
    enveloped: &[u8],
    secret: &RecipientSecret,
    trust: &X509StoreRef,
    opts: &VerifyOptions,
) -> Result<OpenedKeyPackage> {
    let dec = crate::decrypt(enveloped, secret)?;
    if dec.content_type != oids::ID_SIGNED_DATA {
        return Err(CmsError::UnexpectedContentType(dec.content_type));
    }
    let mut signed = crate::verify(&dec.content, trust, opts)?;
    let content = Zeroizing::new(std::mem::take(&mut signed.content));
    if signed.content_type != oids::ID_CT_KP_A_KEY_PACKAGE {
        return Err(CmsError::UnexpectedContentType(signed.content_type));
    }
    let mut keys = crate::decode_key_package(&content)?;
    if keys.len() != 1 {
        return Err(CmsError::malformed(format!(
            "the key package holds {} keys, expected one",
            keys.len()
        )));
    }
    Ok(OpenedKeyPackage {
        key: keys.remove(0),
        signed,
    })
}
