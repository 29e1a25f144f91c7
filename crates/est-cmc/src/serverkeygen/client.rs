//! The client side of the draft: building a ServerKeyGenRequest PKIData and opening the
//! response's layers (SKGD-24). Signing or MACing the PKIData is [`crate::client::sign_request`]'s
//! (SKGD-17: SignedData with a certificate, or AuthenticatedData with a shared secret).
use der::asn1::{BitString, Null, SetOfVec};
use der::{Any, Decode, Encode};
use openssl::pkey::{PKey, Private};
use openssl::x509::store::X509StoreRef;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use super::server::identifies;
use super::{
    ServerKeyGenRequest, ServerKeyGenResponse, Shroud, SkgCapability, SkgErrorCode, SkgOids,
};
use crate::client::RequestOptions;
use crate::oids;
use crate::response::ResponseSummary;
use crate::types::{
    BodyPartId, BodyPartReference, OtherStatusInfo, PkiData, PkiResponse, TaggedAttribute,
    TaggedCertificationRequest, TaggedRequest,
};

/// The body part of the ServerKeyGenRequest control this builder makes.
pub const ID_SKG_REQUEST: BodyPartId = 20;
/// The body part of Identification when a shared secret authenticates (SKGD-17).
pub const ID_IDENTIFICATION: BodyPartId = crate::client::ID_IDENTIFICATION;

/// id-alg-noSignature (RFC 6402 §2.1; 1.3.6.1.5.5.7.6.2).
pub const ID_ALG_NO_SIGNATURE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.6.2");

/// A PKCS#10 `tcr` with bodyPartID 0 (SKGD-2) proposing `subject` and `extensions`, naming
/// the wanted key `algorithm` (with its parameters, e.g. the curve) in an SPKI with a
/// zero-length key (SKGD-3), signed with id-alg-noSignature (no key to sign with, SKGD-5).
pub fn placeholder_request(
    subject: Name,
    algorithm: AlgorithmIdentifierOwned,
    extensions: &[Extension],
) -> Result<TaggedRequest, String> {
    let e = |e: der::Error| e.to_string();
    let mut attributes = SetOfVec::new();
    if !extensions.is_empty() {
        attributes
            .insert(Attribute {
                oid: oids::EXTENSION_REQUEST,
                values: SetOfVec::try_from(vec![
                    Any::encode_from(&extensions.to_vec()).map_err(e)?,
                ])
                .map_err(e)?,
            })
            .map_err(e)?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: SubjectPublicKeyInfoOwned {
            algorithm,
            subject_public_key: BitString::from_bytes(&[]).map_err(e)?,
        },
        attributes,
    };
    Ok(TaggedRequest::Tcr(TaggedCertificationRequest {
        body_part_id: 0,
        certification_request: CertReq {
            info,
            algorithm: AlgorithmIdentifierOwned {
                oid: ID_ALG_NO_SIGNATURE,
                parameters: Some(Any::encode_from(&Null).map_err(e)?),
            },
            signature: BitString::from_bytes(&[]).map_err(e)?,
        },
    }))
}

/// What Estuary's client supports, in order of preference (SKGD-8): AES-256/128-CBC,
/// RSAES-OAEP (SHA-256) and rsaEncryption, ECDH with the SHA-256/384 KDFs, AES-256/128 key
/// wrap, and for a shared secret PBKDF2 with id-alg-PWRI-KEK; plus the shroud method itself.
pub fn default_capabilities(oids: &SkgOids, shroud: &Shroud) -> Vec<SkgCapability> {
    let o = |oid: const_oid::ObjectIdentifier| SkgCapability {
        capability_id: oid.into(),
        parameters: None,
    };
    let mut caps = vec![o(est_cms::oids::AES256_CBC), o(est_cms::oids::AES128_CBC)];
    match shroud {
        Shroud::PublicKey(_) => {
            let oaep = est_cms::RsaesOaepParams {
                hash_algorithm: Some(AlgorithmIdentifierOwned {
                    oid: est_cms::oids::ID_SHA256,
                    parameters: None,
                }),
                mask_gen_algorithm: Any::encode_from(&AlgorithmIdentifierOwned {
                    oid: est_cms::oids::ID_SHA256,
                    parameters: None,
                })
                .ok()
                .map(|p| AlgorithmIdentifierOwned {
                    oid: est_cms::oids::ID_MGF1,
                    parameters: Some(p),
                }),
                p_source_algorithm: None,
            };
            caps.push(SkgCapability {
                capability_id: est_cms::oids::ID_RSAES_OAEP.into(),
                parameters: Any::encode_from(&oaep).ok(),
            });
            caps.push(o(est_cms::oids::RSA_ENCRYPTION));
            caps.push(o(est_cms::oids::DH_SINGLE_PASS_STD_DH_SHA256KDF));
            caps.push(o(est_cms::oids::DH_SINGLE_PASS_STD_DH_SHA384KDF));
            caps.push(o(est_cms::oids::AES256_WRAP));
            caps.push(o(est_cms::oids::AES128_WRAP));
            caps.push(SkgCapability {
                capability_id: oids.shroud_with_public_key.clone(),
                parameters: None,
            });
        }
        Shroud::SharedSecret(_) => {
            caps.push(o(est_cms::oids::ID_PBKDF2));
            caps.push(o(est_cms::oids::ID_ALG_PWRI_KEK));
            caps.push(SkgCapability {
                capability_id: oids.shroud_with_shared_secret.clone(),
                parameters: None,
            });
        }
    }
    caps
}

