//! Reading a Full PKI Request (RFC 5272 §3.2): the outer CMS layer, the PKIData, its controls
//! and its certification requests, with every check that needs no I/O. What needs the CA's
//! state (a shared secret, the replay table, the store) is left to the caller, which gets
//! typed values and pure check functions for it.
use der::asn1::{Int, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Reader};
use openssl::pkey::{PKey, Public};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{SubjectAltName, SubjectKeyIdentifier};
use x509_cert::name::Name;

use crate::controls::{
    ChangeSubjectName, ControlsProcessed, GetCert, GetCrl, IdentifyProofV2, PopLinkWitnessV2,
    RevokeRequest, describe,
};
use crate::crmf::{CertReqMsg, ProofOfPossession};
use crate::error::Failure;
use crate::oids;
use crate::types::{
    BodyPartId, BodyPartReference, CmcFailInfo, CmcStatus, PkiData, TaggedAttribute, TaggedRequest,
};

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

/// The known controls of one PKIData, decoded (RFC 5272 §6). Repeated single-valued controls
/// and malformed values are failures of the whole PKIData.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub transaction_id: Option<Int>,
    pub sender_nonce: Option<Vec<u8>>,
    pub data_return: Option<Vec<u8>>,
    /// (bodyPartID, value)
    pub identification: Option<(BodyPartId, String)>,
    pub identity_proof_v2: Option<(BodyPartId, IdentifyProofV2)>,
    pub identity_proof_v1: Option<(BodyPartId, Vec<u8>)>,
    pub pop_link_random: Option<(BodyPartId, Vec<u8>)>,
    pub query_pending: Vec<(BodyPartId, Vec<u8>)>,
    pub get_cert: Vec<(BodyPartId, GetCert)>,
    pub get_crl: Vec<(BodyPartId, GetCrl)>,
    pub revoke: Vec<(BodyPartId, RevokeRequest)>,
    pub confirm_cert_acceptance: Vec<(BodyPartId, crate::controls::CmcCertId)>,
    pub reg_info: Vec<(BodyPartId, Vec<u8>)>,
    /// Controls an RA marked processed (CMC-65).
    pub processed: Vec<BodyPartReference>,
    /// RA controls, honoured only from an authorized RA (CMC-56).
    pub lra_pop_witness: Vec<(BodyPartId, crate::controls::LraPopWitness)>,
    pub mod_cert_template: Vec<(BodyPartId, crate::controls::ModCertTemplate)>,
    pub add_extensions: Vec<(BodyPartId, crate::controls::AddExtensions)>,
    pub ra_identity_witness: Vec<(BodyPartId, Vec<BodyPartId>)>,
    /// Batch Requests (CMC-66): the cmsSequence entries to answer one by one.
    pub batch_requests: Vec<(BodyPartId, Vec<BodyPartId>)>,
    /// Controls this server does not act on, not marked processed (CMC-9).
    pub unsupported: Vec<(BodyPartId, ObjectIdentifier)>,
}

/// A certification request from reqSequence, checked and normalised (PKCS#10 `tcr` or CRMF
/// `crm`).
#[derive(Debug, Clone)]
pub struct CertificationRequest {
    pub body_part_id: BodyPartId,
    pub form: RequestForm,
    pub subject: Name,
    pub spki: SubjectPublicKeyInfoOwned,
    pub spki_der: Vec<u8>,
    /// SubjectAltName requested (extensionRequest or certTemplate extensions).
    pub san: Option<SubjectAltName>,
    /// The SubjectKeyIdentifier extension requested, raw key identifier.
    pub ski: Option<Vec<u8>>,
    /// Every extension requested (CMC-15).
    pub extensions: Vec<Extension>,
    /// ChangeSubjectName (CMC-23).
    pub change_subject_name: Option<ChangeSubjectName>,
    pub pop_link_witness: Option<PopLinkWitness>,
    /// POP is `raVerified`: acceptable only with an authorized RA's RA POP Witness (CMC-61).
    pub ra_verified_pop: bool,
    /// The request as received: DER PKCS#10, or DER CertReqMsg (for holding it, see
    /// [`CertificationRequest::from_stored`]).
    pub request_der: Vec<u8>,
}

/// The request syntax a certification request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestForm {
    Pkcs10,
    Crmf,
}

