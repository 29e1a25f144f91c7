//! Reading a Full PKI Request (RFC 5272 §3.2): the outer CMS layer, the PKIData, its controls
//! and its certification requests, with every check that needs no I/O. What needs the CA's
//! state (a shared secret, the replay table, the store) is left to the caller, which gets
//! typed values and pure check functions for it.
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Reader};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::error::Failure;
use crate::oids;
use crate::types::{BodyPartId, BodyPartReference, CmcFailInfo, PkiData, TaggedRequest};
use crate::{CertificationRequest, Controls};

/// How the outer layer of a request authenticates it.
#[derive(Debug, Clone)]
pub enum OuterSigner {
    /// Signed with the key of the certification request with this body part ID, which
    /// carries the matching SubjectKeyIdentifier (CMC-17).
    RequestKey(BodyPartId),
    /// Signed with a certificate carried in the SignedData (renewal/rekey, RA, CMC-21). Its
    /// signature verified; the caller validates the chain and decides what it may do.
    Certificate {
        cert: Box<x509_cert::Certificate>,
        /// Every certificate the SignedData carried (for path building).
        pool: Vec<x509_cert::Certificate>,
    },
    /// Signed by a key named only by this key identifier, in a PKIData without certification
    /// requests: **not verified yet**. The caller finds the key (e.g. the held request a
    /// Query Pending names) and calls [`FullPkiRequest::verify_outer_with_key`], or refuses.
    KeyIdentifier { key_id: Vec<u8> },
    /// AuthenticatedData with a password recipient (CMC-18): **not verified yet**. The caller
    /// finds the shared secret named by Identification and calls
    /// [`FullPkiRequest::verify_mac`].
    SharedSecretMac,
    /// A SignedData with no SignerInfo: acceptable only for a Revocation Request that carries
    /// its passphrase (RFC 5272 §6.11, CMC-72); nothing in it is authenticated.
    Unsigned,
}

/// A Full PKI Request whose outer signature verified.
#[derive(Debug, Clone)]
pub struct FullPkiRequest {
    /// The outer layer as received, for the checks the caller completes.
    outer: Outer,
    pub pki_data: PkiData,
    /// DER of the PKIData as received.
    pub pki_data_der: Vec<u8>,
    pub signer: OuterSigner,
    pub controls: Controls,
    /// Every certification request, each already checked (syntax, CMC-14, POP) or failed.
    pub requests: Vec<Result<CertificationRequest, Failure>>,
    /// Nested Full PKI Requests from cmsSequence (an RA's wrapping, RFC 5272 §7.1; batches,
    /// §6.17), each verified on its own; other cmsSequence content is ignored (CMC-10).
    pub nested: Vec<(BodyPartId, Result<Box<FullPkiRequest>, Failure>)>,
}

/// How deep RA wrappings may nest (a bound against nesting bombs).
pub const MAX_NESTING: usize = 4;

#[derive(Debug, Clone)]
enum Outer {
    Signed(Box<est_cms::ParsedSignedData>),
    Authenticated(Vec<u8>),
}

/// Why a body is not a Full PKI Request at all (answered with a text reason) or which CMC
/// failure it earns (answered with a PKIResponse, EST-99).
#[derive(Debug, Clone)]
pub enum RequestError {
    /// Not DER CMS: no PKIResponse can be addressed to it.
    NotCms(String),
    /// A CMS message we cannot accept, with the CMC status to report. `controls` are those we
    /// could read (for the nonces and transactionId of the response).
    Cmc {
        failure: Failure,
        controls: Box<Controls>,
    },
}

/// Verification knobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestPolicy {
    /// Accept SHA-1 signatures on the inner requests' POP (CMC-29 requires SHA-1 for
    /// SignedData verification; for certification requests it is the profile's choice).
    pub allow_sha1_pop: bool,
}

fn cmc(failure: Failure, controls: &Controls) -> RequestError {
    RequestError::Cmc {
        failure,
        controls: Box::new(controls.clone()),
    }
}

