//! The server side of the draft, without I/O: read the request, check it against the
//! authenticated identity, plan the key's protection before any key is generated, seal the
//! generated key and add the response controls. The caller authenticates the PKIData
//! ([`crate::FullPkiRequest`]), finds shared secrets, generates and certifies the key.
use openssl::pkey::{PKey, Private};
use openssl::x509::store::X509StoreRef;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use super::{
    ServerKeyGenRequest, ServerKeyGenResponse, Shroud, ShroudWithPublicKey, SignerIdentifier,
    SkgErrorCode, SkgOids, control_value,
};
use crate::CertificationRequest;
use crate::error::Failure;
use crate::response::ResponseBuilder;
use crate::types::{BodyPartId, CmcFailInfo, PkiData, TaggedAttribute};

/// A failed ServerKeyGenRequest: the CMC failure and, for the draft's own errors, its
/// ErrorList code (SKGD-25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkgFailure {
    pub failure: Failure,
    pub code: Option<SkgErrorCode>,
}

impl From<Failure> for SkgFailure {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            code: None,
        }
    }
}

impl std::fmt::Display for SkgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(c) => write!(f, "{} [{}]", self.failure, c.name()),
            None => self.failure.fmt(f),
        }
    }
}

impl std::error::Error for SkgFailure {}

impl SkgFailure {
    fn cmc(info: CmcFailInfo, id: BodyPartId, reason: impl Into<String>) -> Self {
        Failure::body_part(info, id, reason).into()
    }

    /// A draft error (SKGD-25): failInfo badRequest plus the ErrorList code.
    pub fn draft(code: SkgErrorCode, id: BodyPartId, reason: impl Into<String>) -> Self {
        Self {
            failure: Failure::body_part(CmcFailInfo::BAD_REQUEST, id, reason),
            code: Some(code),
        }
    }

    /// Adds this failure to a response: for a draft error, a CMCStatusInfoV2 with the
    /// extendedFailInfo {id-cet-serverKeyGen, code} and a second one with failInfo badRequest
    /// for the same body part (SKGD-25, CMC-41, SKGD-26); otherwise the plain failure.
    pub fn report(&self, b: &mut ResponseBuilder, oids: &SkgOids) -> Result<(), Failure> {
        match self.code {
            Some(code) => {
                let ext = code
                    .extended_fail_info(oids)
                    .map_err(|e| Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, e.to_string()))?;
                b.extended_failure(&self.failure, ext)
            }
            None => b.failure(&self.failure),
        }
    }
}

/// A ServerKeyGenRequest read and checked as far as the request alone allows.
#[derive(Debug, Clone)]
pub struct SkgRequest {
    /// The bodyPartID of the ServerKeyGenRequest control (SKGD-22's requestBodyPartId).
    pub body_part_id: BodyPartId,
    /// The control value as received.
    pub request: ServerKeyGenRequest,
    /// The proposed certificate fields: subject, SAN, extensions, ChangeSubjectName (SKGD-2),
    /// read without any POP check (SKGD-5).
    pub certificate_request: CertificationRequest,
    /// The key algorithm (and parameters, e.g. the curve) wanted: the algorithm of the
    /// request's SPKI (SKGD-3). The server generates this or fails with badAlg (SKGD-4); see
    /// [`SkgRequest::wanted_key`]. An RSA placeholder cannot say its size.
    pub wanted_algorithm: AlgorithmIdentifierOwned,
    /// The SPKI's subjectPublicKey is empty: a pure algorithm placeholder (SKGD-3).
    pub placeholder_key: bool,
    /// The decoded shroudMethod parameters (SKGD-6, SKGD-11, SKGD-15).
    pub shroud: Shroud,
    /// algCapabilities in the client's order, those est-cms can read (SKGD-8); `None` when
    /// absent (SKGD-9: strong defaults, or what the caller configures).
    pub capabilities: Option<Vec<est_cms::SmimeCapability>>,
    /// The content-encryption algorithm picked from `capabilities` (SKGD-8).
    pub content_encryption: est_cms::ContentEncryption,
}

