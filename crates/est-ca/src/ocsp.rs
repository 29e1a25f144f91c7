//! The OCSP responder (RFC 6960): status of the certificates of every CA domain, from the
//! same store the CRLs are made from, signed through the same [`SigningKey`] seam.
//!
//! Protocol-neutral: bytes of a DER OCSPRequest in, bytes of a DER OCSPResponse out (the HTTP
//! transport of RFC 6960 Appendix A lives in est-server). Choices where RFC 6960 leaves room:
//! - a request that does not decode, is not v1, has no or more than [`OCSP_MAX_REQUESTS`]
//!   requests, carries a critical extension we do not understand (§4.4) or a nonce of 0 or
//!   more than [`OCSP_NONCE_MAX_LEN`] octets (RFC 8954 §2.1) gets `malformedRequest` (§2.3);
//! - the signer is chosen by the first CertID whose issuer is one of our CAs; CertIDs of other
//!   issuers in the same request are answered `unknown` (one signature covers one issuer);
//! - a request none of whose CertIDs names one of our CAs gets `unauthorized` (§2.3: we cannot
//!   answer authoritatively; RFC 5019 §2.2.3 does the same);
//! - a serial our CA never issued is `unknown` (§2.2), not "revoked" (the §2.2 option for
//!   non-issued certificates needs the extended-revoke extension; we keep it simple);
//! - a store outage gets `tryLater`, any other failure `internalError`; never a panic.
//!
//! Signing (SEC-10): by the issuing CA key (the default; the CA is then the responder, §4.2.2.2
//! case 1) or by a delegated responder certificate of that CA ([`OcspResponder`], case 3),
//! whose key may sit in another backend than the CA's. responderID is byKey (§4.2.2.3), the
//! response carries no certificates when the CA signs and the responder certificate when a
//! delegate does. Answers are not cached: each one is signed when asked (a nonce makes each
//! one unique anyway).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use est_asn1::ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse, V1, oids,
};
use openssl::hash::MessageDigest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::ExtendedKeyUsage;

use crate::clock::unix_secs;
use crate::crl::{CrlReason, normalize_serial};
use crate::profile::key_identifier;
use crate::{Authority, CaDomain, CaError, CertRecord, CertStatus as StoredStatus, SigningKey};

/// Most CertIDs one OCSPRequest may ask about: each costs a store lookup, and clients ask
/// about one certificate (OpenSSL, browsers) or a chain's few.
pub const OCSP_MAX_REQUESTS: usize = 16;

/// Longest nonce accepted (RFC 8954 §2.1: `Nonce ::= OCTET STRING(SIZE(1..32))`; a responder
/// MUST reject a longer or empty one with malformedRequest).
pub const OCSP_NONCE_MAX_LEN: usize = 32;

/// The hash algorithms a CertID may use (RFC 6960 §4.1.1): SHA-1, what OpenSSL and most
/// clients send, and SHA-2. SEC-22's SHA-1 restriction is about signatures; a CertID hash is
/// a name, not a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OcspHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl OcspHash {
    const ALL: [OcspHash; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub fn oid(self) -> const_oid::ObjectIdentifier {
        use const_oid::db::{rfc5912, rfc5912::ID_SHA_1};
        match self {
            Self::Sha1 => ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// The algorithm of a CertID: parameters absent or NULL (RFC 5754 §2 allows both).
    pub fn from_algorithm(a: &AlgorithmIdentifierOwned) -> Option<Self> {
        let params_ok = match &a.parameters {
            None => true,
            Some(p) => der::Tagged::tag(p) == der::Tag::Null && p.value().is_empty(),
        };
        if !params_ok {
            return None;
        }
        Self::ALL.into_iter().find(|h| h.oid() == a.oid)
    }

    fn digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }

    fn hash(self, data: &[u8]) -> Result<Vec<u8>, CaError> {
        Ok(openssl::hash::hash(self.digest(), data)?.to_vec())
    }
}

/// Why an OCSPRequest is answered `malformedRequest` (RFC 6960 §2.3, §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspRequestError {
    #[error("not a DER OCSPRequest: {0}")]
    Decode(String),
    #[error("OCSPRequest version {0} (only v1 exists)")]
    Version(u8),
    #[error("the OCSPRequest asks about no certificate")]
    Empty,
    #[error("the OCSPRequest asks about {0} certificates (at most {OCSP_MAX_REQUESTS})")]
    TooMany(usize),
    #[error("critical extension {0} is not understood (RFC 6960 §4.4)")]
    CriticalExtension(const_oid::ObjectIdentifier),
    #[error("nonce of {0} octets (RFC 8954 §2.1: 1 to {OCSP_NONCE_MAX_LEN})")]
    NonceLength(usize),
    #[error("more than one nonce extension")]
    DuplicateNonce,
}

