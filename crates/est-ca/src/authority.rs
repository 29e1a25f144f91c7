//! The issuance pipeline: verify the request, authorize the names, apply the profile, pick a
//! random serial, sign through the key backend, record durably, and only then return.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use x509_cert::spki::{
    DynSignatureAlgorithmIdentifier, EncodePublicKey, SubjectPublicKeyInfoOwned,
};
use x509_cert::time::Validity;

use crate::audit_hooks::{Audit, OrAudit};
use crate::clock::unix_secs;
use crate::csr::san_set;
use crate::profile::{CertKind, TbsProfile, key_identifier};
use crate::serial::serial_hex;
use crate::{
    CaError, CertFilter, CertRecord, CertStatus, Clock, ImplicitNameMapping, KeyGenCsr, KeyPool,
    NamePolicy, PasswordVerifier, Profile, PublicKeyKind, RequestedNames, SigningKey, Store,
    StoreError, UserRecord, VerifiedCsr, new_serial,
};

/// A CA certificate with its signing key and the rest of its chain.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub cert: Certificate,
    pub cert_der: Vec<u8>,
    /// The certificates above `cert` up to and including the root, for /cacerts (EST-65).
    pub chain: Vec<Certificate>,
    pub key: Arc<dyn SigningKey>,
    /// RFC 4514 form of the subject, computed once (recorded with every issued certificate).
    subject_string: String,
    /// DER of `chain`, encoded once (signed responses carry it).
    chain_der: Vec<Vec<u8>>,
}

impl Issuer {
    pub fn new(
        cert_der: Vec<u8>,
        chain: Vec<Certificate>,
        key: Arc<dyn SigningKey>,
    ) -> Result<Self, CaError> {
        let cert = Certificate::from_der(&cert_der)?;
        if cert.tbs_certificate().subject_public_key_info() != key.public_key_info() {
            return Err(CaError::Internal(
                "CA certificate does not match its key".into(),
            ));
        }
        let subject_string = cert.tbs_certificate().subject().to_string();
        let chain_der = chain
            .iter()
            .map(der::Encode::to_der)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            cert,
            cert_der,
            chain,
            key,
            subject_string,
            chain_der,
        })
    }

    /// DER of the issuing certificate followed by its chain.
    pub fn full_chain_der(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.cert_der.as_slice()).chain(self.chain_der.iter().map(Vec::as_slice))
    }

    pub fn subject(&self) -> &Name {
        self.cert.tbs_certificate().subject()
    }

    /// The issuing certificate followed by its chain.
    pub fn full_chain(&self) -> Vec<Certificate> {
        std::iter::once(self.cert.clone())
            .chain(self.chain.iter().cloned())
            .collect()
    }

    pub(crate) fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    pub(crate) fn sign(
        &self,
        profile: TbsProfile,
        serial: x509_cert::serial_number::SerialNumber,
        validity: Validity,
        spki: SubjectPublicKeyInfoOwned,
    ) -> Result<Certificate, CaError> {
        sign_with_key(self.key.as_ref(), profile, serial, validity, spki)
    }
}

/// Signs a TBS assembled by x509-cert's builder through the key backend: the builder never sees
/// the key, so an HSM key works the same way.
pub(crate) fn sign_with_key(
    key: &dyn SigningKey,
    profile: TbsProfile,
    serial: x509_cert::serial_number::SerialNumber,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
) -> Result<Certificate, CaError> {
    let signer = BackendSigner(key);
    let builder_err =
        |e: x509_cert::builder::Error| CaError::Internal(format!("certificate builder: {e}"));
    let mut builder =
        CertificateBuilder::new(profile, serial, validity, spki).map_err(builder_err)?;
    let tbs = builder.finalize(&signer).map_err(builder_err)?;
    let sig = key.sign(&tbs)?;
    let sig = der::asn1::BitString::from_bytes(&sig)?;
    builder.assemble(sig, &signer).map_err(builder_err)
}

/// Adapter giving x509-cert's builder the public half and algorithm of a backend key.
struct BackendSigner<'a>(&'a dyn SigningKey);

#[derive(Clone)]
pub(crate) struct SpkiKey(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.to_der()?)?)
    }
}

impl signature::Keypair for BackendSigner<'_> {
    type VerifyingKey = SpkiKey;
    fn verifying_key(&self) -> SpkiKey {
        SpkiKey(self.0.public_key_info().clone())
    }
}