/// A key type the request asks for (SKGD-3, SKGD-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WantedKey {
    /// rsaEncryption; the modulus size when the request carried a real key, `None` for a
    /// zero-length placeholder (the server's profile decides).
    Rsa { bits: Option<u32> },
    /// id-ecPublicKey on secp256r1.
    EcP256,
    /// id-ecPublicKey on secp384r1.
    EcP384,
    /// id-Ed25519.
    Ed25519,
}

impl SkgRequest {
    /// The key type to generate, or badAlg for an algorithm or curve Estuary does not generate
    /// (SKGD-4). Whether the profile allows it is the caller's next check.
    pub fn wanted_key(&self) -> Result<WantedKey, SkgFailure> {
        let bad = |m: String| SkgFailure::cmc(CmcFailInfo::BAD_ALG, self.body_part_id, m);
        let alg = &self.wanted_algorithm;
        match alg.oid {
            est_cms::oids::RSA_ENCRYPTION => {
                let bits = if self.placeholder_key {
                    None
                } else {
                    let key = PKey::public_key_from_der(&self.certificate_request.spki_der)
                        .map_err(|_| {
                            bad("the RSA public key in the request does not decode".into())
                        })?;
                    Some(key.bits())
                };
                Ok(WantedKey::Rsa { bits })
            }
            est_cms::oids::ID_EC_PUBLIC_KEY => {
                let curve = alg
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
                match curve {
                    Some(est_cms::oids::SECP256R1) => Ok(WantedKey::EcP256),
                    Some(est_cms::oids::SECP384R1) => Ok(WantedKey::EcP384),
                    _ => Err(bad(
                        "the wanted EC key must name P-256 or P-384 as namedCurve (SKGD-4)".into(),
                    )),
                }
            }
            est_cms::oids::ID_ED25519 => Ok(WantedKey::Ed25519),
            other => Err(bad(format!(
                "this server does not generate {other} keys (SKGD-4)"
            ))),
        }
    }
}

/// Finds the ServerKeyGenRequest controls of `pki` and reads each one (SKGD-1): an empty
/// vector when there is none. A PKIData with such a control must carry nothing else than
/// controls (reqSequence, cmsSequence and otherMsgSequence empty): otherwise the whole PKIData
/// fails with badRequest. Each control then succeeds or fails on its own.
pub fn read_requests(
    pki: &PkiData,
    oids: &SkgOids,
) -> Result<Vec<Result<SkgRequest, SkgFailure>>, Failure> {
    let controls: Vec<&TaggedAttribute> = pki
        .control_sequence
        .iter()
        .filter(|a| a.attr_type == oids.server_key_gen_request)
        .collect();
    if controls.is_empty() {
        return Ok(Vec::new());
    }
    if !pki.req_sequence.is_empty()
        || !pki.cms_sequence.is_empty()
        || !pki.other_msg_sequence.is_empty()
    {
        return Err(Failure::message(
            CmcFailInfo::BAD_REQUEST,
            "a PKIData with a ServerKeyGenRequest carries only controls: reqSequence, cmsSequence and otherMsgSequence must be empty (SKGD-1)",
        ));
    }
    Ok(controls.into_iter().map(|a| read_one(a, oids)).collect())
}