/// An OCSPRequest as this responder takes it: the CertIDs to answer, in order, and the nonce
/// extension to echo (RFC 6960 §4.4.1). An optional request signature is not checked: anyone
/// may ask (RFC 6960 §4.1.2 leaves signed requests to local policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOcspRequest {
    pub cert_ids: Vec<CertId>,
    /// The nonce extension's extnValue as received (the DER of the Nonce OCTET STRING).
    pub nonce: Option<OctetString>,
}

/// Decodes and checks an OCSPRequest (DER). Pure: the fuzz target drives it.
pub fn parse_ocsp_request(der: &[u8]) -> Result<ParsedOcspRequest, OcspRequestError> {
    let req = OcspRequest::from_der(der).map_err(|e| OcspRequestError::Decode(e.to_string()))?;
    let tbs = req.tbs_request;
    if tbs.version != V1 {
        return Err(OcspRequestError::Version(tbs.version));
    }
    match tbs.request_list.len() {
        0 => return Err(OcspRequestError::Empty),
        n if n > OCSP_MAX_REQUESTS => return Err(OcspRequestError::TooMany(n)),
        _ => {}
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id == oids::NONCE {
            if nonce.is_some() {
                return Err(OcspRequestError::DuplicateNonce);
            }
            let len = nonce_len(&ext.extn_value);
            if len == 0 || len > OCSP_NONCE_MAX_LEN {
                return Err(OcspRequestError::NonceLength(len));
            }
            nonce = Some(ext.extn_value.clone());
        } else if ext.critical && ext.extn_id != oids::PREF_SIG_ALGS {
            return Err(OcspRequestError::CriticalExtension(ext.extn_id));
        }
    }
    let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        if let Some(ext) = r
            .single_request_extensions
            .iter()
            .flatten()
            .find(|e| e.critical)
        {
            return Err(OcspRequestError::CriticalExtension(ext.extn_id));
        }
        cert_ids.push(r.req_cert);
    }
    Ok(ParsedOcspRequest { cert_ids, nonce })
}

/// The length of a nonce: the octets of the `Nonce ::= OCTET STRING` in extnValue (RFC 8954
/// §2.1), or, from clients that put the bare octets there, of extnValue itself.
fn nonce_len(extn_value: &OctetString) -> usize {
    match OctetString::from_der(extn_value.as_bytes()) {
        Ok(inner) => inner.as_bytes().len(),
        Err(_) => extn_value.as_bytes().len(),
    }
}

/// The CertID of the certificate with serial `serial` (the INTEGER's content octets) issued
/// by `issuer`, hashed with `hash` (RFC 6960 §4.1.1): issuerNameHash over the DER of the
/// issuer's subject, issuerKeyHash over its subjectPublicKey BIT STRING value.
pub fn cert_id(issuer: &Certificate, serial: &[u8], hash: OcspHash) -> Result<CertId, CaError> {
    let (name_hash, key_hash) = issuer_hashes(issuer, hash)?;
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: hash.oid(),
            parameters: Some(der::Any::from(Null)),
        },
        issuer_name_hash: OctetString::new(name_hash)?,
        issuer_key_hash: OctetString::new(key_hash)?,
        serial_number: der::asn1::Int::new(serial)?,
    })
}

fn issuer_hashes(issuer: &Certificate, hash: OcspHash) -> Result<(Vec<u8>, Vec<u8>), CaError> {
    let tbs = issuer.tbs_certificate();
    let name = hash.hash(&tbs.subject().to_der()?)?;
    let key = hash.hash(tbs.subject_public_key_info().subject_public_key.raw_bytes())?;
    Ok((name, key))
}