/// A PKIData asking for a server-generated key (SKGD-1): the transaction controls of `opts`,
/// with `opts.identity` an Identification control (SKGD-17: the AuthenticatedData's secret is
/// found by it; no identity proof), and the ServerKeyGenRequest as body part
/// [`ID_SKG_REQUEST`]: `certificate_request` (e.g. [`placeholder_request`]), `shroud`,
/// `capabilities` always encoded (SKGD-9), archiveKey FALSE (Estuary archives nothing,
/// SKGD-10). reqSequence, cmsSequence and otherMsgSequence stay empty.
pub fn build_request(
    opts: &RequestOptions,
    oids: &SkgOids,
    certificate_request: TaggedRequest,
    shroud: &Shroud,
    capabilities: Vec<SkgCapability>,
) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let mut control_sequence = crate::client::transaction_controls(opts)?;
    if let Some(id) = &opts.identity {
        control_sequence.push(
            TaggedAttribute::single(ID_IDENTIFICATION, oids::IDENTIFICATION, &id.ident)
                .map_err(e)?,
        );
    }
    let request = ServerKeyGenRequest {
        certificate_request,
        shroud_method: shroud.to_method(oids).map_err(e)?,
        alg_capabilities: Some(capabilities),
        archive_key: false,
    };
    control_sequence.push(
        TaggedAttribute::single(
            ID_SKG_REQUEST,
            oids.server_key_gen_request.clone(),
            &request,
        )
        .map_err(e)?,
    );
    Ok(PkiData {
        control_sequence,
        ..Default::default()
    })
}

/// A key the server generated, opened and checked.
#[derive(Debug)]
pub struct ReceivedKey {
    /// The ServerKeyGenRequest control this answers.
    pub request_body_part_id: BodyPartId,
    /// The private key; OpenSSL clears it on drop.
    pub key: PKey<Private>,
    /// The issued certificate (from the outer SignedData, named by signerIdentifier).
    pub certificate: Certificate,
    /// The key generator that signed the key package (CA or RA, SKGD-19, SKGD-42).
    pub generator: Certificate,
}

/// A verified ServerKeyGen response.
#[derive(Debug)]
pub struct SkgResponse {
    pub summary: ResponseSummary,
    pub keys: Vec<ReceivedKey>,
    /// The draft errors reported (SKGD-25): body parts and code.
    pub errors: Vec<(Vec<BodyPartReference>, SkgErrorCode)>,
    /// Every certificate of the outer SignedData.
    pub certificates: Vec<Certificate>,
}