fn read_one(attr: &TaggedAttribute, oids: &SkgOids) -> Result<SkgRequest, SkgFailure> {
    let id = attr.body_part_id;
    let bad = |m: String| SkgFailure::cmc(CmcFailInfo::BAD_REQUEST, id, m);
    let request: ServerKeyGenRequest =
        control_value(attr).map_err(|e| bad(format!("malformed ServerKeyGenRequest: {e}")))?;
    // SKGD-2: the inner request's bodyPartID / certReqId is 0.
    if request.certificate_request.body_part_id() != Some(0) {
        return Err(bad(
            "the certificateRequest of a ServerKeyGenRequest has bodyPartID (certReqId) 0 (SKGD-2)"
                .into(),
        ));
    }
    // SKGD-5: syntax only, no POP; failures are this control's.
    let certificate_request = CertificationRequest::read_without_pop(&request.certificate_request)
        .map_err(|mut f| {
            f.body_list = vec![crate::BodyPartReference::Id(id)];
            f.reason = format!("certificateRequest: {}", f.reason);
            SkgFailure::from(f)
        })?;
    let spki = &certificate_request.spki;
    let wanted_algorithm = spki.algorithm.clone();
    let placeholder_key = spki.subject_public_key.raw_bytes().is_empty();
    let shroud = read_shroud(&request, oids, id)?;
    // SKGD-10: Estuary archives no keys.
    if request.archive_key {
        return Err(SkgFailure::draft(
            SkgErrorCode::ARCHIVE_NOT_SUPPORTED,
            id,
            "this server does not archive keys: set archiveKey FALSE (it defaults to TRUE) (SKGD-10)",
        ));
    }
    let capabilities = request.alg_capabilities.as_ref().map(|c| {
        c.iter()
            .filter_map(super::SkgCapability::to_smime)
            .collect::<Vec<_>>()
    });
    let content_encryption = est_cms::content_encryption_for(capabilities.as_deref())
        .map_err(|e| SkgFailure::cmc(CmcFailInfo::BAD_ALG, id, format!("{e} (SKGD-8)")))?;
    if let Shroud::SharedSecret(_) = &shroud {
        check_password_capabilities(capabilities.as_deref(), id)?;
    }
    Ok(SkgRequest {
        body_part_id: id,
        request,
        certificate_request,
        wanted_algorithm,
        placeholder_key,
        shroud,
        capabilities,
        content_encryption,
    })
}

/// SKGD-6, SKGD-7: the shroudMethod is one of the two configured OIDs, with its mandatory
/// parameters.
fn read_shroud(
    request: &ServerKeyGenRequest,
    oids: &SkgOids,
    id: BodyPartId,
) -> Result<Shroud, SkgFailure> {
    let m = &request.shroud_method;
    let known =
        m.algorithm == oids.shroud_with_public_key || m.algorithm == oids.shroud_with_shared_secret;
    if !known {
        return Err(SkgFailure::cmc(
            CmcFailInfo::BAD_ALG,
            id,
            format!("shroudMethod {} is not supported (SKGD-7)", m.algorithm),
        ));
    }
    let params = m.parameters.as_ref().ok_or_else(|| {
        SkgFailure::cmc(
            CmcFailInfo::BAD_REQUEST,
            id,
            "the shroudMethod has no parameters; both methods require them (SKGD-6)",
        )
    })?;
    let bad = |e: der::Error| {
        SkgFailure::cmc(
            CmcFailInfo::BAD_REQUEST,
            id,
            format!("malformed shroudMethod parameters: {e}"),
        )
    };
    if m.algorithm == oids.shroud_with_public_key {
        // From the TLV, not `Any::decode_as`: a CHOICE is read by its own tag.
        let der = der::Encode::to_der(params).map_err(bad)?;
        Ok(Shroud::PublicKey(
            <ShroudWithPublicKey as der::Decode>::from_der(&der).map_err(bad)?,
        ))
    } else {
        let name: der::asn1::Utf8StringRef<'_> = params.decode_as().map_err(bad)?;
        Ok(Shroud::SharedSecret(name.as_str().to_owned()))
    }
}

/// SKGD-15: with a shared secret the client lists a KDF and a key wrap; we derive with PBKDF2
/// and wrap with id-alg-PWRI-KEK (RFC 3211, the form OpenSSL and Bouncy Castle read). When
/// algCapabilities is absent (SKGD-9) those defaults apply.
fn check_password_capabilities(
    caps: Option<&[est_cms::SmimeCapability]>,
    id: BodyPartId,
) -> Result<(), SkgFailure> {
    let Some(caps) = caps else {
        return Ok(());
    };
    let listed = |o| caps.iter().any(|c| c.capability_id == o);
    if !listed(est_cms::oids::ID_PBKDF2) || !listed(est_cms::oids::ID_ALG_PWRI_KEK) {
        return Err(SkgFailure::cmc(
            CmcFailInfo::BAD_ALG,
            id,
            "a key shrouded with a shared secret needs id-PBKDF2 and id-alg-PWRI-KEK in algCapabilities (SKGD-8, SKGD-15)",
        ));
    }
    Ok(())
}