/// Whether `id` names `issuer` (hash algorithm we support, both hashes equal).
pub fn cert_id_names_issuer(id: &CertId, issuer: &Certificate) -> Result<bool, CaError> {
    let Some(hash) = OcspHash::from_algorithm(&id.hash_algorithm) else {
        return Ok(false);
    };
    let (name, key) = issuer_hashes(issuer, hash)?;
    Ok(id.issuer_name_hash.as_bytes() == name && id.issuer_key_hash.as_bytes() == key)
}

/// The store form of a CertID's serial; `None` for a negative or zero one (never issued).
fn serial_key(id: &CertId) -> Option<String> {
    let b = id.serial_number.as_bytes();
    if b.first().is_none_or(|x| x & 0x80 != 0) || b.iter().all(|x| *x == 0) {
        return None;
    }
    normalize_serial(&hex::encode(b))
}

/// A delegated OCSP responder of one CA domain (RFC 6960 §4.2.2.2 case 3): a certificate
/// issued by the domain's CA with id-kp-OCSPSigning, and its key in some key backend.
#[derive(Debug, Clone)]
pub struct OcspResponder {
    cert: Certificate,
    cert_der: Vec<u8>,
    key: Arc<dyn SigningKey>,
}

impl OcspResponder {
    /// Checks that `cert_der` belongs to `key`, was issued and signed by `issuer`'s
    /// certificate, and carries id-kp-OCSPSigning (§4.2.2.2: a client MUST reject a delegate
    /// without it). A missing id-pkix-ocsp-nocheck is only warned about (§4.2.2.2.1).
    pub fn new(
        cert_der: Vec<u8>,
        key: Arc<dyn SigningKey>,
        issuer: &crate::Issuer,
    ) -> Result<Self, CaError> {
        let bad = |why: &str| CaError::Internal(format!("OCSP responder certificate: {why}"));
        let cert = Certificate::from_der(&cert_der)?;
        let tbs = cert.tbs_certificate();
        if tbs.subject_public_key_info() != key.public_key_info() {
            return Err(bad("it does not match its key"));
        }
        if tbs.issuer() != issuer.subject() {
            return Err(bad("it was not issued by this CA"));
        }
        let ca_key = openssl::pkey::PKey::public_key_from_der(
            &issuer
                .cert
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()?,
        )?;
        if !openssl::x509::X509::from_der(&cert_der)?.verify(&ca_key)? {
            return Err(bad("its signature does not verify with this CA's key"));
        }
        let eku = tbs
            .get_extension::<ExtendedKeyUsage>()
            .map_err(|e| bad(&format!("extended key usage: {e}")))?;
        if !eku.is_some_and(|(_, e)| e.0.contains(&oids::KP_OCSP_SIGNING)) {
            return Err(bad("it lacks the id-kp-OCSPSigning extended key usage"));
        }
        let nocheck = tbs
            .extensions()
            .is_some_and(|v| v.iter().any(|e| e.extn_id == oids::NOCHECK));
        if !nocheck {
            tracing::warn!(subject = %tbs.subject(), "the OCSP responder certificate has no id-pkix-ocsp-nocheck: clients may try to check its revocation status");
        }
        Ok(Self {
            cert,
            cert_der,
            key,
        })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    fn valid_at(&self, now: SystemTime) -> bool {
        let v = self.cert.tbs_certificate().validity();
        now >= v.not_before.to_system_time() && now <= v.not_after.to_system_time()
    }
}

/// An OCSPResponse (DER) and what the HTTP layer needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    pub der: Vec<u8>,
    pub status: OcspResponseStatus,
    /// For a successful answer: producedAt and the earliest nextUpdate (HTTP caching, RFC
    /// 5019 §6.2).
    pub produced_at: Option<SystemTime>,
    pub next_update: Option<SystemTime>,
    /// Whether it echoes a nonce (then it answers one request only: not to be cached).
    pub has_nonce: bool,
}

impl OcspAnswer {
    /// An unsuccessful answer: only the status, no responseBytes (RFC 6960 §4.2.1).
    pub fn unsuccessful(status: OcspResponseStatus) -> Self {
        let der = OcspResponse {
            response_status: status,
            response_bytes: None,
        }
        .to_der()
        // Three fixed octets (SEQUENCE { ENUMERATED n }): encoding cannot fail.
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8]);
        Self {
            der,
            status,
            produced_at: None,
            next_update: None,
            has_nonce: false,
        }
    }
}