impl DynSignatureAlgorithmIdentifier for BackendSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        Ok(self.0.algorithm().algorithm_identifier())
    }
}

/// One certificate-issuing domain: an issuer and the profile it applies. EST labels map onto
/// domains in the server's configuration.
#[derive(Debug, Clone)]
pub struct CaDomain {
    pub name: String,
    pub issuer: Issuer,
    pub profile: Profile,
}

/// Who is asking, as established by the front end.
#[derive(Debug, Clone)]
pub enum Identity {
    /// An HTTP-authenticated user and the names it may request.
    User { name: String, names: NamePolicy },
    /// A TLS client certificate that validated to one of our trust anchors. `record` is set when
    /// this authority issued it (found in the store).
    Certificate {
        cert: Box<Certificate>,
        record: Option<Box<CertRecord>>,
    },
    /// A TLS client certificate that validated only to an implicit (third-party) trust anchor,
    /// e.g. a manufacturer IDevID (EST-28). It may do initial enrollment under `mapping` and
    /// nothing else (SEC-2, SEC-23).
    ImplicitCertificate {
        cert: Box<Certificate>,
        mapping: ImplicitNameMapping,
    },
    /// A one-time enrollment token (SEC-1), checked but not yet used: the issuance pipeline
    /// consumes it atomically right before signing.
    Token {
        id: String,
        /// RFC 4514 subject the certificate must have; empty: any.
        subject: String,
    },
    /// A CMC shared secret whose Identity Proof verified (CMC-43): initial enrollment only,
    /// for the DN the secret is linked to when it is (CMC-49).
    SharedSecret {
        ident: String,
        /// RFC 4514 subject the certificate must have; empty: any.
        subject: String,
    },
}

impl Identity {
    /// The requester string recorded with each certificate.
    pub fn requester(&self) -> String {
        match self {
            Identity::User { name, .. } => format!("user:{name}"),
            Identity::Certificate { cert, .. } => {
                format!(
                    "cert:{}",
                    serial_hex(cert.tbs_certificate().serial_number())
                )
            }
            Identity::ImplicitCertificate { cert, .. } => {
                format!(
                    "implicit-cert:{}",
                    serial_hex(cert.tbs_certificate().serial_number())
                )
            }
            Identity::Token { id, .. } => format!("token:{id}"),
            Identity::SharedSecret { ident, .. } => format!("cmc-secret:{ident}"),
        }
    }
}

/// Which certificate a renewal/rekey replaces (EST-84).
#[derive(Debug, Clone)]
pub enum RenewalTarget {
    /// The TLS client certificate of the connection.
    ClientCertificate,
    /// Find the requester's current certificate with the CSR's subject.
    ByIdentity,
    /// An RA (the requesting identity, a valid id-kp-cmcRA certificate of this CA) states that
    /// its client authenticated with this certificate of ours and renews it: the serial
    /// (lowercase hex) and issuer DN (EST-84..EST-86 through an RA).
    Vouched { serial: String, issuer: String },
}

/// Where a request came from, for the audit trail (issue 11 item 4: "from where").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The peer address of the connection (`ip:port`), `cli`, or `""` when unknown.
    pub source: &'a str,
    /// The EST label the request came in on (`""`: the label-less path).
    pub label: &'a str,
}

#[derive(Debug)]
pub struct EnrollRequest<'a> {
    pub domain: &'a str,
    pub csr_der: &'a [u8],
    pub identity: &'a Identity,
    pub renewal: Option<RenewalTarget>,
    /// Where it came from (audit trail).
    pub origin: Origin<'a>,
}

/// A certification request whose proof of possession the caller has already checked (a CMC
/// request's POP is verified by the CMC layer, RFC 5272 §6.7): the names and key to certify.
#[derive(Debug)]
pub struct CertifyRequest<'a> {
    pub domain: &'a str,
    pub identity: &'a Identity,
    pub renewal: Option<RenewalTarget>,
    pub subject: &'a Name,
    pub san: Option<&'a SubjectAltName>,
    pub spki: &'a SubjectPublicKeyInfoOwned,
    /// The request's CMC replay record, to claim in the same commit as this certificate
    /// (CMC-53; see [`crate::ReplayClaim`]). Ignored once claimed.
    pub replay: Option<&'a crate::ReplayClaim>,
    /// Where it came from (audit trail).
    pub origin: Origin<'a>,
}