/// A POP Link Witness of a request (CMC-48).
#[derive(Debug, Clone)]
pub enum PopLinkWitness {
    V2(PopLinkWitnessV2),
    /// Fixed SHA-1 / HMAC-SHA1.
    V1(Vec<u8>),
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
        if signed.content_type != oids::CT_PKI_DATA {
            return Err(cmc(
                Failure::message(
                    CmcFailInfo::BAD_REQUEST,
                    format!(
                        "eContentType is {}, not id-cct-PKIData (CMC-1)",
                        signed.content_type
                    ),
                ),
                &empty,
            ));
        }
        let pki_data = PkiData::from_der(&signed.content).map_err(|e| {
            cmc(
                Failure::message(CmcFailInfo::BAD_REQUEST, format!("PKIData: {e}")),
                &empty,
            )
        })?;
        let controls = Controls::read(&pki_data).map_err(|f| cmc(f, &empty))?;
        check_unique_body_parts(&pki_data).map_err(|f| cmc(f, &controls))?;
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
        let key = PKey::<Public>::public_key_from_der(spki_der)
            .map_err(|e| bad(format!("public key: {e}")))?;
        let Outer::Signed(signed) = &self.outer else {
            return Err(bad("not a signed request".into()));
        };
        signed
            .verify_with_key(0, &key)
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
                            PKey::<Public>::public_key_from_der(&spki)
                                .is_ok_and(|k| outer.verify_with_key(0, &k).is_ok())
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
        if content.content_type != oids::CT_PKI_DATA {
            return Err(cmc(
                Failure::message(
                    CmcFailInfo::BAD_REQUEST,
                    format!(
                        "eContentType is {}, not id-cct-PKIData (CMC-1)",
                        content.content_type
                    ),
                ),
                &empty,
            ));
        }
        let pki_data = PkiData::from_der(&content.content).map_err(|e| {
            cmc(
                Failure::message(CmcFailInfo::BAD_REQUEST, format!("PKIData: {e}")),
                &empty,
            )
        })?;
        let controls = Controls::read(&pki_data).map_err(|f| cmc(f, &empty))?;
        check_unique_body_parts(&pki_data).map_err(|f| cmc(f, &controls))?;
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
        let key = PKey::<Public>::public_key_from_der(spki_der)
            .map_err(|e| bad_sig(format!("request public key: {e}")))?;
        signed
            .verify_with_key(index, &key)
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

impl Controls {
    /// Decodes every control of `pki` (CMC-8, CMC-9).
    pub fn read(pki: &PkiData) -> Result<Self, Failure> {
        let mut c = Controls::default();
        // Controls marked processed by an RA first: they are not ours to fail on (CMC-65).
        for attr in pki
            .control_sequence
            .iter()
            .filter(|a| a.attr_type == oids::CONTROL_PROCESSED)
        {
            let v: ControlsProcessed = single_value(attr)?;
            c.processed.extend(v.body_list);
        }
        for attr in &pki.control_sequence {
            c.read_one(attr)?;
        }
        Ok(c)
    }

    fn is_processed(&self, id: BodyPartId) -> bool {
        self.processed
            .iter()
            .any(|r| matches!(r, BodyPartReference::Id(x) if *x == id))
    }