impl FullPkiRequest {
    /// Reads a DER ContentInfo(SignedData(PKIData)) (CMC-1, CMC-20 first layering): decodes
    /// everything, verifies the outer signature (CMC-16, CMC-17) and every request's POP.
    pub fn parse_signed(der: &[u8], policy: RequestPolicy) -> Result<Self, RequestError> {
        Self::parse_signed_at(der, policy, 0)
    }

    fn parse_signed_at(
        der: &[u8],
        policy: RequestPolicy,
        depth: usize,
    ) -> Result<Self, RequestError> {
        let ci = cms::content_info::ContentInfo::from_der(der)
            .map_err(|e| RequestError::NotCms(format!("body is not a DER CMS ContentInfo: {e}")))?;
        if ci.content_type != est_cms::oids::ID_SIGNED_DATA {
            // CMS, but not a Full PKI Request: a CMC failure (EST-99).
            return Err(cmc(
                Failure::message(
                    CmcFailInfo::BAD_REQUEST,
                    format!(
                        "a Full PKI Request is SignedData, AuthenticatedData or EnvelopedData (CMC-1, CMC-20); this ContentInfo is {}",
                        ci.content_type
                    ),
                ),
                &Controls::default(),
            ));
        }
        let empty = Controls::default();
        let signed = est_cms::ParsedSignedData::parse(der).map_err(|e| {
            cmc(
                Failure::message(CmcFailInfo::BAD_MESSAGE_CHECK, format!("SignedData: {e}")),
                &empty,
            )
        })?;
        let (pki_data, controls) = read_pki_data(signed.content_type, &signed.content)?;
        let requests: Vec<_> = pki_data
            .req_sequence
            .iter()
            .map(|r| CertificationRequest::read(r, policy))
            .collect();
        let signer = outer_signer(&signed, &pki_data).map_err(|f| cmc(f, &controls))?;
        let nested = read_nested(&pki_data, policy, depth)?;
        Ok(Self {
            nested,
            pki_data_der: signed.content.clone(),
            outer: Outer::Signed(Box::new(signed)),
            pki_data,
            signer,
            controls,
            requests,
        })
    }

    /// Verifies the outer signature of an [`OuterSigner::KeyIdentifier`] request with the key
    /// the caller found; the key identifier must be the SHA-1 of its subjectPublicKey (RFC
    /// 5280 §4.2.1.2 method 1) or the requested SKI the caller kept. A failure is
    /// badMessageCheck (CMC-16).
    pub fn verify_outer_with_key(&self, spki_der: &[u8]) -> Result<(), Failure> {
        let bad = |m: String| Failure::message(CmcFailInfo::BAD_MESSAGE_CHECK, m);
        let key = est_cms::VerifyKey::from_spki_der(spki_der)
            .map_err(|e| bad(format!("public key: {e}")))?;
        let Outer::Signed(signed) = &self.outer else {
            return Err(bad("not a signed request".into()));
        };
        signed
            .verify_with(0, &key)
            .map_err(|e| bad(format!("the request signature does not verify: {e}")))
    }

    /// Verifies the MAC of an AuthenticatedData request with the shared secret: the pwri
    /// password is the UTF-8 Identification value followed by the secret (CMC-18; the
    /// reverse of the identity proof's order). A failure is badMessageCheck on body part 0.
    pub fn verify_mac(&self, secret: &[u8]) -> Result<(), Failure> {
        let Outer::Authenticated(der) = &self.outer else {
            return Err(Failure::message(
                CmcFailInfo::BAD_MESSAGE_CHECK,
                "not an AuthenticatedData request",
            ));
        };
        let ident = self
            .controls
            .identification
            .as_ref()
            .map(|(_, s)| s.as_bytes())
            .unwrap_or_default();
        check_pbkdf2_cost(der)?;
        let mut password = zeroize::Zeroizing::new(Vec::with_capacity(ident.len() + secret.len()));
        password.extend_from_slice(ident);
        password.extend_from_slice(secret);
        est_cms::verify_authenticated(der, &est_cms::RecipientSecret::Password(password))
            .map(|_| ())
            .map_err(|e| {
                Failure::message(
                    CmcFailInfo::BAD_MESSAGE_CHECK,
                    format!(
                        "the AuthenticatedData MAC does not verify with the shared secret: {e}"
                    ),
                )
            })
    }