/// A key to generate and certify for names read from a CMC ServerKeyGenRequest (SKGD-2,
/// SKGD-4); see [`Authority::certify_generated`].
#[derive(Debug)]
pub struct GenerateRequest<'a> {
    pub domain: &'a str,
    pub identity: &'a Identity,
    pub renewal: Option<RenewalTarget>,
    pub subject: &'a Name,
    pub san: Option<&'a SubjectAltName>,
    pub key_type: crate::KeyType,
    /// The request's CMC replay record, claimed with the certificate (CMC-53).
    pub replay: Option<&'a crate::ReplayClaim>,
    /// Where it came from (audit trail).
    pub origin: Origin<'a>,
}

/// The names a request asks to certify.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names<'a> {
    pub(crate) subject: &'a Name,
    pub(crate) san: Option<&'a SubjectAltName>,
}

impl VerifiedCsr {
    pub(crate) fn names(&self) -> Names<'_> {
        Names {
            subject: self.subject(),
            san: self.san.as_ref(),
        }
    }
}

impl KeyGenCsr {
    pub(crate) fn names(&self) -> Names<'_> {
        Names {
            subject: self.subject(),
            san: self.san.as_ref(),
        }
    }
}

/// A server-generated key and the certificate issued for it (RFC 7030 §4.4).
#[derive(Debug)]
pub struct GeneratedKey {
    pub issued: IssuedCert,
    /// The private key; OpenSSL clears it when dropped. Never stored (SKG-27).
    pub key: openssl::pkey::PKey<openssl::pkey::Private>,
    pub key_type: crate::KeyType,
}

#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert: Certificate,
    pub der: Vec<u8>,
    pub record: CertRecord,
}

/// The authority. Shared through `Arc`; no interior global lock on the issuance path.
#[derive(Debug)]
pub struct Authority {
    pub(crate) domains: HashMap<String, Arc<CaDomain>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    passwords: PasswordVerifier,
    users: crate::user_cache::UserCache,
    /// Seals secrets at rest: client keys for /serverkeygen, users' Digest HA1 values and CMC
    /// shared secrets (see [`Authority::with_secret_box`]); `None`: these are unavailable.
    pub(crate) secret_box: Option<Arc<crate::SecretBox>>,
    /// When CMC replay records were last pruned (CMC-53).
    pub(crate) cmc_replay: crate::cmc_secrets::ReplayPruning,
    /// Pre-generated keys for /serverkeygen.
    key_pool: KeyPool,
    /// The last CRL of each domain (RFC 5280 §5), see [`Authority::crl`].
    pub(crate) crls: crate::crl::CrlCache,
    /// Delegated OCSP responders by domain (RFC 6960 §4.2.2.2); a domain without one answers
    /// with its CA key, see [`Authority::ocsp`].
    pub(crate) ocsp_responders: HashMap<String, Arc<crate::OcspResponder>>,
    /// Told about issuances, revocations and store commit times (metrics).
    pub(crate) observer: Arc<dyn crate::Observer>,
}

impl Authority {
    pub fn new(
        domains: Vec<CaDomain>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let domains = domains
            .into_iter()
            .map(|d| (d.name.clone(), Arc::new(d)))
            .collect();
        Ok(Self {
            domains,
            store,
            clock,
            passwords: PasswordVerifier::new(Duration::from_secs(300))?,
            users: Default::default(),
            secret_box: None,
            cmc_replay: Default::default(),
            key_pool: KeyPool::disabled(),
            crls: Default::default(),
            ocsp_responders: HashMap::new(),
            observer: Arc::new(crate::NoObserver),
        })
    }

    /// Reports issuances, revocations and store commit times to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn crate::Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Every CA domain, in no particular order.
    pub fn domains(&self) -> impl Iterator<Item = &Arc<CaDomain>> {
        self.domains.values()
    }

    /// Serves /serverkeygen from `pool` (keys are generated on demand without one).
    pub fn with_key_pool(mut self, pool: KeyPool) -> Self {
        self.key_pool = pool;
        self
    }

    pub fn key_pool(&self) -> &KeyPool {
        &self.key_pool
    }

    /// Enables the features that keep secrets sealed at rest with `secret_box`: client-key
    /// registration with encrypted key delivery, HTTP Digest, and CMC shared secrets.
    pub fn with_secret_box(mut self, secret_box: crate::SecretBox) -> Self {
        self.secret_box = Some(Arc::new(secret_box));
        self
    }