    fn read_one(&mut self, attr: &TaggedAttribute) -> Result<(), Failure> {
        let id = attr.body_part_id;
        let once = |present: bool| {
            if present {
                Err(Failure::body_part(
                    CmcFailInfo::BAD_REQUEST,
                    id,
                    format!("{} appears more than once", describe(&attr.attr_type)),
                ))
            } else {
                Ok(())
            }
        };
        match attr.attr_type {
            oids::TRANSACTION_ID => {
                once(self.transaction_id.is_some())?;
                self.transaction_id = Some(single_value(attr)?);
            }
            oids::SENDER_NONCE => {
                once(self.sender_nonce.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.sender_nonce = Some(v.into_bytes().into());
            }
            oids::DATA_RETURN => {
                once(self.data_return.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.data_return = Some(v.into_bytes().into());
            }
            oids::IDENTIFICATION => {
                once(self.identification.is_some())?;
                let v: String = single_value(attr)?;
                self.identification = Some((id, v));
            }
            oids::IDENTITY_PROOF_V2 => {
                once(self.identity_proof_v2.is_some())?;
                self.identity_proof_v2 = Some((id, single_value(attr)?));
            }
            oids::IDENTITY_PROOF => {
                once(self.identity_proof_v1.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.identity_proof_v1 = Some((id, v.into_bytes().into()));
            }
            oids::POP_LINK_RANDOM => {
                once(self.pop_link_random.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.pop_link_random = Some((id, v.into_bytes().into()));
            }
            oids::QUERY_PENDING => {
                let v: OctetString = single_value(attr)?;
                self.query_pending.push((id, v.into_bytes().into()));
            }
            oids::GET_CERT => self.get_cert.push((id, single_value(attr)?)),
            oids::GET_CRL => self.get_crl.push((id, single_value(attr)?)),
            oids::REVOKE_REQUEST => self.revoke.push((id, single_value(attr)?)),
            oids::CONFIRM_CERT_ACCEPTANCE => {
                self.confirm_cert_acceptance.push((id, single_value(attr)?))
            }
            oids::REG_INFO => {
                let v: OctetString = single_value(attr)?;
                self.reg_info.push((id, v.into_bytes().into()));
            }
            oids::CONTROL_PROCESSED => {}
            oids::LRA_POP_WITNESS => self.lra_pop_witness.push((id, single_value(attr)?)),
            oids::MOD_CERT_TEMPLATE => self.mod_cert_template.push((id, single_value(attr)?)),
            oids::ADD_EXTENSIONS => self.add_extensions.push((id, single_value(attr)?)),
            oids::RA_IDENTITY_WITNESS => self.ra_identity_witness.push((id, single_value(attr)?)),
            oids::BATCH_REQUESTS => {
                let list: Vec<BodyPartId> = single_value(attr)?;
                if list.is_empty() {
                    return Err(Failure::body_part(
                        CmcFailInfo::BAD_REQUEST,
                        id,
                        "batchRequests lists no body part (CMC-66)",
                    ));
                }
                self.batch_requests.push((id, list));
            }
            // recipientNonce in a request: the client answers our earlier senderNonce; we keep
            // no transaction state across requests, so it is accepted and not checked.
            oids::RECIPIENT_NONCE => {
                let _: OctetString = single_value(attr)?;
            }
            other => {
                if !self.is_processed(id) {
                    self.unsupported.push((id, other));
                }
            }
        }
        Ok(())
    }

    /// The body part IDs of RA-only controls (CMC-56, CMC-59..CMC-62, CMC-66).
    pub fn ra_controls(&self) -> Vec<BodyPartId> {
        let mut ids: Vec<BodyPartId> = Vec::new();
        ids.extend(self.lra_pop_witness.iter().map(|c| c.0));
        ids.extend(self.mod_cert_template.iter().map(|c| c.0));
        ids.extend(self.add_extensions.iter().map(|c| c.0));
        ids.extend(self.ra_identity_witness.iter().map(|c| c.0));
        ids
    }

    /// CMC-9: the failure for controls this server does not act on, if any.
    pub fn unsupported_failure(&self) -> Option<Failure> {
        if self.unsupported.is_empty() {
            return None;
        }
        let names: Vec<String> = self.unsupported.iter().map(|(_, o)| describe(o)).collect();
        Some(Failure {
            fail_info: CmcFailInfo::BAD_REQUEST,
            status: CmcStatus::FAILED,
            body_list: self
                .unsupported
                .iter()
                .map(|(id, _)| BodyPartReference::Id(*id))
                .collect(),
            reason: format!(
                "control(s) not supported by this server and not marked processed: {} (CMC-9)",
                names.join(", ")
            ),
        })
    }
}

fn single_any(attr: &TaggedAttribute) -> Result<&der::Any, Failure> {
    if attr.attr_values.len() != 1 {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            attr.body_part_id,
            format!("{} must have exactly one value", describe(&attr.attr_type)),
        ));
    }
    attr.attr_values.iter().next().ok_or_else(|| {
        Failure::body_part(CmcFailInfo::BAD_REQUEST, attr.body_part_id, "empty control")
    })
}

fn malformed(attr: &TaggedAttribute, e: der::Error) -> Failure {
    Failure::body_part(
        CmcFailInfo::BAD_REQUEST,
        attr.body_part_id,
        format!("malformed {}: {e}", describe(&attr.attr_type)),
    )
}

fn single_value<T>(attr: &TaggedAttribute) -> Result<T, Failure>
where
    T: for<'a> Decode<'a, Error = der::Error>,
{
    let der = single_any(attr)?.to_der().map_err(|e| malformed(attr, e))?;
    T::from_der(&der).map_err(|e| malformed(attr, e))
}

impl CertificationRequest {
    /// Decodes and checks one TaggedRequest (CMC-11, CMC-13, CMC-14, CMC-15, POP).
    pub fn read(req: &TaggedRequest, policy: RequestPolicy) -> Result<Self, Failure> {
        match req {
            TaggedRequest::Tcr(t) => Self::pkcs10(t.body_part_id, &t.certification_request, policy),
            TaggedRequest::Crm(m) => Self::crmf(m, policy),
            TaggedRequest::Orm(o) => Err(Failure {
                fail_info: CmcFailInfo::BAD_REQUEST,
                status: CmcStatus::NO_SUPPORT,
                body_list: vec![BodyPartReference::Id(o.body_part_id)],
                reason: format!(
                    "other request message type {} is not supported (CMC-11)",
                    o.request_message_type
                ),
            }),
        }
    }

    /// Reads a request kept as [`Self::request_der`] (a held request, re-checked in full).
    pub fn from_stored(der: &[u8], policy: RequestPolicy) -> Result<Self, Failure> {
        if let Ok(csr) = x509_cert::request::CertReq::from_der(der) {
            return Self::pkcs10(1, &csr, policy);
        }
        let msg = CertReqMsg::from_der(der).map_err(|e| {
            Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, format!("held request: {e}"))
        })?;
        Self::crmf(&msg, policy)
    }

    fn pkcs10(
        id: BodyPartId,
        csr: &x509_cert::request::CertReq,
        policy: RequestPolicy,
    ) -> Result<Self, Failure> {
        let bad = |info: CmcFailInfo, m: String| Failure::body_part(info, id, m);
        let der = csr
            .to_der()
            .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("PKCS#10: {e}")))?;
        check_pop_alg(&csr.algorithm.oid, policy).map_err(|m| bad(CmcFailInfo::BAD_ALG, m))?;
        let req = openssl::x509::X509Req::from_der(&der)
            .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("PKCS#10: {e}")))?;
        let spki_der = csr
            .info
            .public_key
            .to_der()
            .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("public key: {e}")))?;
        let key = PKey::public_key_from_der(&spki_der)
            .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("public key: {e}")))?;
        if !req.verify(&key).unwrap_or(false) {
            return Err(bad(
                CmcFailInfo::POP_FAILED,
                "the PKCS#10 signature does not verify (proof of possession failed)".into(),
            ));
        }
        let mut extensions = Vec::new();
        let mut change_subject_name = None;
        let mut pop_link_witness = None;
        for attr in csr.info.attributes.iter() {
            let value = || {
                if attr.values.len() != 1 {
                    return Err(bad(
                        CmcFailInfo::BAD_REQUEST,
                        format!("attribute {} must have one value", attr.oid),
                    ));
                }
                attr.values
                    .iter()
                    .next()
                    .ok_or_else(|| bad(CmcFailInfo::BAD_REQUEST, "empty attribute".into()))
            };
            let dec = |e: der::Error| {
                bad(
                    CmcFailInfo::BAD_REQUEST,
                    format!("attribute {}: {e}", attr.oid),
                )
            };
            match attr.oid {
                oids::EXTENSION_REQUEST => {
                    let exts: Vec<Extension> = value()?.decode_as().map_err(dec)?;
                    extensions.extend(exts);
                }
                oids::CHANGE_SUBJECT_NAME => {
                    change_subject_name = Some(value()?.decode_as().map_err(dec)?)
                }
                oids::POP_LINK_WITNESS_V2 => {
                    pop_link_witness = Some(PopLinkWitness::V2(value()?.decode_as().map_err(dec)?))
                }
                oids::POP_LINK_WITNESS => {
                    let w: OctetString = value()?.decode_as().map_err(dec)?;
                    pop_link_witness = Some(PopLinkWitness::V1(w.into_bytes().into()));
                }
                _ => {}
            }
        }
        Self::finish(
            id,
            RequestForm::Pkcs10,
            csr.info.subject.clone(),
            csr.info.public_key.clone(),
            spki_der,
            extensions,
            change_subject_name,
            pop_link_witness,
            der,
        )
    }

    fn crmf(msg: &CertReqMsg, policy: RequestPolicy) -> Result<Self, Failure> {
        let id = msg.cert_req.body_part_id().ok_or_else(|| {
            Failure::message(CmcFailInfo::BAD_REQUEST, "certReqId is not a BodyPartID")
        })?;
        let bad = |info: CmcFailInfo, m: &str| Failure::body_part(info, id, m);
        let t = &msg.cert_req.cert_template;
        // CMC-14: subject and publicKey present, no regInfo, no POPOSigningKeyInput, no
        // regToken/authenticator controls.
        let subject = t.subject.clone().ok_or_else(|| {
            bad(
                CmcFailInfo::BAD_REQUEST,
                "certTemplate has no subject (CMC-14; it may be an empty Name)",
            )
        })?;
        let spki = t.public_key.clone().ok_or_else(|| {
            bad(
                CmcFailInfo::BAD_REQUEST,
                "certTemplate has no publicKey (CMC-14)",
            )
        })?;
        if msg.reg_info.is_some() {
            return Err(bad(
                CmcFailInfo::BAD_REQUEST,
                "CRMF regInfo must not be used in CMC (CMC-14)",
            ));
        }
        let mut change_subject_name = None;
        let mut pop_link_witness = None;
        for ctl in msg.cert_req.controls.iter().flatten() {
            let dec = |e: der::Error| {
                Failure::body_part(
                    CmcFailInfo::BAD_REQUEST,
                    id,
                    format!("CRMF control {}: {e}", ctl.oid),
                )
            };
            match ctl.oid {
                oids::REG_CTRL_REG_TOKEN | oids::REG_CTRL_AUTHENTICATOR => {
                    return Err(bad(
                        CmcFailInfo::BAD_REQUEST,
                        "CRMF regToken/authenticator controls must not be used in CMC (CMC-14); use Identity Proof",
                    ));
                }
                oids::CHANGE_SUBJECT_NAME => {
                    change_subject_name = Some(ctl.value.decode_as().map_err(dec)?)
                }
                oids::POP_LINK_WITNESS_V2 => {
                    pop_link_witness = Some(PopLinkWitness::V2(ctl.value.decode_as().map_err(dec)?))
                }
                oids::POP_LINK_WITNESS => {
                    let w: OctetString = ctl.value.decode_as().map_err(dec)?;
                    pop_link_witness = Some(PopLinkWitness::V1(w.into_bytes().into()));
                }
                _ => {}
            }
        }
        let spki_der = spki
            .to_der()
            .map_err(|_| bad(CmcFailInfo::BAD_REQUEST, "public key does not encode"))?;
        let mut ra_verified = false;
        match &msg.popo {
            Some(ProofOfPossession::Signature(pop)) => {
                if pop.poposk_input.is_some() {
                    return Err(bad(
                        CmcFailInfo::BAD_REQUEST,
                        "POPOSigningKeyInput must not be used in CMC (CMC-14)",
                    ));
                }
                check_pop_alg(&pop.algorithm_identifier.oid, policy)
                    .map_err(|m| Failure::body_part(CmcFailInfo::BAD_ALG, id, m))?;
                let key = PKey::public_key_from_der(&spki_der)
                    .map_err(|_| bad(CmcFailInfo::BAD_REQUEST, "unusable public key"))?;
                let sig = pop.signature.as_bytes().ok_or_else(|| {
                    bad(CmcFailInfo::POP_FAILED, "POP signature is not whole octets")
                })?;
                est_cms::verify_x509_signature(
                    &key,
                    &pop.algorithm_identifier,
                    &msg.cert_req_der,
                    sig,
                )
                .map_err(|_| {
                    bad(
                        CmcFailInfo::POP_FAILED,
                        "the CRMF POP signature does not verify",
                    )
                })?;
            }
            // Only an authorized RA's RA POP Witness may stand for POP (CMC-61): the caller
            // checks `ra_verified_pop`.
            Some(ProofOfPossession::RaVerified(_)) => ra_verified = true,
            Some(_) => {
                return Err(bad(
                    CmcFailInfo::POP_FAILED,
                    "key encipherment/agreement POP (Encrypted POP, CMC-67) is not supported; sign the request",
                ));
            }
            None => {
                return Err(bad(
                    CmcFailInfo::POP_REQUIRED,
                    "the CRMF request has no proof of possession (CMC-68)",
                ));
            }
        }
        let request_der = msg
            .to_der()
            .map_err(|_| bad(CmcFailInfo::BAD_REQUEST, "CertReqMsg does not encode"))?;
        let mut r = Self::finish(
            id,
            RequestForm::Crmf,
            subject,
            spki,
            spki_der,
            t.extensions.clone().unwrap_or_default(),
            change_subject_name,
            pop_link_witness,
            request_der,
        )?;
        r.ra_verified_pop = ra_verified;
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        id: BodyPartId,
        form: RequestForm,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        spki_der: Vec<u8>,
        extensions: Vec<Extension>,
        change_subject_name: Option<ChangeSubjectName>,
        pop_link_witness: Option<PopLinkWitness>,
        request_der: Vec<u8>,
    ) -> Result<Self, Failure> {
        let bad = |m: String| Failure::body_part(CmcFailInfo::BAD_REQUEST, id, m);
        let mut san = None;
        let mut ski = None;
        for (i, ext) in extensions.iter().enumerate() {
            if extensions[..i].iter().any(|e| e.extn_id == ext.extn_id) {
                return Err(bad(format!("extension {} is requested twice", ext.extn_id)));
            }
            match ext.extn_id {
                const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME => {
                    san = Some(
                        SubjectAltName::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| bad(format!("subjectAltName: {e}")))?,
                    );
                }
                const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER => {
                    let v = SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| bad(format!("subjectKeyIdentifier: {e}")))?;
                    ski = Some(v.0.as_bytes().to_vec());
                }
                _ => {}
            }
        }
        Ok(Self {
            body_part_id: id,
            form,
            subject,
            spki,
            spki_der,
            san,
            ski,
            extensions,
            change_subject_name,
            pop_link_witness,
            ra_verified_pop: false,
            request_der,
        })
    }

    /// Applies an authorized RA's Modify Certification Request (CMC-59): with `replace`,
    /// present fields replace the request's (each extension counting as one field); without,
    /// they are deleted. Subject, SAN and extensions are the fields this CA certifies from.
    pub fn apply_mod_cert_template(&mut self, m: &crate::controls::ModCertTemplate) {
        let t = &m.cert_template;
        if let Some(subject) = &t.subject {
            self.subject = if m.replace {
                subject.clone()
            } else {
                Name::default()
            };
        }
        for ext in t.extensions.iter().flatten() {
            self.extensions.retain(|e| e.extn_id != ext.extn_id);
            if m.replace {
                self.extensions.push(ext.clone());
            }
            if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                self.san = if m.replace {
                    SubjectAltName::from_der(ext.extn_value.as_bytes()).ok()
                } else {
                    None
                };
            }
        }
    }

    /// Applies Add Extensions (CMC-60, deprecated): each extension replaces one of the same
    /// type.
    pub fn apply_add_extensions(&mut self, extensions: &[Extension]) {
        for ext in extensions {
            self.extensions.retain(|e| e.extn_id != ext.extn_id);
            self.extensions.push(ext.clone());
            if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                self.san = SubjectAltName::from_der(ext.extn_value.as_bytes()).ok();
            }
        }
    }

    /// The names to certify: the request's, or those of ChangeSubjectName (CMC-24: an absent
    /// subject gives an empty Name, an absent subjectAlt removes the SAN).
    pub fn effective_names(&self) -> (Name, Option<SubjectAltName>) {
        match &self.change_subject_name {
            Some(c) => (
                c.subject.clone().unwrap_or_default(),
                c.subject_alt.clone().map(SubjectAltName),
            ),
            None => (self.subject.clone(), self.san.clone()),
        }
    }
}

/// SEC-22 / CMC-29: MD5 and MD2 signatures are never POP; SHA-1 only by policy.
fn check_pop_alg(oid: &ObjectIdentifier, policy: RequestPolicy) -> Result<(), String> {
    const MD5_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
    const MD2_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.2");
    const SHA1_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    const SHA1_ECDSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
    if *oid == MD5_RSA || *oid == MD2_RSA {
        return Err(format!("signature algorithm {oid} is not accepted"));
    }
    if (*oid == SHA1_RSA || *oid == SHA1_ECDSA) && !policy.allow_sha1_pop {
        return Err(
            "SHA-1 signatures on certification requests are not accepted by this profile".into(),
        );
    }
    Ok(())
}