    /// Reads a Full PKI Request in any layering this crate serves: SignedData(PKIData) (see
    /// [`Self::parse_signed`]) or AuthenticatedData(PKIData) (CMC-18, whose MAC the caller
    /// verifies with [`Self::verify_mac`] once it found the secret).
    pub fn parse(der: &[u8], policy: RequestPolicy) -> Result<Self, RequestError> {
        Self::parse_layered(der, policy, None)
    }

    /// [`Self::parse`] that also opens the encryption layers of CMC-20 with `decryption`
    /// (the CA's encryption key): EnvelopedData(SignedData(PKIData)) and
    /// SignedData(EnvelopedData(SignedData(PKIData))). A layer that does not decrypt is
    /// badMessageCheck on body part 0 (CMC-19).
    pub fn parse_layered(
        der: &[u8],
        policy: RequestPolicy,
        decryption: Option<&est_cms::RecipientSecret>,
    ) -> Result<Self, RequestError> {
        let ci = cms::content_info::ContentInfo::from_der(der)
            .map_err(|e| RequestError::NotCms(format!("body is not a DER CMS ContentInfo: {e}")))?;
        let empty = Controls::default();
        let decrypt = |enveloped: &[u8]| -> Result<Vec<u8>, RequestError> {
            let secret = decryption.ok_or_else(|| {
                cmc(
                    Failure::message(
                        CmcFailInfo::BAD_MESSAGE_CHECK,
                        "this server has no CMC encryption key: send the request unencrypted (CMC-19)",
                    ),
                    &empty,
                )
            })?;
            let d = est_cms::decrypt(enveloped, secret).map_err(|e| {
                cmc(
                    Failure::message(
                        CmcFailInfo::BAD_MESSAGE_CHECK,
                        format!("the EnvelopedData layer does not decrypt with this CA's encryption key: {e} (CMC-19)"),
                    ),
                    &empty,
                )
            })?;
            if d.content_type != est_cms::oids::ID_SIGNED_DATA {
                return Err(cmc(
                    Failure::message(
                        CmcFailInfo::BAD_REQUEST,
                        format!(
                            "the EnvelopedData carries {}, not SignedData(PKIData) (CMC-20)",
                            d.content_type
                        ),
                    ),
                    &empty,
                ));
            }
            // The decrypted content is the inner SignedData's content: wrap it as ContentInfo.
            let inner = cms::content_info::ContentInfo {
                content_type: est_cms::oids::ID_SIGNED_DATA,
                content: der::Any::from_der(&d.content).map_err(|e| {
                    cmc(
                        Failure::message(
                            CmcFailInfo::BAD_REQUEST,
                            format!("inner SignedData: {e}"),
                        ),
                        &empty,
                    )
                })?,
            };
            inner.to_der().map_err(|e| {
                cmc(
                    Failure::message(CmcFailInfo::BAD_REQUEST, format!("inner SignedData: {e}")),
                    &empty,
                )
            })
        };
        if ci.content_type == est_cms::oids::ID_ENVELOPED_DATA {
            let inner = decrypt(der)?;
            return Self::parse_signed(&inner, policy);
        }
        if ci.content_type == est_cms::oids::ID_SIGNED_DATA {
            let outer = est_cms::ParsedSignedData::parse(der).map_err(|e| {
                cmc(
                    Failure::message(CmcFailInfo::BAD_MESSAGE_CHECK, format!("SignedData: {e}")),
                    &empty,
                )
            })?;
            if outer.content_type == est_cms::oids::ID_ENVELOPED_DATA {
                // SignedData(EnvelopedData(SignedData(PKIData))): the inner request decides;
                // the outer signature must still verify (CMC-16), with a carried certificate
                // or the key of a request inside.
                let enveloped = cms::content_info::ContentInfo {
                    content_type: est_cms::oids::ID_ENVELOPED_DATA,
                    content: der::Any::from_der(&outer.content).map_err(|e| {
                        cmc(
                            Failure::message(
                                CmcFailInfo::BAD_REQUEST,
                                format!("EnvelopedData: {e}"),
                            ),
                            &empty,
                        )
                    })?,
                }
                .to_der()
                .map_err(|e| {
                    cmc(
                        Failure::message(CmcFailInfo::BAD_REQUEST, e.to_string()),
                        &empty,
                    )
                })?;
                let inner = Self::parse_signed(&decrypt(&enveloped)?, policy)?;
                let by_cert = outer.verify_with_certificate(0).is_ok();
                let by_key = || {
                    inner
                        .pki_data
                        .req_sequence
                        .iter()
                        .filter_map(request_key)
                        .any(|(_, _, spki)| {
                            est_cms::VerifyKey::from_spki_der(&spki)
                                .is_ok_and(|k| outer.verify_with(0, &k).is_ok())
                        })
                };
                if outer.signer_infos.len() != 1 || !(by_cert || by_key()) {
                    return Err(cmc(
                        Failure::message(
                            CmcFailInfo::BAD_MESSAGE_CHECK,
                            "the outer SignedData around the EnvelopedData does not verify (CMC-16)",
                        ),
                        &inner.controls,
                    ));
                }
                return Ok(inner);
            }
        }
        if ci.content_type != est_cms::oids::ID_CT_AUTH_DATA {
            return Self::parse_signed(der, policy);
        }
        let content = est_cms::authenticated_content_unverified(der).map_err(|e| {
            cmc(
                Failure::message(
                    CmcFailInfo::BAD_MESSAGE_CHECK,
                    format!("AuthenticatedData: {e}"),
                ),
                &empty,
            )
        })?;
        let (pki_data, controls) = read_pki_data(content.content_type, &content.content)?;
        if controls.identification.is_none() {
            return Err(cmc(
                Failure::message(
                    CmcFailInfo::BAD_REQUEST,
                    "an AuthenticatedData request needs the Identification control to name its shared secret (CMC-18)",
                ),
                &controls,
            ));
        }
        let requests = pki_data
            .req_sequence
            .iter()
            .map(|r| CertificationRequest::read(r, policy))
            .collect();
        let nested = read_nested(&pki_data, policy, 0)?;
        Ok(Self {
            nested,
            outer: Outer::Authenticated(der.to_vec()),
            pki_data_der: content.content,
            pki_data,
            signer: OuterSigner::SharedSecretMac,
            controls,
            requests,
        })
    }