/// The CA domains that issue under one CA certificate (several domains may share one).
struct IssuerGroup<'a> {
    /// Sorted, so the signing domain is chosen the same way every time.
    domains: BTreeSet<&'a str>,
    cert: &'a Certificate,
}

/// Who signs an answer.
enum Signer<'a> {
    Ca(&'a CaDomain),
    Delegated(&'a OcspResponder),
}

impl Signer<'_> {
    fn key(&self) -> &dyn SigningKey {
        match self {
            Self::Ca(d) => d.issuer.key.as_ref(),
            Self::Delegated(r) => r.key.as_ref(),
        }
    }
}

impl Authority {
    /// Signs OCSP answers about `domain`'s certificates with `responder` instead of the
    /// domain's CA key (RFC 6960 §4.2.2.2; SEC-10: a separate key for status). `responder`
    /// must have been made for the domain's issuer ([`OcspResponder::new`]).
    pub fn with_ocsp_responder(
        mut self,
        domain: &str,
        responder: OcspResponder,
    ) -> Result<Self, CaError> {
        let d = self.domain_named(domain)?;
        if responder.cert.tbs_certificate().issuer() != d.issuer.subject() {
            return Err(CaError::Internal(format!(
                "the OCSP responder certificate of CA {domain} was issued by another CA"
            )));
        }
        self.ocsp_responders
            .insert(domain.to_owned(), Arc::new(responder));
        Ok(self)
    }

    /// Answers a DER OCSPRequest with a DER OCSPResponse (RFC 6960 §4.2): always an answer,
    /// with `malformedRequest`, `unauthorized`, `tryLater` or `internalError` when the
    /// statuses cannot be given (see the module documentation).
    pub async fn ocsp(&self, request_der: &[u8]) -> OcspAnswer {
        let req = match parse_ocsp_request(request_der) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return OcspAnswer::unsuccessful(OcspResponseStatus::MalformedRequest);
            }
        };
        match self.ocsp_answer(&req).await {
            Ok(a) => a,
            Err(CaError::Store(e)) if e.is_unavailable() => {
                tracing::warn!(error = %e, "OCSP request while the store is unavailable");
                OcspAnswer::unsuccessful(OcspResponseStatus::TryLater)
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP request failed");
                OcspAnswer::unsuccessful(OcspResponseStatus::InternalError)
            }
        }
    }

    /// Our CA certificates, each with the domains that issue under it.
    fn issuer_groups(&self) -> Vec<IssuerGroup<'_>> {
        let mut by_cert: BTreeMap<&[u8], IssuerGroup<'_>> = BTreeMap::new();
        for (name, d) in &self.domains {
            by_cert
                .entry(d.issuer.cert_der.as_slice())
                .or_insert_with(|| IssuerGroup {
                    domains: BTreeSet::new(),
                    cert: &d.issuer.cert,
                })
                .domains
                .insert(name.as_str());
        }
        by_cert.into_values().collect()
    }

    async fn ocsp_answer(&self, req: &ParsedOcspRequest) -> Result<OcspAnswer, CaError> {
        let groups = self.issuer_groups();
        // Which of our CA certificates each CertID names (None: not ours).
        let mut named = Vec::with_capacity(req.cert_ids.len());
        for id in &req.cert_ids {
            let mut found = None;
            for (i, g) in groups.iter().enumerate() {
                if cert_id_names_issuer(id, g.cert)? {
                    found = Some(i);
                    break;
                }
            }
            named.push(found);
        }
        // The issuer of the first CertID that names one of ours signs (§4.2.2.2).
        let Some((chosen, group)) = named
            .iter()
            .flatten()
            .next()
            .and_then(|i| Some((*i, groups.get(*i)?)))
        else {
            tracing::debug!("OCSP request about no CA of ours");
            return Ok(OcspAnswer::unsuccessful(OcspResponseStatus::Unauthorized));
        };
        let now = self.clock.now();
        let now = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_secs(now)).unwrap_or(0));
        let mut records = Vec::with_capacity(req.cert_ids.len());
        for (id, g) in req.cert_ids.iter().zip(&named) {
            let record = match (g, serial_key(id)) {
                (Some(g), Some(serial)) if *g == chosen => self
                    .store
                    .certificate_by_serial(&serial)
                    .await?
                    .filter(|r| group.domains.contains(r.ca.as_str())),
                _ => None,
            };
            records.push(record);
        }
        // The signing domain: that of the first certificate we know, else the first by name.
        let domain_name = records
            .iter()
            .flatten()
            .map(|r| r.ca.as_str())
            .next()
            .or_else(|| group.domains.iter().next().copied())
            .ok_or_else(|| CaError::Internal("an issuer without a domain".into()))?;
        let domain = self.domain_named(domain_name)?;
        let signer = match self.ocsp_responders.get(domain_name) {
            Some(r) if !r.valid_at(now) => {
                return Err(CaError::Internal(format!(
                    "the OCSP responder certificate of CA {domain_name} is not valid now"
                )));
            }
            Some(r) => Signer::Delegated(r),
            None => Signer::Ca(&domain),
        };
        let next_update = now + domain.profile.ocsp_validity.max(Duration::from_secs(60));
        let mut responses = Vec::with_capacity(req.cert_ids.len());
        for (id, record) in req.cert_ids.iter().zip(&records) {
            responses.push(SingleResponse {
                cert_id: id.clone(),
                cert_status: cert_status(record.as_ref())?,
                this_update: gtime(now)?,
                next_update: Some(gtime(next_update)?),
                single_extensions: None,
            });
        }
        let der = sign_response(&signer, responses, req.nonce.as_ref(), now)?;
        tracing::debug!(
            ca = domain_name,
            certs = req.cert_ids.len(),
            "OCSP answer signed"
        );
        Ok(OcspAnswer {
            der,
            status: OcspResponseStatus::Successful,
            produced_at: Some(now),
            next_update: Some(next_update),
            has_nonce: req.nonce.is_some(),
        })
    }
}