/// The name the request is authenticated as: the subject (and SAN, if the caller knows one)
/// of the signing certificate, or of the DN a shared secret is linked to.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedName<'a> {
    pub subject: &'a Name,
    pub san: Option<&'a SubjectAltName>,
}

/// SKGD-16 (RFC 6402 §2.8, CMC-22): the certificateRequest carries the authenticated name; a
/// client wanting another name says so with ChangeSubjectName. A mismatch is badIdentity.
pub fn check_request_names(req: &SkgRequest, auth: AuthenticatedName<'_>) -> Result<(), Failure> {
    let cr = &req.certificate_request;
    let bad = |what: &str| {
        Failure::body_part(
            CmcFailInfo::BAD_IDENTITY,
            req.body_part_id,
            format!(
                "the certificateRequest's {what} is not the authenticated identity's; put the existing name in certificateRequest and the wanted one in ChangeSubjectName (SKGD-16)"
            ),
        )
    };
    if cr.subject != *auth.subject {
        return Err(bad("subject"));
    }
    if let (Some(a), Some(r)) = (auth.san, &cr.san)
        && a != r
    {
        return Err(bad("subjectAltName"));
    }
    Ok(())
}

/// Whether two certificates carry the same names: subject and subjectAltName (SKGD-13, when
/// a second certificate protects the key).
pub fn names_match(a: &Certificate, b: &Certificate) -> bool {
    let san = |c: &Certificate| {
        c.tbs_certificate()
            .get_extension::<SubjectAltName>()
            .ok()
            .flatten()
            .map(|(_, s)| s)
    };
    a.tbs_certificate().subject() == b.tbs_certificate().subject() && san(a) == san(b)
}

/// The key a ServerKeyGenRequest asks the generated key to be protected with.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum ShroudKey {
    /// `certificate`, or the certificate `certIdentifier` named (SKGD-11, SKGD-12).
    Certificate(Certificate),
    /// `bareKey` (SKGD-14): DER SubjectPublicKeyInfo and the key identifier to use as rid.
    BareKey { spki_der: Vec<u8>, ski: Vec<u8> },
    /// `ShroudWithSharedSecret`: the name of the secret (SKGD-15).
    SharedSecret(String),
}

impl SkgRequest {
    /// The protection key, with `certIdentifier` resolved among `signed_data_certificates`
    /// (the certificates of the request's SignedData, SKGD-11). Not found: badCertificate.
    pub fn shroud_key(
        &self,
        signed_data_certificates: &[Certificate],
    ) -> Result<ShroudKey, SkgFailure> {
        let id = self.body_part_id;
        match &self.shroud {
            Shroud::SharedSecret(name) => Ok(ShroudKey::SharedSecret(name.clone())),
            Shroud::PublicKey(ShroudWithPublicKey::Certificate(c)) => {
                Ok(ShroudKey::Certificate(c.clone()))
            }
            Shroud::PublicKey(ShroudWithPublicKey::BareKey(b)) => Ok(ShroudKey::BareKey {
                spki_der: der::Encode::to_der(&b.public_key).map_err(|e| {
                    SkgFailure::cmc(CmcFailInfo::BAD_REQUEST, id, format!("bareKey: {e}"))
                })?,
                ski: b.ski.0.as_bytes().to_vec(),
            }),
            Shroud::PublicKey(ShroudWithPublicKey::CertIdentifier(sid)) => signed_data_certificates
                .iter()
                .find(|c| identifies(sid, c))
                .cloned()
                .map(ShroudKey::Certificate)
                .ok_or_else(|| {
                    SkgFailure::draft(
                        SkgErrorCode::BAD_CERTIFICATE,
                        id,
                        "certIdentifier names no certificate of the request's SignedData (SKGD-11)",
                    )
                }),
        }
    }
}

/// Whether `sid` names `cert` (issuerAndSerialNumber or subjectKeyIdentifier).
pub fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => est_cms::issuer_and_serial(cert) == *ias,
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, k)| k.0 == ski.0),
    }
}