    /// DER of reqSequence as received (the identity proof covers it, CMC-44).
    pub fn req_sequence_der(&self) -> Result<Vec<u8>, Failure> {
        let bad =
            |e: der::Error| Failure::message(CmcFailInfo::BAD_REQUEST, format!("PKIData: {e}"));
        let mut r = der::SliceReader::new(&self.pki_data_der).map_err(bad)?;
        let header = der::Header::decode(&mut r).map_err(bad)?;
        let _ = header;
        let _controls = r.tlv_bytes().map_err(bad)?;
        Ok(r.tlv_bytes().map_err(bad)?.to_vec())
    }

    /// Checks Identity Proof V2 or V1 (CMC-43..CMC-45) with the shared secret the caller found
    /// for the Identification control. A mismatch is badIdentity.
    pub fn verify_identity_proof(&self, secret: &[u8]) -> Result<(), Failure> {
        let req_seq = self.req_sequence_der()?;
        let ident = self
            .controls
            .identification
            .as_ref()
            .map(|(_, s)| s.as_bytes());
        if let Some((id, proof)) = &self.controls.identity_proof_v2 {
            let ok = crate::linking::identity_proof_v2(proof, secret, ident, &req_seq)
                .map_err(|e| Failure::body_part(CmcFailInfo::BAD_ALG, *id, e))?;
            return if ok {
                Ok(())
            } else {
                Err(Failure::body_part(
                    CmcFailInfo::BAD_IDENTITY,
                    *id,
                    "the identity proof does not verify with the shared secret",
                ))
            };
        }
        if let Some((id, witness)) = &self.controls.identity_proof_v1 {
            let ok = crate::linking::identity_proof_v1(witness, secret, &req_seq)
                .map_err(|e| Failure::body_part(CmcFailInfo::BAD_ALG, *id, e))?;
            return if ok {
                Ok(())
            } else {
                Err(Failure::body_part(
                    CmcFailInfo::BAD_IDENTITY,
                    *id,
                    "the identity proof does not verify with the shared secret",
                ))
            };
        }
        Err(Failure::message(
            CmcFailInfo::BAD_IDENTITY,
            "no identity proof control",
        ))
    }

