//! One certification request of a reqSequence, PKCS#10 or CRMF, checked and normalised
//! (CMC-13..CMC-15, CMC-23, CMC-24, CMC-48, CMC-59..CMC-61, CMC-68).
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{SubjectAltName, SubjectKeyIdentifier};
use x509_cert::name::Name;

use crate::RequestPolicy;
use crate::controls::{ChangeSubjectName, PopLinkWitnessV2};
use crate::crmf::{CertReqMsg, ProofOfPossession};
use crate::error::Failure;
use crate::oids;
use crate::types::{BodyPartId, BodyPartReference, CmcFailInfo, CmcStatus, TaggedRequest};

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
    /// POP is key encipherment or key agreement: the key is proven by Encrypted/Decrypted POP
    /// (CMC-67) before anything is issued.
    pub encrypted_pop: bool,
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

impl CertificationRequest {
    /// Decodes and checks one TaggedRequest (CMC-11, CMC-13, CMC-14, CMC-15, POP).
    pub fn read(req: &TaggedRequest, policy: RequestPolicy) -> Result<Self, Failure> {
        match req {
            TaggedRequest::Tcr(t) => {
                Self::pkcs10(t.body_part_id, &t.certification_request, Some(policy))
            }
            TaggedRequest::Crm(m) => Self::crmf(m, Some(policy)),
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

    /// Reads the certificateRequest of a ServerKeyGenRequest: the same syntax checks as
    /// [`Self::read`] (CMC-14, CMC-15, CMC-23) but no signature or POP check, since the client
    /// holds no key yet (SKGD-5): a PKCS#10 may be signed with id-alg-noSignature or anything
    /// else, its subjectPublicKey may be empty (SKGD-3), a CRMF popo may be absent.
    pub(crate) fn read_without_pop(req: &TaggedRequest) -> Result<Self, Failure> {
        match req {
            TaggedRequest::Tcr(t) => Self::pkcs10(t.body_part_id, &t.certification_request, None),
            TaggedRequest::Crm(m) => Self::crmf(m, None),
            TaggedRequest::Orm(_) => Self::read(req, RequestPolicy::default()),
        }
    }

    /// Reads a request kept as [`Self::request_der`] (a held request, re-checked in full).
    pub fn from_stored(der: &[u8], policy: RequestPolicy) -> Result<Self, Failure> {
        if let Ok(csr) = x509_cert::request::CertReq::from_der(der) {
            return Self::pkcs10(1, &csr, Some(policy));
        }
        let msg = CertReqMsg::from_der(der).map_err(|e| {
            Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, format!("held request: {e}"))
        })?;
        Self::crmf(&msg, Some(policy))
    }

    /// `pop`: the policy to verify the signature with, `None` to skip it (SKGD-5).
    fn pkcs10(
        id: BodyPartId,
        csr: &x509_cert::request::CertReq,
        pop: Option<RequestPolicy>,
    ) -> Result<Self, Failure> {
        let bad = |info: CmcFailInfo, m: String| Failure::body_part(info, id, m);
        let der = csr
            .to_der()
            .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("PKCS#10: {e}")))?;
        let spki_der = csr
            .info
            .public_key
            .to_der()
            .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("public key: {e}")))?;
        if let Some(policy) = pop {
            check_pop_alg(&csr.algorithm.oid, policy).map_err(|m| bad(CmcFailInfo::BAD_ALG, m))?;
            let key = est_cms::VerifyKey::from_spki_der(&spki_der)
                .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("public key: {e}")))?;
            // The signature covers CertificationRequestInfo as encoded (strict DER decoding
            // makes the re-encoding identical).
            let info = csr
                .info
                .to_der()
                .map_err(|e| bad(CmcFailInfo::BAD_REQUEST, format!("PKCS#10: {e}")))?;
            let sig = csr.signature.as_bytes().unwrap_or_default();
            if est_cms::verify_x509_signature_with(&key, &csr.algorithm, &info, sig).is_err() {
                return Err(bad(
                    CmcFailInfo::POP_FAILED,
                    "the PKCS#10 signature does not verify (proof of possession failed)".into(),
                ));
            }
        }
        let mut extensions = Vec::new();
        let mut extension_requests = 0usize;
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
                    extension_requests += 1;
                    if extension_requests > 1 {
                        return Err(bad(
                            CmcFailInfo::BAD_REQUEST,
                            "the request has more than one extensionRequest attribute".into(),
                        ));
                    }
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

    /// `verify`: the policy to verify the POP with, `None` to skip it (SKGD-5).
    fn crmf(msg: &CertReqMsg, verify: Option<RequestPolicy>) -> Result<Self, Failure> {
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
        let mut encrypted = false;
        match &msg.popo {
            // SKGD-5: no POP of a key the client does not have; POPOSigningKeyInput is still
            // refused (CMC-14).
            Some(ProofOfPossession::Signature(p))
                if verify.is_none() && p.poposk_input.is_some() =>
            {
                return Err(bad(
                    CmcFailInfo::BAD_REQUEST,
                    "POPOSigningKeyInput must not be used in CMC (CMC-14)",
                ));
            }
            _ if verify.is_none() => {}
            Some(ProofOfPossession::Signature(pop)) => {
                if pop.poposk_input.is_some() {
                    return Err(bad(
                        CmcFailInfo::BAD_REQUEST,
                        "POPOSigningKeyInput must not be used in CMC (CMC-14)",
                    ));
                }
                let policy = verify.unwrap_or_default();
                check_pop_alg(&pop.algorithm_identifier.oid, policy)
                    .map_err(|m| Failure::body_part(CmcFailInfo::BAD_ALG, id, m))?;
                let key = est_cms::VerifyKey::from_spki_der(&spki_der)
                    .map_err(|_| bad(CmcFailInfo::BAD_REQUEST, "unusable public key"))?;
                let sig = pop.signature.as_bytes().ok_or_else(|| {
                    bad(CmcFailInfo::POP_FAILED, "POP signature is not whole octets")
                })?;
                est_cms::verify_x509_signature_with(
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
            // The caller runs the Encrypted/Decrypted POP exchange (CMC-67).
            Some(ProofOfPossession::KeyEncipherment(_) | ProofOfPossession::KeyAgreement(_)) => {
                encrypted = true;
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
        r.encrypted_pop = encrypted;
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
        // RFC 5280 §4.2: one instance per extension; a set keeps 2,000 duplicates cheap.
        let mut seen = std::collections::HashSet::with_capacity(extensions.len());
        for ext in &extensions {
            if !seen.insert(ext.extn_id) {
                return Err(bad(format!(
                    "extension {} is requested more than once (RFC 5280 §4.2)",
                    ext.extn_id
                )));
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
            encrypted_pop: false,
            request_der,
        })
    }

    /// Applies an authorized RA's Modify Certification Request (CMC-59): with `replace`,
    /// present fields replace the request's (each extension counting as one field); without,
    /// they are deleted. Subject, SAN and extensions are the fields this CA certifies from.
    /// A replacing SubjectAltName that does not decode is refused (badRequest), never
    /// dropped.
    pub fn apply_mod_cert_template(
        &mut self,
        m: &crate::controls::ModCertTemplate,
    ) -> Result<(), Failure> {
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
                    Some(self.decode_san(ext)?)
                } else {
                    None
                };
            }
        }
        Ok(())
    }

    fn decode_san(&self, ext: &Extension) -> Result<SubjectAltName, Failure> {
        SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(|e| {
            Failure::body_part(
                CmcFailInfo::BAD_REQUEST,
                self.body_part_id,
                format!("subjectAltName: {e}"),
            )
        })
    }

    /// Applies Add Extensions (CMC-60, deprecated): each extension replaces one of the same
    /// type.
    pub fn apply_add_extensions(&mut self, extensions: &[Extension]) -> Result<(), Failure> {
        for ext in extensions {
            self.extensions.retain(|e| e.extn_id != ext.extn_id);
            self.extensions.push(ext.clone());
            if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                self.san = Some(self.decode_san(ext)?);
            }
        }
        Ok(())
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