fn gtime(t: SystemTime) -> Result<GeneralizedTime, CaError> {
    Ok(GeneralizedTime::from_system_time(t)?)
}

/// good, revoked (with revocationTime and, unless unspecified, the reason: as on the CRL,
/// RFC 5280 §5.3.1), or unknown for a certificate we have no record of (RFC 6960 §2.2).
fn cert_status(record: Option<&CertRecord>) -> Result<CertStatus, CaError> {
    let Some(r) = record else {
        return Ok(CertStatus::Unknown(Null));
    };
    if r.status == StoredStatus::Valid {
        return Ok(CertStatus::Good(Null));
    }
    let (at, code) = r
        .revocation
        .map_or((r.issued_at, 0), |v| (v.revoked_at, v.reason));
    let reason = CrlReason::from_code(code).ok_or_else(|| {
        CaError::Internal(format!(
            "stored revocation reason {code} of {} is not a CRLReason",
            r.serial
        ))
    })?;
    let at = u64::try_from(at)
        .map_err(|_| CaError::Internal(format!("revocation time {at} before 1970")))?;
    Ok(CertStatus::Revoked(RevokedInfo {
        revocation_time: GeneralizedTime::from_unix_duration(Duration::from_secs(at))?,
        revocation_reason: (reason != CrlReason::Unspecified).then(|| reason.to_x509()),
    }))
}

/// Assembles the BasicOCSPResponse, signs its DER ResponseData through the signer's key and
/// wraps it in a successful OCSPResponse (RFC 6960 §4.2.1).
fn sign_response(
    signer: &Signer<'_>,
    responses: Vec<SingleResponse>,
    nonce: Option<&OctetString>,
    now: SystemTime,
) -> Result<Vec<u8>, CaError> {
    let key = signer.key();
    // §4.2.2.3 byKey: the SHA-1 of the subjectPublicKey value, as the SKI's method 1.
    let key_hash = key_identifier(key.public_key_info().owned_to_ref())?;
    let response_extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: oids::NONCE,
            critical: false,
            extn_value: n.clone(),
        }]
    });
    let tbs = ResponseData {
        version: V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash)?),
        produced_at: gtime(now)?,
        responses,
        response_extensions,
    };
    let tbs_der = tbs.to_der()?;
    let signature = key.sign(&tbs_der)?;
    let certs = match signer {
        Signer::Ca(_) => None,
        Signer::Delegated(r) => Some(vec![Certificate::from_der(&r.cert_der)?]),
    };
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: key.algorithm().algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
        certs,
    };
    Ok(OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: oids::BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    }
    .to_der()?)
}

#[cfg(test)]
mod tests;