    /// Checks the POP Link Witness of every request against POP Link Random (CMC-48).
    pub fn verify_pop_link(&self, secret: &[u8]) -> Result<(), Failure> {
        let Some((rid, random)) = &self.controls.pop_link_random else {
            return Ok(());
        };
        for req in self.requests.iter().flatten() {
            let Some(w) = &req.pop_link_witness else {
                return Err(Failure::body_part(
                    CmcFailInfo::POP_FAILED,
                    req.body_part_id,
                    "POP Link Random is present but this request has no POP Link Witness (CMC-48)",
                ));
            };
            let ok = crate::linking::pop_link_witness(w, secret, random)
                .map_err(|e| Failure::body_part(CmcFailInfo::BAD_ALG, *rid, e))?;
            if !ok {
                return Err(Failure::body_part(
                    CmcFailInfo::POP_FAILED,
                    req.body_part_id,
                    "the POP Link Witness does not verify",
                ));
            }
        }
        Ok(())
    }

    /// Whether the request carries a shared-secret identity proof.
    pub fn has_identity_proof(&self) -> bool {
        self.controls.identity_proof_v2.is_some() || self.controls.identity_proof_v1.is_some()
    }
}

/// Decodes the encapsulated PKIData and its controls (CMC-1, CMC-6, CMC-9).
fn read_pki_data(
    content_type: ObjectIdentifier,
    content: &[u8],
) -> Result<(PkiData, Controls), RequestError> {
    let empty = Controls::default();
    if content_type != oids::CT_PKI_DATA {
        return Err(cmc(
            Failure::message(
                CmcFailInfo::BAD_REQUEST,
                format!("eContentType is {content_type}, not id-cct-PKIData (CMC-1)"),
            ),
            &empty,
        ));
    }
    let pki_data = PkiData::from_der(content).map_err(|e| {
        cmc(
            Failure::message(CmcFailInfo::BAD_REQUEST, format!("PKIData: {e}")),
            &empty,
        )
    })?;
    let controls = Controls::read(&pki_data).map_err(|f| cmc(f, &empty))?;
    check_unique_body_parts(&pki_data).map_err(|f| cmc(f, &controls))?;
    Ok((pki_data, controls))
}

/// The most PBKDF2 iterations a client may make the server spend on one AuthenticatedData
/// request (SEC: an unauthenticated request must not buy seconds of CPU).
pub const MAX_MAC_PBKDF2_ITERATIONS: u32 = 200_000;

/// Refuses password recipients whose key derivation would cost more than
/// [`MAX_MAC_PBKDF2_ITERATIONS`] before any key is derived.
fn check_pbkdf2_cost(der: &[u8]) -> Result<(), Failure> {
    let bad = |m: String| Failure::message(CmcFailInfo::BAD_MESSAGE_CHECK, m);
    let ci = cms::content_info::ContentInfo::from_der(der).map_err(|e| bad(e.to_string()))?;
    let ad: cms::authenticated_data::AuthenticatedData = ci
        .content
        .decode_as()
        .map_err(|e: der::Error| bad(e.to_string()))?;
    for ri in ad.recip_infos.0.iter() {
        if let cms::enveloped_data::RecipientInfo::Pwri(p) = ri
            && let Some(kdf) = &p.key_derivation_alg
            && let Some(params) = &kdf.parameters
            && let Ok(pb) = params.decode_as::<est_cms::Pbkdf2Params>()
            && pb.iteration_count > MAX_MAC_PBKDF2_ITERATIONS
        {
            return Err(bad(format!(
                "PBKDF2 iteration count {} exceeds {MAX_MAC_PBKDF2_ITERATIONS}",
                pb.iteration_count
            )));
        }
    }
    Ok(())
}