    /// The server secret's sealing box, when the authority has one.
    pub fn secret_box(&self) -> Option<&Arc<crate::SecretBox>> {
        self.secret_box.as_ref()
    }

    pub fn domain(&self, name: &str) -> Option<&Arc<CaDomain>> {
        self.domains.get(name)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks HTTP credentials. `Ok(None)` for an unknown user or a wrong password (the two are
    /// indistinguishable to the caller and in timing, SEC-17).
    pub async fn authenticate_user(
        &self,
        name: &str,
        password: &[u8],
    ) -> Result<Option<Identity>, CaError> {
        let user = self.find_user(name).await?;
        self.verify_user_password(name, user, password)
    }

    /// The user record for `name` (from a short-lived cache in front of the store): the I/O
    /// half of [`Authority::authenticate_user`], which callers that bound the CPU spent on
    /// password checks run outside that bound (a store outage must not hold the slots).
    pub async fn find_user(&self, name: &str) -> Result<Option<UserRecord>, CaError> {
        Ok(self.users.get(self.store.as_ref(), name).await?)
    }

    /// The CPU half: verifies `password` against `user`'s hash, or against a dummy hash when
    /// the user is unknown so that both cost the same (SEC-17). No I/O.
    pub fn verify_user_password(
        &self,
        name: &str,
        user: Option<UserRecord>,
        password: &[u8],
    ) -> Result<Option<Identity>, CaError> {
        let ok = self.passwords.verify(
            name,
            user.as_ref().map(|u| u.password_hash.as_str()),
            password,
        )?;
        Ok(match (ok, user) {
            (true, Some(u)) => Some(Identity::User {
                name: u.name,
                names: NamePolicy::new(u.allowed_names),
            }),
            _ => None,
        })
    }

    /// Classifies a TLS client certificate that already validated to our trust anchors: if this
    /// authority issued it, attaches the record (so revocation is seen).
    pub async fn certificate_identity(&self, cert: Certificate) -> Result<Identity, CaError> {
        let serial = serial_hex(cert.tbs_certificate().serial_number());
        let record = self.store.certificate_by_serial(&serial).await?;
        let der = cert.to_der()?;
        let record = record.filter(|r| r.der == der).map(Box::new);
        Ok(Identity::Certificate {
            cert: Box::new(cert),
            record,
        })
    }

    pub(crate) fn domain_named(&self, name: &str) -> Result<Arc<CaDomain>, CaError> {
        self.domains
            .get(name)
            .cloned()
            .ok_or_else(|| CaError::Internal(format!("unknown CA domain {name}")))
    }

    /// The whole pipeline for /simpleenroll and /simplereenroll.
    pub async fn enroll(&self, req: EnrollRequest<'_>) -> Result<IssuedCert, CaError> {
        let domain = self.domain_named(req.domain)?;
        let profile = &domain.profile;
        let csr = VerifiedCsr::verify(req.csr_der, profile.allow_sha1_csr)?;
        profile.keys.check(csr.key_kind)?;
        let now = self.clock.now();
        let names = csr.names();
        let how = if req.renewal.is_some() {
            "renew"
        } else {
            "enroll"
        };
        self.authorize(
            req.identity,
            req.renewal.as_ref(),
            names,
            Some(&csr.spki),
            &domain,
            now,
        )
        .await
        .or_audit(self, req.identity, req.origin, names, how)
        .await?;
        self.issue(
            &domain,
            req.identity,
            names,
            &csr.spki,
            &csr.spki_der,
            csr.key_kind,
            now,
            None,
            Audit {
                origin: req.origin,
                how,
            },
        )
        .await
    }

    /// Certifies a key whose possession the caller proved (CMC): the same key checks (SEC-11,
    /// CMC-34), profile, authorization, name policy and durable issuance as [`Self::enroll`].
    pub async fn certify(&self, req: CertifyRequest<'_>) -> Result<IssuedCert, CaError> {
        let domain = self.domain_named(req.domain)?;
        let spki_der = req.spki.to_der()?;
        let key_kind = crate::csr::classify_public_key(req.spki, &spki_der)?;
        domain.profile.keys.check(key_kind)?;
        let now = self.clock.now();
        let names = Names {
            subject: req.subject,
            san: req.san,
        };
        let how = if req.renewal.is_some() {
            "cmc renew"
        } else {
            "cmc"
        };
        self.authorize(
            req.identity,
            req.renewal.as_ref(),
            names,
            Some(req.spki),
            &domain,
            now,
        )
        .await
        .or_audit(self, req.identity, req.origin, names, how)
        .await?;
        self.issue(
            &domain,
            req.identity,
            names,
            req.spki,
            &spki_der,
            key_kind,
            now,
            req.replay,
            Audit {
                origin: req.origin,
                how,
            },
        )
        .await
    }

    /// /serverkeygen (RFC 7030 §4.4): the same authorization and name checks as enrollment
    /// (SKG-7), the CSR's key and signature ignored, a fresh key of the hinted type (SKG-8)
    /// certified. The caller delivers the key and drops it (OpenSSL clears it on free).
    pub async fn server_keygen(
        &self,
        req: EnrollRequest<'_>,
        keys: &dyn crate::KeySource,
    ) -> Result<GeneratedKey, CaError> {
        let csr = KeyGenCsr::parse(req.csr_der)?;
        let key_type = csr.key_type()?;
        let names = csr.names();
        self.certify_generated(
            GenerateRequest {
                domain: req.domain,
                identity: req.identity,
                renewal: req.renewal,
                subject: names.subject,
                san: names.san,
                key_type,
                replay: None,
                origin: req.origin,
            },
            keys,
        )
        .await
    }

    /// CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02, SKGD-4): a
    /// fresh key of `req.key_type` certified for the names the front end read from the
    /// ServerKeyGenRequest, with the same authorization as enrollment; the caller seals the
    /// key for the client (SKGD-18, SKGD-19) and drops it.
    pub async fn certify_generated(
        &self,
        req: GenerateRequest<'_>,
        keys: &dyn crate::KeySource,
    ) -> Result<GeneratedKey, CaError> {
        let names = Names {
            subject: req.subject,
            san: req.san,
        };
        let how = "server keygen";
        // SEC-6: never for clients known only through an implicit (third-party) trust anchor.
        if matches!(req.identity, Identity::ImplicitCertificate { .. }) {
            return Err(CaError::NotAuthorized(
                "server-side key generation is not available to clients authenticated by an implicit trust anchor (SEC-6)"
                    .into(),
            ))
            .or_audit(self, req.identity, req.origin, names, how)
            .await;
        }
        let domain = self.domain_named(req.domain)?;
        let key_type = req.key_type;
        domain.profile.keys.check(key_type.public_key_kind())?;
        let now = self.clock.now();
        // A generated key is always new: a renewal through server key generation is a rekey.
        self.authorize(
            req.identity,
            req.renewal.as_ref(),
            names,
            None,
            &domain,
            now,
        )
        .await
        .or_audit(self, req.identity, req.origin, names, how)
        .await?;
        let key = keys.take(key_type).await?;
        let spki_der = key.public_key_to_der()?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der)?;
        let issued = self
            .issue(
                &domain,
                req.identity,
                names,
                &spki,
                &spki_der,
                key_type.public_key_kind(),
                now,
                req.replay,
                Audit {
                    origin: req.origin,
                    how,
                },
            )
            .await?;
        Ok(GeneratedKey {
            issued,
            key,
            key_type,
        })
    }

    /// RA mode (issue 10): may `identity`, authenticated by this server acting as an RA, have
    /// a certificate for `subject`/`san` issued by the upstream CA? The checks of an initial
    /// enrollment here: a user's name policy, a token's subject (and the token is spent), an
    /// implicit-TA mapping, a certificate holder's own subject (EST-80). A client certificate
    /// this server did not record (an RA's clients hold the upstream CA's) may also ask for
    /// its own subject only. The upstream CA then takes the RA's word (CMC-56).
    pub async fn authorize_forwarding(
        &self,
        identity: &Identity,
        subject: &Name,
        san: Option<&SubjectAltName>,
        origin: Origin<'_>,
    ) -> Result<(), CaError> {
        let names = Names { subject, san };
        let checked = match identity {
            // A certificate of the upstream CA: its holder may ask for its own subject and no
            // SubjectAltName entry its certificate does not carry (the CA takes the RA's word).
            Identity::Certificate { cert, record: None } => {
                let own_san = cert
                    .tbs_certificate()
                    .get_extension::<SubjectAltName>()
                    .ok()
                    .flatten()
                    .map(|(_, s)| s.0)
                    .unwrap_or_default();
                let asked = san.map(|s| s.0.as_slice()).unwrap_or_default();
                if cert.tbs_certificate().subject() != subject {
                    Err(CaError::NotAuthorized(
                        "a certificate-authenticated client may only request its own subject name"
                            .into(),
                    ))
                } else if !asked.iter().all(|g| own_san.contains(g)) {
                    Err(CaError::NotAuthorized(
                        "a certificate-authenticated client may only request SubjectAltName entries of its own certificate"
                            .into(),
                    ))
                } else {
                    Ok(())
                }
            }
            _ => self.authorize_initial(identity, names),
        };
        checked
            .or_audit(self, identity, origin, names, "ra forward")
            .await?;
        if let Identity::Token { id, .. } = identity
            && !self
                .store
                .consume_token(id, unix_secs(self.clock.now()), &identity.requester())
                .await?
        {
            return Err(CaError::NotAuthorized(
                "the enrollment token has already been used or has expired".into(),
            ));
        }
        Ok(())
    }

    /// Who may ask for these names: initial enrollment checks the identity's name policy;
    /// renewal finds the certificate being renewed and requires the same names (EST-82) and,
    /// for the same key, that the profile allows key reuse (EST-86).
    async fn authorize(
        &self,
        identity: &Identity,
        renewal: Option<&RenewalTarget>,
        names: Names<'_>,
        new_spki: Option<&SubjectPublicKeyInfoOwned>,
        domain: &CaDomain,
        now: SystemTime,
    ) -> Result<(), CaError> {
        // A name RFC 5280 forbids is a bad request (400), whoever asks and whatever the
        // policy would say; issue() checks again, as the last step before signing.
        domain.profile.check_names(names.subject, names.san)?;
        match renewal {
            None => {
                self.authorize_initial(identity, names)?;
                // A token is spent by the one request that wins this conditional update.
                if let Identity::Token { id, .. } = identity
                    && !self
                        .store
                        .consume_token(id, unix_secs(now), &identity.requester())
                        .await?
                {
                    return Err(CaError::NotAuthorized(
                        "the enrollment token has already been used or has expired".into(),
                    ));
                }
                Ok(())
            }
            Some(target) => {
                let old = self
                    .renewal_target(identity, target, names, domain, now)
                    .await?;
                check_same_names(&old, names)?;
                if new_spki.is_some_and(|s| old.tbs_certificate().subject_public_key_info() == s)
                    && !domain.profile.allow_key_reuse
                {
                    return Err(CaError::KeyReuse);
                }
                Ok(())
            }
        }
    }

    /// Applies the profile, signs under a fresh random serial and records the certificate
    /// durably before returning it.
    #[allow(clippy::too_many_arguments)]
    async fn issue(
        &self,
        domain: &CaDomain,
        identity: &Identity,
        names: Names<'_>,
        spki: &SubjectPublicKeyInfoOwned,
        spki_der: &[u8],
        key_kind: PublicKeyKind,
        now: SystemTime,
        replay: Option<&crate::ReplayClaim>,
        audit: Audit<'_>,
    ) -> Result<IssuedCert, CaError> {
        let profile = &domain.profile;
        let mut replay = replay.filter(|c| !c.is_claimed());
        // The single issuance chokepoint (enroll, reenroll, serverkeygen, CMC, held requests):
        // nothing RFC 5280 forbids is ever signed (SEC-11).
        profile.check_names(names.subject, names.san)?;
        let san = if profile.copy_san {
            names.san.cloned()
        } else {
            None
        };
        let tbs_profile = TbsProfile {
            issuer: Some(domain.issuer.subject().clone()),
            subject: names.subject.clone(),
            kind: CertKind::EndEntity {
                key_usage: profile.key_usages_for(key_kind),
                eku: profile.extended_key_usage.iter().map(|e| e.oid()).collect(),
                san,
                crl_url: profile.crl_distribution_point.clone(),
                ocsp_url: profile.ocsp_url.clone(),
            },
        };
        let not_before = now.checked_sub(profile.backdate).unwrap_or(now);
        let not_after = std::cmp::min(now + profile.validity, domain.issuer.not_after());
        if not_after <= now {
            return Err(CaError::Internal(
                "the issuing CA certificate has expired".into(),
            ));
        }
        let validity = Validity::new(
            x509_cert::time::Time::try_from(not_before)?,
            x509_cert::time::Time::try_from(not_after)?,
        );
        let ski = hex::encode(key_identifier(spki.owned_to_ref())?);
        let spki_sha256 = hex::encode(openssl::sha::sha256(spki_der));

        // A serial collision is astronomically unlikely; the store's unique constraint is the
        // arbiter and we draw again if it ever fires.
        for _ in 0..3 {
            let (serial, serial_hex) = new_serial(now)?;
            let cert = domain
                .issuer
                .sign(tbs_profile.clone(), serial, validity, spki.clone())?;
            let der = cert.to_der()?;
            let record = CertRecord {
                serial: serial_hex,
                ca: domain.name.clone(),
                subject: cert.tbs_certificate().subject().to_string(),
                issuer: domain.issuer.subject_string.clone(),
                ski: ski.clone(),
                spki_sha256: spki_sha256.clone(),
                requester: identity.requester(),
                label: audit.origin.label.to_owned(),
                not_before: unix_secs(not_before),
                not_after: unix_secs(not_after),
                issued_at: unix_secs(now),
                status: CertStatus::Valid,
                revocation: None,
                der: der.clone(),
            };
            // CMC-53: the request's replay record rides in the certificate's commit, and so
            // does its audit record (issue 11 item 4: no certificate without one).
            let event = audit.issued(identity, &record);
            let started = std::time::Instant::now();
            let pair = replay.map(|claim| claim.pair(unix_secs(now)));
            let result = self
                .store
                .insert_certificate_audited(&record, pair.as_ref(), &event)
                .await;
            self.observer.store_commit(
                crate::StoreCommit::Certificate,
                started.elapsed(),
                result.is_ok(),
            );
            if let Some(claim) =
                replay.take_if(|_| matches!(result, Ok(()) | Err(StoreError::DuplicateSerial)))
            {
                // Recorded: later attempts (and certificates) go without it.
                claim.mark_claimed();
                self.prune_replay_records_if_due(unix_secs(now)).await;
            }
            match result {
                Ok(()) => {
                    tracing::info!(serial = %record.serial, subject = %record.subject, requester = %record.requester, ca = %record.ca, "certificate issued");
                    self.observer.certificate_issued(&record.ca);
                    return Ok(IssuedCert { cert, der, record });
                }
                Err(StoreError::DuplicateSerial) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CaError::Internal(
            "could not allocate a unique serial number".into(),
        ))
    }

    pub(crate) fn authorize_initial(
        &self,
        identity: &Identity,
        names: Names<'_>,
    ) -> Result<(), CaError> {
        match identity {
            Identity::User { names: policy, .. } => {
                policy.check(&RequestedNames::from_request(names.subject, names.san)?)
            }
            // EST-80: a certificate holder may ask for more certificates for its own identity.
            Identity::Certificate { cert, record } => {
                // SEC-23: revocation is known from our records; a certificate of our CAs that
                // they do not hold (another installation, a restored database) has no
                // knowable status and authorizes nothing.
                let Some(record) = record else {
                    return Err(CaError::NotAuthorized(
                        "the client certificate is not in this CA's records, so its revocation status is unknown"
                            .into(),
                    ));
                };
                if record.status == CertStatus::Revoked {
                    return Err(CaError::NotAuthorized(
                        "the client certificate is revoked".into(),
                    ));
                }
                // EST-48: an RA of this CA requests certificates for others.
                if crate::is_registration_authority(cert) {
                    return Ok(());
                }
                if cert.tbs_certificate().subject() != names.subject {
                    return Err(CaError::NotAuthorized(
                        "a certificate-authenticated client may only request its own subject name"
                            .into(),
                    ));
                }
                Ok(())
            }
            Identity::ImplicitCertificate { cert, mapping } => mapping.check(cert, names),
            Identity::Token { subject, .. } => {
                if subject.is_empty() || names.subject.to_string() == *subject {
                    Ok(())
                } else {
                    Err(CaError::NameNotAllowed(format!(
                        "this enrollment token is for the subject \"{subject}\", not \"{}\"",
                        names.subject
                    )))
                }
            }
            // CMC-49: a secret linked to a DN certifies only that DN.
            Identity::SharedSecret { subject, .. } => {
                if subject.is_empty() || names.subject.to_string() == *subject {
                    Ok(())
                } else {
                    Err(CaError::NameNotAllowed(format!(
                        "this shared secret is linked to the subject \"{subject}\", not \"{}\" (CMC-49)",
                        names.subject
                    )))
                }
            }
        }
    }

    async fn renewal_target(
        &self,
        identity: &Identity,
        target: &RenewalTarget,
        names: Names<'_>,
        domain: &CaDomain,
        now: SystemTime,
    ) -> Result<Certificate, CaError> {
        match (target, identity) {
            (
                RenewalTarget::Vouched { serial, issuer },
                Identity::Certificate {
                    cert: ra,
                    record: Some(ra_record),
                },
            ) if crate::is_registration_authority(ra) && ra_record.status == CertStatus::Valid => {
                let record = self
                    .store
                    .certificate_by_serial(serial)
                    .await?
                    // Issued by this label's own CA, not by another CA of this server.
                    .filter(|r| r.issuer == *issuer && r.ca == domain.name)
                    .ok_or_else(|| {
                        CaError::NoRenewalTarget(
                            "the certificate the RA says is being renewed was not issued by this CA"
                                .into(),
                        )
                    })?;
                check_current(&record, now)?;
                Ok(Certificate::from_der(&record.der)?)
            }
            (RenewalTarget::Vouched { .. }, _) => Err(CaError::NotAuthorized(
                "only an RA certificate of this CA may renew on a client's behalf".into(),
            )),
            (RenewalTarget::ClientCertificate, Identity::Certificate { cert, record }) => {
                let record = record.as_ref().ok_or_else(|| {
                    CaError::NoRenewalTarget(
                        "the client certificate was not issued by this CA".into(),
                    )
                })?;
                check_current(record, now)?;
                Ok((**cert).clone())
            }
            (_, Identity::User { .. }) => {
                let filter = CertFilter {
                    requester: Some(identity.requester()),
                    subject: Some(names.subject.to_string()),
                    valid_at: Some(unix_secs(now)),
                    status: Some(CertStatus::Valid),
                    limit: 2,
                    ..Default::default()
                };
                let found = self.store.list_certificates(&filter).await?;
                match found.as_slice() {
                    [one] => Ok(Certificate::from_der(&one.der)?),
                    [] => Err(CaError::NoRenewalTarget(
                        "no current certificate with this subject was issued to you; use /simpleenroll".into(),
                    )),
                    _ => Err(CaError::NoRenewalTarget(
                        "several current certificates match; authenticate with the certificate to renew".into(),
                    )),
                }
            }
            (_, Identity::Token { .. }) => Err(CaError::NotAuthorized(
                "an enrollment token is for initial enrollment only".into(),
            )),
            (_, Identity::SharedSecret { .. }) => Err(CaError::NotAuthorized(
                "a shared-secret identity proof is for initial enrollment only; sign a renewal with the current certificate (CMC-21)".into(),
            )),
            (_, Identity::ImplicitCertificate { .. }) => Err(CaError::NotAuthorized(
                "a client authenticated by an implicit trust anchor may only enroll, not renew (SEC-23)"
                    .into(),
            )),
            (RenewalTarget::ByIdentity, Identity::Certificate { .. }) => {
                Box::pin(self.renewal_target(
                    identity,
                    &RenewalTarget::ClientCertificate,
                    names,
                    domain,
                    now,
                ))
                .await
            }
        }
    }
}

/// EST-84: the certificate being renewed is valid (not revoked) and unexpired.
fn check_current(record: &CertRecord, now: SystemTime) -> Result<(), CaError> {
    if record.status != CertStatus::Valid {
        return Err(CaError::NoRenewalTarget(
            "the certificate being renewed is revoked".into(),
        ));
    }
    if record.not_after < unix_secs(now) {
        return Err(CaError::NoRenewalTarget(
            "the certificate being renewed has expired".into(),
        ));
    }
    Ok(())
}

/// EST-82: subject DER-equal and the same set of SAN entries (absent on both sides is equal).
fn check_same_names(old: &Certificate, names: Names<'_>) -> Result<(), CaError> {
    if old.tbs_certificate().subject().to_der()? != names.subject.to_der()? {
        return Err(CaError::SubjectMismatch(format!(
            "reenroll subject \"{}\" differs from the certificate being renewed (\"{}\")",
            names.subject,
            old.tbs_certificate().subject()
        )));
    }
    let old_san = old
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| CaError::Internal(format!("SAN of renewed certificate: {e}")))?
        .map(|(_, s)| s);
    if san_set(old_san.as_ref())? != san_set(names.san)? {
        return Err(CaError::SubjectMismatch(
            "reenroll SubjectAltName differs from the certificate being renewed".into(),
        ));
    }
    Ok(())
}