/// Whom the protecting certificate must belong to (SKGD-12).
#[derive(Debug, Clone, Copy)]
pub enum ShroudOwner<'a> {
    /// The request was signed with this certificate: a different protecting certificate must
    /// carry the same names, subject and subjectAltName (SKGD-13).
    Signer(&'a Certificate),
    /// The request was authenticated otherwise (a shared secret tied to this name): the
    /// protecting certificate's subject must be it.
    Name(&'a Name),
}

/// SKGD-12, SKGD-13: a protecting certificate (`certificate` or `certIdentifier`) must
/// validate to a trust anchor in `trust` (with `pool` as intermediates), belong to the
/// authenticated client (`owner`), and be encryption-capable (KeyUsage keyEncipherment for
/// RSA, keyAgreement for EC). Any failure is badCertificate.
pub fn check_shroud_certificate(
    req: &SkgRequest,
    cert: &Certificate,
    pool: &[Certificate],
    trust: &X509StoreRef,
    owner: ShroudOwner<'_>,
) -> Result<(), SkgFailure> {
    let bad = |m: String| SkgFailure::draft(SkgErrorCode::BAD_CERTIFICATE, req.body_part_id, m);
    est_cms::validate_chain(trust, cert, pool).map_err(|e| {
        bad(format!(
            "the protecting certificate does not validate to a trust anchor: {e} (SKGD-12)"
        ))
    })?;
    let owned = match owner {
        ShroudOwner::Signer(signer) => signer == cert || names_match(signer, cert),
        ShroudOwner::Name(n) => cert.tbs_certificate().subject() == n,
    };
    if !owned {
        return Err(bad(
            "the protecting certificate is not the authenticated client's: its names differ (SKGD-12, SKGD-13)".into(),
        ));
    }
    est_cms::check_recipient_certificate(cert).map_err(|e| {
        bad(format!(
            "the protecting certificate cannot protect a key: {e} (SKGD-13)"
        ))
    })
}

/// SKGD-15: the named shared secret does not belong to the authenticated requester (or is
/// unknown): extendedFailInfo badSharedSecret.
pub fn bad_shared_secret(req: &SkgRequest) -> SkgFailure {
    SkgFailure::draft(
        SkgErrorCode::BAD_SHARED_SECRET,
        req.body_part_id,
        "the shared secret named by ShroudWithSharedSecret is not the requester's (SKGD-15)",
    )
}

/// How a generated key will be protected, settled before the key is generated so that a
/// request the server cannot honour costs no key (SKGD-8).
#[derive(Debug)]
pub struct DeliveryPlan {
    request_body_part_id: BodyPartId,
    recipient: est_cms::Recipient,
    cea: est_cms::ContentEncryption,
}

impl DeliveryPlan {
    /// Picks the recipient and algorithms: ktri for an RSA key, kari for an EC key (SKGD-11;
    /// rid issuerAndSerialNumber for a certificate, the given ski for a bare key, SKGD-14),
    /// pwri with `secret` for a shared secret (SKGD-15; the caller found the secret the name
    /// designates and checked it is the requester's, else [`bad_shared_secret`]). The
    /// key-transport / key-agreement / key-wrap algorithms come from algCapabilities; none
    /// supported is badAlg (SKGD-8).
    pub fn new(
        req: &SkgRequest,
        key: &ShroudKey,
        secret: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Self, SkgFailure> {
        let id = req.body_part_id;
        let bad_alg = |e: est_cms::CmsError| {
            SkgFailure::cmc(CmcFailInfo::BAD_ALG, id, format!("{e} (SKGD-8)"))
        };
        let caps = req.capabilities.as_deref();
        let recipient = match key {
            ShroudKey::Certificate(cert) => {
                let spki = der::Encode::to_der(cert.tbs_certificate().subject_public_key_info())
                    .map_err(|e| {
                        SkgFailure::draft(SkgErrorCode::BAD_CERTIFICATE, id, e.to_string())
                    })?;
                est_cms::recipient_for_spki(
                    est_cms::RecipientId::IssuerAndSerialNumber(est_cms::issuer_and_serial(cert)),
                    &spki,
                    caps,
                )
                .map_err(bad_alg)?
            }
            ShroudKey::BareKey { spki_der, ski } => est_cms::recipient_for_spki(
                est_cms::RecipientId::SubjectKeyIdentifier(ski.clone()),
                spki_der,
                caps,
            )
            .map_err(bad_alg)?,
            ShroudKey::SharedSecret(_) => {
                let password = secret.ok_or_else(|| bad_shared_secret(req))?;
                est_cms::Recipient::Password {
                    password,
                    params: est_cms::PwriParams {
                        kek_cipher: req.content_encryption,
                        ..Default::default()
                    },
                }
            }
        };
        Ok(Self {
            request_body_part_id: id,
            recipient,
            cea: req.content_encryption,
        })
    }

    /// The security strength in bits of this protection (NIST SP 800-57 Part 1 Table 2): the
    /// weaker of the content encryption and the key transport / agreement (and its key wrap).
    /// `None` for a shared secret, whose strength is its entropy, unknown here.
    pub fn strength_bits(&self) -> Option<u32> {
        let aes = |len: usize| (len * 8) as u32;
        let content = aes(self.cea.key_len());
        let key = match &self.recipient {
            est_cms::Recipient::KeyTransport { key, .. } => rsa_strength(key.bits()),
            est_cms::Recipient::KeyAgree { key, wrap, .. } => {
                ec_strength(key.bits()).min(aes(wrap.key_len()))
            }
            _ => return None,
        };
        Some(content.min(key))
    }

    /// SKGD-44 (a SHOULD): whether this protection is at least as strong as a generated key
    /// of `wanted` (an RSA key of unknown size counts as 2048 bits). A shared secret is
    /// accepted: its strength is the caller's policy.
    pub fn protects(&self, wanted: WantedKey) -> bool {
        let needed = match wanted {
            WantedKey::Rsa { bits } => rsa_strength(bits.unwrap_or(2048)),
            WantedKey::EcP256 | WantedKey::Ed25519 => 128,
            WantedKey::EcP384 => 192,
        };
        self.strength_bits().is_none_or(|have| have >= needed)
    }

    /// SKGD-18, SKGD-19 layers 1–2: the key as a v2 OneAsymmetricKey in an
    /// AsymmetricKeyPackage, signed by the key generator (`generator`, with `extra_certs`),
    /// enveloped for the client. DER ContentInfo(EnvelopedData).
    pub fn seal(
        &self,
        key: &PKey<Private>,
        generator: &dyn est_cms::CmsSigner,
        extra_certs: &[Certificate],
    ) -> Result<Vec<u8>, Failure> {
        est_cms::seal_key_package(key, generator, extra_certs, &self.recipient, self.cea).map_err(
            |e| {
                Failure::body_part(
                    CmcFailInfo::INTERNAL_CA_ERROR,
                    self.request_body_part_id,
                    format!("sealing the generated key: {e}"),
                )
            },
        )
    }

    /// SKGD-19 layer 3 and SKGD-22: adds `enveloped` (from [`Self::seal`]) to the response's
    /// cmsSequence and a ServerKeyGenResponse control naming it, the request control, and
    /// `issued` (which the caller carries in the outer SignedData's certificates, layer 4).
    /// Returns the cmsSequence body part ID.
    pub fn add_to_response(
        &self,
        b: &mut ResponseBuilder,
        oids: &SkgOids,
        enveloped: &[u8],
        issued: &Certificate,
    ) -> Result<BodyPartId, Failure> {
        let cms_body_part_id = b.content(enveloped)?;
        let value = ServerKeyGenResponse {
            cms_body_part_id,
            request_body_part_id: self.request_body_part_id,
            signer_identifier: SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(
                issued,
            )),
        };
        b.control(oids.server_key_gen_response.clone(), &value)?;
        Ok(cms_body_part_id)
    }
}

/// Security strength of an RSA modulus size (SP 800-57 Part 1 Table 2).
fn rsa_strength(bits: u32) -> u32 {
    match bits {
        0..2048 => 80,
        2048..3072 => 112,
        3072..7680 => 128,
        7680..15360 => 192,
        _ => 256,
    }
}

/// Security strength of an EC key of this field size (half of it).
fn ec_strength(bits: u32) -> u32 {
    bits / 2
}