/// The nested Full PKI Requests of a PKIData's cmsSequence (SignedData(PKIData) entries).
#[allow(clippy::type_complexity)]
fn read_nested(
    pki: &PkiData,
    policy: RequestPolicy,
    depth: usize,
) -> Result<Vec<(BodyPartId, Result<Box<FullPkiRequest>, Failure>)>, RequestError> {
    let mut out = Vec::new();
    for tci in &pki.cms_sequence {
        if tci.content_info.content_type != est_cms::oids::ID_SIGNED_DATA {
            continue; // CMC-10
        }
        let id = tci.body_part_id;
        if depth + 1 >= MAX_NESTING {
            out.push((
                id,
                Err(Failure::body_part(
                    CmcFailInfo::BAD_REQUEST,
                    id,
                    format!("PKIData nested more than {MAX_NESTING} deep"),
                )),
            ));
            continue;
        }
        let der = tci
            .content_info
            .to_der()
            .map_err(|e| RequestError::NotCms(format!("cmsSequence entry {id}: {e}")))?;
        let parsed = match FullPkiRequest::parse_signed_at(&der, policy, depth + 1) {
            Ok(r) => Ok(Box::new(r)),
            Err(RequestError::NotCms(why)) => {
                Err(Failure::body_part(CmcFailInfo::BAD_REQUEST, id, why))
            }
            Err(RequestError::Cmc { mut failure, .. }) => {
                // Re-address the inner failure to this entry (CMC-7: paths run inwards).
                failure.body_list = failure
                    .body_list
                    .into_iter()
                    .map(|r| prefix_path(id, r))
                    .collect();
                Err(failure)
            }
        };
        out.push((id, parsed));
    }
    Ok(out)
}

/// `reference` inside cmsSequence entry `id`, as a BodyPartPath from this layer (CMC-7).
pub fn prefix_path(id: BodyPartId, reference: BodyPartReference) -> BodyPartReference {
    match reference {
        // Body part 0 of the inner PKIData is the entry itself.
        BodyPartReference::Id(0) => BodyPartReference::Id(id),
        BodyPartReference::Id(inner) => BodyPartReference::Path(vec![id, inner]),
        BodyPartReference::Path(mut p) => {
            p.insert(0, id);
            BodyPartReference::Path(p)
        }
    }
}

/// CMC-6: body part IDs are unique within one PKIData.
fn check_unique_body_parts(pki: &PkiData) -> Result<(), Failure> {
    let mut ids: Vec<BodyPartId> = Vec::new();
    ids.extend(pki.control_sequence.iter().map(|c| c.body_part_id));
    for r in &pki.req_sequence {
        match r.body_part_id() {
            Some(id) => ids.push(id),
            None => {
                return Err(Failure::message(
                    CmcFailInfo::BAD_REQUEST,
                    "a CRMF certReqId is not a valid BodyPartID (0..4294967295)",
                ));
            }
        }
    }
    ids.extend(pki.cms_sequence.iter().map(|c| c.body_part_id));
    ids.extend(pki.other_msg_sequence.iter().map(|o| o.body_part_id));
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            w[0],
            format!("body part ID {} is used twice in one PKIData (CMC-6)", w[0]),
        ));
    }
    if ids.contains(&0) {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            0,
            "body part ID 0 refers to the PKIData itself and cannot name a body part (CMC-6)",
        ));
    }
    Ok(())
}

/// The body part ID, requested SubjectKeyIdentifier and SPKI DER of a request, read even
/// when the request itself fails its checks (the outer signature is checked apart).
fn request_key(req: &TaggedRequest) -> Option<(BodyPartId, Vec<u8>, Vec<u8>)> {
    let (id, spki, exts): (BodyPartId, _, Vec<Extension>) = match req {
        TaggedRequest::Tcr(t) => {
            let info = &t.certification_request.info;
            let exts = info
                .attributes
                .iter()
                .filter(|a| a.oid == oids::EXTENSION_REQUEST)
                .filter_map(|a| a.values.iter().next())
                .filter_map(|v| v.decode_as::<Vec<Extension>>().ok())
                .flatten()
                .collect();
            (t.body_part_id, info.public_key.clone(), exts)
        }
        TaggedRequest::Crm(m) => {
            let t = &m.cert_req.cert_template;
            (
                m.cert_req.body_part_id()?,
                t.public_key.clone()?,
                t.extensions.clone().unwrap_or_default(),
            )
        }
        TaggedRequest::Orm(_) => return None,
    };
    let ski = exts
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
        .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())?;
    Some((id, ski.0.as_bytes().to_vec(), spki.to_der().ok()?))
}