/// Opens a response (DER ContentInfo(SignedData(PKIResponse))) to a ServerKeyGenRequest
/// (SKGD-24): verifies the outer signature and its signer's chain to `trust`, then for each
/// ServerKeyGenResponse control decrypts the cmsSequence entry it names with `secret`,
/// verifies the key generator's signature and chain to `trust`, and checks that the key is
/// the one the named certificate certifies and that the certificate validates to `trust`.
pub fn read_response(
    der: &[u8],
    trust: &X509StoreRef,
    oids: &SkgOids,
    secret: &est_cms::RecipientSecret,
) -> Result<SkgResponse, String> {
    let outer = est_cms::verify(der, trust, &est_cms::VerifyOptions::default())
        .map_err(|e| format!("response signature: {e} (SKGD-24)"))?;
    // SKGD-42: the CA, or an RA (id-kp-cmcRA) that generated the key itself.
    crate::client::check_response_signers(&outer.signers)?;
    if outer.content_type != oids::CT_PKI_RESPONSE {
        return Err(format!(
            "signed response carries {}, not PKIResponse",
            outer.content_type
        ));
    }
    let summary = ResponseSummary::read(&outer.content).map_err(|e| format!("PKIResponse: {e}"))?;
    let response =
        PkiResponse::from_der(&outer.content).map_err(|e| format!("PKIResponse: {e}"))?;
    let errors = summary
        .statuses
        .iter()
        .filter_map(|s| match &s.other_info {
            Some(OtherStatusInfo::ExtendedFailInfo(x)) => {
                SkgErrorCode::from_extended(x, oids).map(|c| (s.body_list.clone(), c))
            }
            _ => None,
        })
        .collect();
    // CMC-63: a response an RA made (for a key it generated, SKGD-36) carries the CA's own
    // response through Response Body: it must verify too, and a key comes with the CA's
    // success only.
    let mut ca_failed = None;
    for body in crate::ra_keygen::response_bodies(&outer.content)? {
        let inner = crate::client::verify_response(&body, trust)
            .map_err(|e| format!("the CA's response in Response Body (CMC-63): {e}"))?;
        if let Some(s) = inner
            .summary
            .statuses
            .iter()
            .find(|s| s.status != crate::CmcStatus::SUCCESS)
        {
            ca_failed = Some(crate::describe_status(s));
        }
    }
    let mut keys = Vec::new();
    for c in response
        .control_sequence
        .iter()
        .filter(|c| c.attr_type == oids.server_key_gen_response)
    {
        if let Some(why) = &ca_failed {
            return Err(format!(
                "a key came with a CA response that is not a success (CMC-63, SKGD-37): {why}"
            ));
        }
        let r: ServerKeyGenResponse =
            super::control_value(c).map_err(|e| format!("ServerKeyGenResponse: {e}"))?;
        keys.push(open_one(&r, &response, &outer.certificates, trust, secret)?);
    }
    Ok(SkgResponse {
        summary,
        keys,
        errors,
        certificates: outer.certificates,
    })
}

fn open_one(
    r: &ServerKeyGenResponse,
    response: &PkiResponse,
    certificates: &[Certificate],
    trust: &X509StoreRef,
    secret: &est_cms::RecipientSecret,
) -> Result<ReceivedKey, String> {
    let entry = response
        .cms_sequence
        .iter()
        .find(|t| t.body_part_id == r.cms_body_part_id)
        .ok_or_else(|| {
            format!(
                "ServerKeyGenResponse names cmsSequence entry {}, which is absent",
                r.cms_body_part_id
            )
        })?;
    if entry.content_info.content_type != est_cms::oids::ID_ENVELOPED_DATA {
        return Err(format!(
            "cmsSequence entry {} is {}, not EnvelopedData (SKGD-19)",
            r.cms_body_part_id, entry.content_info.content_type
        ));
    }
    let enveloped = entry.content_info.to_der().map_err(|e| e.to_string())?;
    let opened = est_cms::open_key_package(
        &enveloped,
        secret,
        trust,
        &est_cms::VerifyOptions::default(),
    )
    .map_err(|e| format!("key package: {e} (SKGD-24)"))?;
    let generator = opened
        .signed
        .signers
        .first()
        .cloned()
        .ok_or("the key package has no signer")?;
    // SKGD-19, SKGD-42: the key generator is the CA or an RA, not any certificate holder.
    crate::client::check_response_signers(std::slice::from_ref(&generator))
        .map_err(|e| format!("key package: {e}"))?;
    let certificate = certificates
        .iter()
        .find(|c| identifies(&r.signer_identifier, c))
        .cloned()
        .ok_or("signerIdentifier names no certificate of the response (SKGD-22)")?;
    est_cms::validate_chain(trust, &certificate, certificates)
        .map_err(|e| format!("the issued certificate does not validate: {e} (SKGD-24)"))?;
    let key = opened.key.to_pkey().map_err(|e| e.to_string())?;
    let cert_spki = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| e.to_string())?;
    if key.public_key_to_der().map_err(|e| e.to_string())? != cert_spki {
        return Err(
            "the returned private key does not match the returned certificate (SKGD-24)".into(),
        );
    }
    if let Some(pk) = &opened.key.public_key {
        // A v2 OneAsymmetricKey's publicKey must be the certified one too.
        let spki = SubjectPublicKeyInfoOwned::from_der(&cert_spki).map_err(|e| e.to_string())?;
        if spki.subject_public_key.raw_bytes() != pk.as_slice() {
            return Err("the key package's publicKey is not the certified key (SKGD-24)".into());
        }
    }
    Ok(ReceivedKey {
        request_body_part_id: r.request_body_part_id,
        key,
        certificate,
        generator,
    })
}