/// CMC-16/CMC-17: find and verify the outer signer.
fn outer_signer(signed: &est_cms::ParsedSignedData, pki: &PkiData) -> Result<OuterSigner, Failure> {
    let bad_sig = |e: String| Failure::message(CmcFailInfo::BAD_MESSAGE_CHECK, e);
    if signed.signer_infos.is_empty() {
        return if pki.req_sequence.is_empty() && pki.cms_sequence.is_empty() {
            Ok(OuterSigner::Unsigned)
        } else {
            Err(bad_sig(
                "the SignedData has no SignerInfo: only a Revocation Request with its passphrase may be unsigned (CMC-16, CMC-72)".into(),
            ))
        };
    }
    // CMC-25: at most one CMC Unsigned Data attribute per SignerInfo, one value, well formed
    // (its content is not acted on: no control of ours needs data outside the signature).
    for (si, _) in &signed.signer_infos {
        crate::ra::unsigned_data_of(si.unsigned_attrs.as_ref())
            .map_err(|e| Failure::message(CmcFailInfo::BAD_REQUEST, e))?;
    }
    let keys: Vec<_> = pki.req_sequence.iter().filter_map(request_key).collect();
    // A SignerInfo naming a request's key by SKI: the request-key form.
    let by_request = signed
        .signer_infos
        .iter()
        .enumerate()
        .find_map(|(i, (si, _))| match &si.sid {
            cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(ski) => keys
                .iter()
                .find(|(_, k, _)| k.as_slice() == ski.0.as_bytes())
                .map(|k| (i, k)),
            _ => None,
        });
    if let Some((index, (id, _, spki_der))) = by_request {
        // CMC-17: exactly one SignerInfo.
        if signed.signer_infos.len() != 1 {
            return Err(bad_sig(
                "a request signed with the key it certifies must have exactly one SignerInfo (CMC-17)".into(),
            ));
        }
        let key = est_cms::VerifyKey::from_spki_der(spki_der)
            .map_err(|e| bad_sig(format!("request public key: {e}")))?;
        signed
            .verify_with(index, &key)
            .map_err(|e| bad_sig(format!("the request signature does not verify: {e}")))?;
        return Ok(OuterSigner::RequestKey(*id));
    }
    // Otherwise every SignerInfo must verify with a carried certificate; the first is the
    // signer the caller authorizes (we produce and accept one).
    if signed.signer_infos.len() != 1 {
        return Err(bad_sig(format!(
            "{} SignerInfos: exactly one is accepted",
            signed.signer_infos.len()
        )));
    }
    // A key identifier that names neither a request here nor a carried certificate: the
    // caller may know the key (a Query Pending signed with the key of the held request).
    if let cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(ski) =
        &signed.signer_infos[0].0.sid
        && pki.req_sequence.is_empty()
        && !signed.certificates.iter().any(|c| {
            matches!(c.tbs_certificate().get_extension::<SubjectKeyIdentifier>(),
                Ok(Some((_, k))) if k.0.as_bytes() == ski.0.as_bytes())
        })
    {
        return Ok(OuterSigner::KeyIdentifier {
            key_id: ski.0.as_bytes().to_vec(),
        });
    }
    let cert = signed.verify_with_certificate(0).map_err(|e| {
        bad_sig(format!(
            "the SignedData signature does not verify: {e} (a request signed with its own key needs a SubjectKeyIdentifier extension and sid = subjectKeyIdentifier, CMC-17)"
        ))
    })?;
    Ok(OuterSigner::Certificate {
        cert: Box::new(cert),
        pool: signed.certificates.clone(),
    })
}
