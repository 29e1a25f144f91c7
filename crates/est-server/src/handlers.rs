//! Thin handlers: check the method, media type and size, authenticate, then call the authority.
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use der::Decode;
use est_ca::{
    Authority, CaError, CertifyRequest, DeliveredKey, EnrollRequest, Identity, IssuedCert,
    KeyGenRequest, RenewalTarget,
};
use est_proto::{Operation, PathError};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use x509_cert::Certificate;

use crate::auth::{AuthSettings, HttpAuth};
use crate::{Approval, ConnInfo, LabelConfig, Limits, ServerError};

/// What the EST front end needs from a CA: authenticate, enroll, and the chain for /cacerts.
/// The embedded [`Authority`] implements it; an RA forwarding to another CA will too.
#[async_trait]
pub trait EstCa: Send + Sync + std::fmt::Debug + 'static {
    async fn authenticate_user(
        &self,
        user: &str,
        password: &[u8],
    ) -> Result<Option<Identity>, CaError>;
    /// The user record behind a Basic credential (I/O only). With
    /// [`EstCa::verify_user_password`] this splits [`EstCa::authenticate_user`] so that the
    /// server's bound on concurrent password checks covers only the CPU-heavy half.
    async fn find_user(&self, user: &str) -> Result<Option<est_ca::UserRecord>, CaError>;
    /// Verifies a Basic password against `record` (a dummy hash when `None`), CPU only.
    fn verify_user_password(
        &self,
        user: &str,
        record: Option<est_ca::UserRecord>,
        password: &[u8],
    ) -> Result<Option<Identity>, CaError>;
    async fn certificate_identity(&self, cert: Certificate) -> Result<Identity, CaError>;
    /// HTTP Digest: the user's HA1 (lowercase hex) for `realm` and `algorithm` (RFC 7616
    /// token) and the identity it authenticates; `None` when unknown. Default: no Digest.
    async fn digest_ha1(
        &self,
        _user: &str,
        _realm: &str,
        _algorithm: &str,
    ) -> Result<Option<(zeroize::Zeroizing<String>, Identity)>, CaError> {
        Ok(None)
    }
    /// A one-time enrollment token (`tok_...` Basic user name) valid on `label`; not consumed
    /// here. Default: no tokens.
    async fn authenticate_token(
        &self,
        _id: &str,
        _secret: &[u8],
        _label: &str,
    ) -> Result<Option<Identity>, CaError> {
        Ok(None)
    }
    async fn enroll(&self, req: EnrollRequest<'_>) -> Result<IssuedCert, CaError>;
    /// Certifies a key whose possession the CMC layer proved (/fullcmc).
    async fn certify(&self, req: CertifyRequest<'_>) -> Result<IssuedCert, CaError>;
    /// Signs a DER PKIResponse as SignedData with the domain's issuing CA key, carrying
    /// `issued` (DER certificates) and the CA chain (CMC-26..CMC-28).
    fn sign_cmc_response(
        &self,
        domain: &str,
        pki_response: &[u8],
        issued: &[Vec<u8>],
        crls: &[Vec<u8>],
        signed_attributes: &[x509_cert::attr::Attribute],
    ) -> Result<Vec<u8>, CaError>;
    /// A certificate this CA recorded, by serial (lowercase hex, CMC-70).
    async fn certificate_record(
        &self,
        _serial: &str,
    ) -> Result<Option<est_ca::CertRecord>, CaError> {
        Ok(None)
    }
    /// Holds an initial CMC certification for approval, or moves a held one on.
    async fn certify_with_approval(
        &self,
        _req: CertifyRequest<'_>,
        _label: &str,
        _request_der: &[u8],
    ) -> Result<est_ca::HeldOutcome, CaError> {
        Err(CaError::Internal(
            "manual approval is not supported by this CA".into(),
        ))
    }
    /// A held request by id (pendToken hex).
    async fn held_request(&self, _id: &str) -> Result<Option<est_ca::PendingRecord>, CaError> {
        Ok(None)
    }
    /// Issues an approved held request, or reports its state (Query Pending, CMC-64).
    async fn advance_held(
        &self,
        _record: est_ca::PendingRecord,
        _req: CertifyRequest<'_>,
    ) -> Result<est_ca::HeldOutcome, CaError> {
        Err(CaError::Internal(
            "manual approval is not supported by this CA".into(),
        ))
    }
    /// The CMC shared secret provisioned for `ident` (CMC-43). Default: none.
    async fn cmc_secret(&self, _ident: &str) -> Result<Option<est_ca::CmcSecret>, CaError> {
        Ok(None)
    }
    /// Records a (transactionId, senderNonce) pair; `false` when it was seen before (CMC-53).
    async fn cmc_replay_fresh(&self, transaction_id: &str, nonce: &[u8]) -> Result<bool, CaError>;
    /// The POP proof values of an Encrypted POP challenge to `request_der`, newest first
    /// (CMC-67). Default: unsupported.
    fn encrypted_pop_values(
        &self,
        _request_der: &[u8],
    ) -> Result<[zeroize::Zeroizing<Vec<u8>>; 2], CaError> {
        Err(CaError::Internal(
            "Encrypted POP is not supported by this CA".into(),
        ))
    }
    /// /serverkeygen: generate, certify and package a key for the client (RFC 7030 §4.4).
    async fn server_keygen(&self, req: KeyGenRequest<'_>) -> Result<DeliveredKey, CaError>;
    /// A fresh key of `key_type` from the key pool, for a key this server generates without
    /// certifying it (an RA generating a client's key, SKGD-35). Default: unsupported.
    async fn generate_key(
        &self,
        _key_type: est_ca::KeyType,
    ) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, CaError> {
        Err(CaError::Internal("this server generates no keys".into()))
    }
    /// CMC server-side key generation (SKGD-4): a fresh key of the requested type from the
    /// key pool, certified with the same authorization as enrollment. Default: unsupported.
    async fn certify_generated(
        &self,
        _req: est_ca::GenerateRequest<'_>,
    ) -> Result<est_ca::GeneratedKey, CaError> {
        Err(CaError::Internal(
            "server-side key generation is not supported by this CA".into(),
        ))
    }
    /// SKGD-18, SKGD-19 layers 1-2: `key` as an AsymmetricKeyPackage signed by the domain's
    /// issuing CA (the key generator, with its chain), enveloped as `plan` says. Default:
    /// unsupported.
    fn seal_generated_key(
        &self,
        _domain: &str,
        _key: &openssl::pkey::PKey<openssl::pkey::Private>,
        _plan: &est_cmc::serverkeygen::server::DeliveryPlan,
    ) -> Result<Vec<u8>, est_cmc::Failure> {
        Err(est_cmc::Failure::message(
            est_cmc::CmcFailInfo::INTERNAL_CA_ERROR,
            "server-side key generation is not supported by this CA",
        ))
    }
    /// Initial enrollment held for manual approval (EST-49, EST-92). Default: unsupported.
    async fn enroll_with_approval(
        &self,
        _req: EnrollRequest<'_>,
        _label: &str,
    ) -> Result<est_ca::EnrollOutcome, CaError> {
        Err(CaError::Internal(
            "manual approval is not supported by this CA".into(),
        ))
    }
    /// The issuing CA certificate and every certificate up to the root (EST-65).
    fn ca_chain(&self, domain: &str) -> Option<Vec<Certificate>>;
    /// The current CRL of CA domain `domain`, DER (RFC 5280 §5), served at `/crl/<domain>.crl`;
    /// `None` for a CA this front end has no CRL of (404). Default: none.
    async fn crl(&self, _domain: &str) -> Result<Option<Arc<Vec<u8>>>, CaError> {
        Ok(None)
    }
    /// OCSP (RFC 6960): the DER OCSPResponse to a DER OCSPRequest about any CA of this front
    /// end, served at `/ocsp`; `None`: no responder here (404). Default: none.
    async fn ocsp(&self, _request_der: &[u8]) -> Option<est_ca::OcspAnswer> {
        None
    }
    /// Revokes a certificate this CA issued (RFC 5280 §5.3; the operation behind a CMC
    /// Revocation Request, CMC-72). `actor` names who asked, for the audit log. Default:
    /// unsupported.
    async fn revoke(
        &self,
        _serial_hex: &str,
        _reason: est_ca::CrlReason,
        _invalidity_date: Option<std::time::SystemTime>,
        _actor: &str,
    ) -> Result<est_ca::RevokeOutcome, CaError> {
        Err(CaError::Internal(
            "revocation is not supported by this CA".into(),
        ))
    }
    /// Appends `event` to the audit trail (a refusal the front end decided itself, issue 11
    /// item 4); failures are logged. Default: nothing is recorded.
    async fn audit(&self, _event: &est_ca::AuditEvent) {}
    /// RA mode: the identity-level checks of an initial enrollment for a request forwarded
    /// upstream ([`Authority::authorize_forwarding`]). Default: refused.
    async fn authorize_forwarding(
        &self,
        _identity: &Identity,
        _subject: &x509_cert::name::Name,
        _san: Option<&x509_cert::ext::pkix::SubjectAltName>,
        _origin: est_ca::Origin<'_>,
    ) -> Result<(), CaError> {
        Err(CaError::NotAuthorized(
            "this server cannot forward requests".into(),
        ))
    }
}

#[async_trait]
impl EstCa for Authority {
    async fn authorize_forwarding(
        &self,
        identity: &Identity,
        subject: &x509_cert::name::Name,
        san: Option<&x509_cert::ext::pkix::SubjectAltName>,
        origin: est_ca::Origin<'_>,
    ) -> Result<(), CaError> {
        Authority::authorize_forwarding(self, identity, subject, san, origin).await
    }
    async fn authenticate_user(
        &self,
        user: &str,
        password: &[u8],
    ) -> Result<Option<Identity>, CaError> {
        Authority::authenticate_user(self, user, password).await
    }
    async fn find_user(&self, user: &str) -> Result<Option<est_ca::UserRecord>, CaError> {
        Authority::find_user(self, user).await
    }
    fn verify_user_password(
        &self,
        user: &str,
        record: Option<est_ca::UserRecord>,
        password: &[u8],
    ) -> Result<Option<Identity>, CaError> {
        Authority::verify_user_password(self, user, record, password)
    }
    async fn certificate_identity(&self, cert: Certificate) -> Result<Identity, CaError> {
        Authority::certificate_identity(self, cert).await
    }
    async fn digest_ha1(
        &self,
        user: &str,
        realm: &str,
        algorithm: &str,
    ) -> Result<Option<(zeroize::Zeroizing<String>, Identity)>, CaError> {
        Authority::digest_ha1(self, user, realm, algorithm).await
    }
    async fn authenticate_token(
        &self,
        id: &str,
        secret: &[u8],
        label: &str,
    ) -> Result<Option<Identity>, CaError> {
        Authority::authenticate_token(self, id, secret, label).await
    }
    async fn enroll(&self, req: EnrollRequest<'_>) -> Result<IssuedCert, CaError> {
        Authority::enroll(self, req).await
    }
    async fn certify(&self, req: CertifyRequest<'_>) -> Result<IssuedCert, CaError> {
        Authority::certify(self, req).await
    }
    fn sign_cmc_response(
        &self,
        domain: &str,
        pki_response: &[u8],
        issued: &[Vec<u8>],
        crls: &[Vec<u8>],
        signed_attributes: &[x509_cert::attr::Attribute],
    ) -> Result<Vec<u8>, CaError> {
        let d = self
            .domain(domain)
            .ok_or_else(|| CaError::Internal(format!("unknown CA domain {domain}")))?;
        // The chain as encoded once at start: nothing is decoded or re-encoded per response.
        let certs: Vec<&[u8]> = issued
            .iter()
            .map(Vec::as_slice)
            .chain(d.issuer.full_chain_der())
            .collect();
        est_cms::sign_with_der_certs(
            est_cmc::oids::CT_PKI_RESPONSE,
            pki_response,
            &d.issuer.cms_signer(),
            &certs,
            &est_cms::SignOptions {
                crls: crls.to_vec(),
                signed_attributes: signed_attributes.to_vec(),
                ..Default::default()
            },
        )
        .map_err(|e| CaError::Internal(format!("signing the CMC response: {e}")))
    }
    async fn cmc_secret(&self, ident: &str) -> Result<Option<est_ca::CmcSecret>, CaError> {
        Authority::cmc_secret(self, ident).await
    }
    async fn certify_with_approval(
        &self,
        req: CertifyRequest<'_>,
        label: &str,
        request_der: &[u8],
    ) -> Result<est_ca::HeldOutcome, CaError> {
        Authority::certify_with_approval(self, req, label, request_der).await
    }
    async fn held_request(&self, id: &str) -> Result<Option<est_ca::PendingRecord>, CaError> {
        Authority::held_request(self, id).await
    }
    async fn certificate_record(
        &self,
        serial: &str,
    ) -> Result<Option<est_ca::CertRecord>, CaError> {
        Ok(self.store().certificate_by_serial(serial).await?)
    }
    async fn advance_held(
        &self,
        record: est_ca::PendingRecord,
        req: CertifyRequest<'_>,
    ) -> Result<est_ca::HeldOutcome, CaError> {
        Authority::advance_held(self, record, req).await
    }
    async fn cmc_replay_fresh(&self, transaction_id: &str, nonce: &[u8]) -> Result<bool, CaError> {
        Authority::check_cmc_replay(self, transaction_id, nonce).await
    }
    fn encrypted_pop_values(
        &self,
        request_der: &[u8],
    ) -> Result<[zeroize::Zeroizing<Vec<u8>>; 2], CaError> {
        Authority::encrypted_pop_values(self, request_der)
    }
    async fn server_keygen(&self, req: KeyGenRequest<'_>) -> Result<DeliveredKey, CaError> {
        let keys = OffloadedKeys(self.key_pool().clone());
        Authority::server_keygen_delivered(self, req, &keys).await
    }
    async fn generate_key(
        &self,
        key_type: est_ca::KeyType,
    ) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, CaError> {
        use est_ca::KeySource;
        OffloadedKeys(self.key_pool().clone()).take(key_type).await
    }
    async fn certify_generated(
        &self,
        req: est_ca::GenerateRequest<'_>,
    ) -> Result<est_ca::GeneratedKey, CaError> {
        let keys = OffloadedKeys(self.key_pool().clone());
        Authority::certify_generated(self, req, &keys).await
    }
    fn seal_generated_key(
        &self,
        domain: &str,
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        plan: &est_cmc::serverkeygen::server::DeliveryPlan,
    ) -> Result<Vec<u8>, est_cmc::Failure> {
        let d = self.domain(domain).ok_or_else(|| {
            est_cmc::Failure::message(
                est_cmc::CmcFailInfo::INTERNAL_CA_ERROR,
                format!("unknown CA domain {domain}"),
            )
        })?;
        plan.seal(key, &d.issuer.cms_signer(), &d.issuer.chain)
    }
    async fn enroll_with_approval(
        &self,
        req: EnrollRequest<'_>,
        label: &str,
    ) -> Result<est_ca::EnrollOutcome, CaError> {
        Authority::enroll_with_approval(self, req, label).await
    }
    fn ca_chain(&self, domain: &str) -> Option<Vec<Certificate>> {
        self.domain(domain).map(|d| d.issuer.full_chain())
    }
    async fn crl(&self, domain: &str) -> Result<Option<Arc<Vec<u8>>>, CaError> {
        if self.domain(domain).is_none() {
            return Ok(None);
        }
        Authority::crl(self, domain).await.map(Some)
    }
    async fn ocsp(&self, request_der: &[u8]) -> Option<est_ca::OcspAnswer> {
        Some(Authority::ocsp(self, request_der).await)
    }
    async fn revoke(
        &self,
        serial_hex: &str,
        reason: est_ca::CrlReason,
        invalidity_date: Option<std::time::SystemTime>,
        actor: &str,
    ) -> Result<est_ca::RevokeOutcome, CaError> {
        // The CMC layer does not carry the peer address down to revocation: the audit record
        // names the actor only.
        Authority::revoke(self, serial_hex, reason, invalidity_date, actor, "").await
    }
    async fn audit(&self, event: &est_ca::AuditEvent) {
        Authority::audit(self, event).await;
    }
}

/// Key generation on tokio's blocking threads: an RSA key takes long enough to stall every
/// other request on a worker thread.
struct OffloadedKeys(est_ca::KeyPool);

#[async_trait]
impl est_ca::KeySource for OffloadedKeys {
    async fn take(
        &self,
        kt: est_ca::KeyType,
    ) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, CaError> {
        let pool = self.0.clone();
        tokio::task::spawn_blocking(move || pool.take(kt))
            .await
            .map_err(|e| CaError::Internal(format!("key generation task: {e}")))?
    }
}

#[derive(Debug)]
pub(crate) struct Label {
    pub(crate) cfg: LabelConfig,
    /// Precomputed /cacerts body (base64 certs-only), served as is.
    cacerts_body: Bytes,
    csrattrs_body: Option<Bytes>,
    /// RA mode: the upstream CA's certificates as the anchors of CMC signing certificates.
    pub(crate) upstream_trust: Option<Arc<crate::cmc::TrustStore>>,
}

/// Shared, immutable state of the EST service.
#[derive(Debug)]
pub struct EstState {
    pub(crate) ca: Arc<dyn EstCa>,
    labels: HashMap<String, Label>,
    pub(crate) limits: Limits,
    /// Shared with the state a reload replaces this one by, when the settings are the same:
    /// Digest nonces and guessing counters survive a SIGHUP.
    pub(crate) auth: Arc<HttpAuth>,
    /// This server's CA certificates: the anchors of certificates that sign CMC requests.
    pub(crate) cmc_trust: crate::cmc::TrustStore,
    /// The CA's CMC encryption key and certificate, for EnvelopedData requests (CMC-20).
    pub(crate) cmc_decryption: Option<Arc<est_cms::RecipientSecret>>,
    /// Request and handshake metrics (issue 11), exposed by the admin listener.
    metrics: Arc<crate::Metrics>,
}

impl EstState {
    pub fn new(
        ca: Arc<dyn EstCa>,
        labels: Vec<LabelConfig>,
        limits: Limits,
    ) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut chains = Vec::new();
        for cfg in labels {
            if !cfg.name.is_empty() {
                est_proto::validate_label(&cfg.name)
                    .map_err(|e| format!("label {:?}: {e}", cfg.name))?;
            }
            // An RA label serves its upstream CA's certificates (RA mode, issue 10).
            let chain = match &cfg.upstream {
                Some(up) => up.ca_chain(),
                None => ca
                    .ca_chain(&cfg.domain)
                    .ok_or_else(|| format!("label {:?}: unknown CA {:?}", cfg.name, cfg.domain))?,
            };
            if chain.is_empty() {
                return Err(format!("label {:?}: no CA certificates", cfg.name));
            }
            let mut served = chain.clone();
            for c in &cfg.extra_cacerts {
                if !served.contains(c) {
                    served.push(c.clone());
                }
            }
            let p7 =
                est_proto::certs_only_encode(&served).map_err(|e| format!("certs-only: {e}"))?;
            if cfg.upstream.is_none() {
                chains.push(chain.clone());
            }
            let cacerts_body = Bytes::from(est_proto::encode_body(&p7));
            // EST-55: a label that requires PoP linking lists challengePassword.
            let csr_attrs = if cfg.require_pop_linking {
                Some(
                    est_proto::csrattrs_requiring_pop_linking(cfg.csr_attrs.as_deref())
                        .map_err(|e| format!("label {:?}: {e}", cfg.name))?,
                )
            } else {
                cfg.csr_attrs.clone()
            };
            let csrattrs_body = csr_attrs
                .as_ref()
                .map(|d| Bytes::from(est_proto::encode_body(d)));
            // An RA label's clients sign with certificates of its upstream CA (SKGD-41).
            let upstream_trust = match &cfg.upstream {
                Some(up) => Some(Arc::new(crate::cmc::trust_store(&[up.ca_chain()])?)),
                None => None,
            };
            if map
                .insert(
                    cfg.name.clone(),
                    Label {
                        cfg,
                        cacerts_body,
                        csrattrs_body,
                        upstream_trust,
                    },
                )
                .is_some()
            {
                return Err("duplicate label".into());
            }
        }
        Ok(Self {
            ca,
            labels: map,
            limits,
            auth: Arc::new(HttpAuth::new(AuthSettings::default())?),
            cmc_trust: crate::cmc::trust_store(&chains)?,
            cmc_decryption: None,
            metrics: Arc::new(crate::Metrics::new()),
        })
    }

    /// Records into `metrics` (shared with the authority's observer and the admin listener).
    pub fn with_metrics(mut self, metrics: Arc<crate::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Arc<crate::Metrics> {
        &self.metrics
    }

    /// Whether `name` is a configured CA label ("" the label-less path).
    pub(crate) fn has_label(&self, name: &str) -> bool {
        self.labels.contains_key(name)
    }

    /// Replaces the default HTTP authentication settings (realm, Digest nonces).
    pub fn with_auth_settings(mut self, settings: AuthSettings) -> Result<Self, String> {
        self.auth = Arc::new(HttpAuth::new(settings)?);
        Ok(self)
    }

    /// Opens EnvelopedData /fullcmc requests with this key (PEM) and certificate (CMC-20).
    pub fn with_cmc_decryption(
        mut self,
        key_pem: &[u8],
        cert: Certificate,
    ) -> Result<Self, String> {
        let key = openssl::pkey::PKey::private_key_from_pem(key_pem)
            .map_err(|e| format!("CMC encryption key: {e}"))?;
        self.cmc_decryption = Some(Arc::new(est_cms::RecipientSecret::PrivateKey {
            key,
            cert: Some(cert),
            ski: None,
        }));
        Ok(self)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Keeps `old`'s HTTP authentication state (Digest nonces, guessing counters) when its
    /// settings are the ones this state was built with: for a reload (SIGHUP).
    pub(crate) fn keeping_auth_of(mut self, old: &EstState) -> Self {
        if self.auth.settings() == old.auth.settings() {
            self.auth = old.auth.clone();
        }
        self
    }
}

pub(crate) fn base64_response(content_type: &'static str, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // EST-11: harmless for RFC 8951 peers, needed by RFC 7030-era ones.
    h.insert(
        "content-transfer-encoding",
        HeaderValue::from_static("base64"),
    );
    r
}

pub(crate) const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// The single entry point for every request: served with the state current when it
/// arrived (a reload swaps it for later requests, SIGHUP).
pub(crate) async fn dispatch(
    State(cell): State<Arc<crate::serve::StateCell>>,
    req: Request,
) -> Response {
    let st = cell.current();
    match handle(&st, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(st: &EstState, req: Request) -> Result<Response, ServerError> {
    // The OCSP responder (RFC 6960 Appendix A.1), beside EST like the CRLs.
    if est_proto::is_ocsp_path(req.uri().path()) {
        return crate::ocsp::ocsp(st, req).await;
    }
    // CRLs live beside EST, not under /.well-known/est (RFC 7030 reserves that for EST).
    if req.uri().path().starts_with(est_proto::CRL_PATH_PREFIX) {
        // Owned: a borrowed request (its body is not Sync) would make the future not Send.
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        drop(req);
        return crl(st, &method, &path).await;
    }
    let conn = req
        .extensions()
        .get::<Arc<ConnInfo>>()
        .cloned()
        .ok_or_else(|| {
            ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "no connection context")
        })?;
    let path = est_proto::parse_path(req.uri().path()).map_err(|e| match e {
        PathError::NotEst => ServerError::new(
            StatusCode::NOT_FOUND,
            "not found: EST is served under /.well-known/est/",
        ),
        other => ServerError::new(StatusCode::NOT_FOUND, other.to_string()),
    })?;
    let label_name = path.label.as_deref().unwrap_or("");
    let label = st.labels.get(label_name).ok_or_else(|| {
        ServerError::new(
            StatusCode::NOT_FOUND,
            format!("unknown CA label \"{label_name}\""),
        )
    })?;
    let op = path.operation;
    // EST-7: GET for /cacerts and /csrattrs, POST for the rest; 405 with Allow otherwise.
    let allowed = op.method();
    let method_ok =
        req.method().as_str() == allowed || (allowed == "GET" && req.method() == Method::HEAD);
    if !method_ok {
        return Err(ServerError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("use {allowed} for /{}", op.as_str()),
        )
        .with_header(header::ALLOW, HeaderValue::from_static(allowed)));
    }
    match op {
        Operation::CaCerts => Ok(base64_response(
            "application/pkcs7-mime",
            label.cacerts_body.clone(),
        )),
        Operation::CsrAttrs => Ok(match &label.csrattrs_body {
            Some(b) => base64_response("application/csrattrs", b.clone()),
            None => StatusCode::NO_CONTENT.into_response(),
        }),
        // RA mode: authenticated and authorized here, issued upstream.
        Operation::SimpleEnroll | Operation::SimpleReenroll if label.cfg.upstream.is_some() => {
            let up = label.cfg.upstream.as_deref().ok_or_else(no_upstream)?;
            crate::ra::enroll(st, label, up, &conn, req, op == Operation::SimpleReenroll).await
        }
        Operation::ServerKeyGen if label.cfg.upstream.is_some() => {
            let up = label.cfg.upstream.as_deref().ok_or_else(no_upstream)?;
            crate::ra::server_keygen(st, label, up, &conn, req).await
        }
        Operation::FullCmc if label.cfg.upstream.is_some() => {
            let up = label.cfg.upstream.as_deref().ok_or_else(no_upstream)?;
            crate::ra::full_cmc(st, label, up, &conn, req).await
        }
        Operation::SimpleEnroll | Operation::SimpleReenroll => {
            enroll(st, label, &conn, req, op == Operation::SimpleReenroll).await
        }
        Operation::ServerKeyGen => crate::keygen::server_keygen(st, label, &conn, req).await,
        Operation::FullCmc => crate::cmc::full_cmc(st, label, &conn, req).await,
        _ => Err(ServerError::new(StatusCode::NOT_FOUND, "unknown operation")),
    }
}

fn no_upstream() -> ServerError {
    ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "no upstream CA")
}

/// The media type of a DER CRL (RFC 2585 §4.2).
pub(crate) const PKIX_CRL: &str = "application/pkix-crl";

/// GET `/crl/<ca>.crl`: the CA's current CRL, DER over HTTP as RFC 5280 §4.2.1.13 and RFC 2585
/// §3 want it (not base64), no authentication: CRLs are public and signed. 404 for a path
/// that names no CA of ours.
async fn crl(st: &EstState, method: &Method, path: &str) -> Result<Response, ServerError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(
            ServerError::new(StatusCode::METHOD_NOT_ALLOWED, "use GET for CRLs")
                .with_header(header::ALLOW, HeaderValue::from_static("GET")),
        );
    }
    let unknown = |what: String| ServerError::new(StatusCode::NOT_FOUND, what);
    let name = est_proto::parse_crl_path(path)
        .ok_or_else(|| unknown("not found: CRLs are served at /crl/<ca>.crl".to_owned()))?;
    let der = st
        .ca
        .crl(name)
        .await?
        .ok_or_else(|| unknown(format!("unknown CA \"{name}\"")))?;
    let mut r = Response::new(Body::from(Bytes::from_owner(SharedDer(der))));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PKIX_CRL));
    Ok(r)
}

/// A cached DER body served without copying.
struct SharedDer(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedDer {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// Reads the whole body under the size limit (EST-18: 413 beyond it).
pub(crate) async fn read_body(st: &EstState, req: Request) -> Result<Bytes, ServerError> {
    let limit = st.limits.max_body_bytes;
    let too_big = || {
        ServerError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )
    };
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ServerError::bad_request("invalid Content-Length"))?,
        ),
        None => None,
    };
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut body, limit).await;
        return Err(too_big());
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| ServerError::bad_request("could not read the request body"))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(&mut body, limit).await;
                return Err(too_big());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Lingering close for an oversized body: read and discard a bounded amount (4× the limit, at
/// most 2 s) so the client, still sending, reads our 413 instead of a connection reset.
pub(crate) async fn drain(body: &mut Body, limit: usize) {
    let cap = limit.saturating_mul(4);
    let mut seen = 0usize;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                seen += d.len();
                if seen > cap {
                    break;
                }
            }
        }
    })
    .await;
}

/// Authenticates `req` before its body is read (so unauthenticated clients cannot make us
/// buffer), then reads and base64-decodes the body. With `optional`, a request without
/// credentials that would get a 401 goes on unauthenticated (`None`): /fullcmc on a label that
/// accepts CMC-level authentication (RFC 7030 §3.2.3 allows either). A refused client is still
/// sending its body: it is read (bounded) before the answer, so the close that follows does
/// not reset the connection under our 401.
pub(crate) async fn authenticated_body(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
    reenroll: bool,
    optional: bool,
) -> Result<(Option<Identity>, Vec<u8>), ServerError> {
    let (parts, mut body) = req.into_parts();
    let identity =
        match crate::auth::authenticate(st.ca.as_ref(), &st.auth, label, conn, &parts, reenroll)
            .await
        {
            Ok(id) => Some(id),
            Err(e)
                if optional
                    && e.status == StatusCode::UNAUTHORIZED
                    && !parts.headers.contains_key(header::AUTHORIZATION) =>
            {
                None
            }
            Err(e) => {
                drain(&mut body, st.limits.max_body_bytes).await;
                return Err(e);
            }
        };
    let body = read_body(st, Request::from_parts(parts, body)).await?;
    let der = est_proto::decode_body(&body)
        .map_err(|e| ServerError::bad_request(format!("body is not valid base64: {e}")))?;
    Ok((identity, der))
}

/// A PKCS#10 request as /simpleenroll, /simplereenroll and /serverkeygen take it (EST-74,
/// SKG-6), with the identity that sent it.
pub(crate) struct CsrRequest {
    pub identity: Identity,
    pub der: Vec<u8>,
    pub csr: x509_cert::request::CertReq,
}

/// Checks the media type, authenticates (before reading the body, so unauthenticated clients
/// cannot make us buffer), reads and decodes the CSR, checks its channel binding (EST-54) and
/// the label's authorization policy (EST-47).
pub(crate) async fn read_csr(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
    op: Operation,
    reenroll: bool,
) -> Result<CsrRequest, ServerError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !est_proto::content_type_matches(op, ct) {
        return Err(ServerError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/pkcs10, got \"{ct}\""),
        ));
    }
    let (identity, der) = authenticated_body(st, label, conn, req, reenroll, false).await?;
    let identity = identity
        .ok_or_else(|| ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "no identity"))?;
    let csr = x509_cert::request::CertReq::from_der(&der)
        .map_err(|e| ServerError::bad_request(format!("body is not a DER PKCS#10 request: {e}")))?;
    // CMC-56/EST-48: an RA certificate speaks for others only on a label that authorizes it;
    // elsewhere it may ask for its own name only, like any other client (and its channel
    // binding is checked like anyone's).
    let ra = is_ra(&identity) && ra_authorized(label, &identity);
    if is_ra(&identity) && !ra && !own_subject(&identity, &csr) {
        return Err(ServerError::new(
            StatusCode::FORBIDDEN,
            "this RA certificate is not authorized to request certificates for others on this CA label (CMC-56): the label's cmc_ras must list its subject",
        ));
    }
    check_pop_linking(label, conn, &csr, ra)?;
    // EST-47: the label's own policy, before the CA sees the request (403 with the reason).
    let names = est_ca::RequestedNames::from_csr(&csr)?;
    if let Err(e) = label.cfg.policy.authorize(&identity, &names) {
        // Issue 11 item 4: refusals go to the audit trail, with where they came from.
        let event = est_ca::AuditEvent::new(
            unix_now(),
            identity.requester(),
            conn.peer.to_string(),
            est_ca::audit_action::ENROLL_REFUSED,
        )
        .target(csr.info.subject.to_string())
        .label(label.cfg.name.as_str())
        .details(format!("label policy (EST-47): {e}"));
        st.ca.audit(&event).await;
        return Err(e.into());
    }
    Ok(CsrRequest { identity, der, csr })
}

async fn enroll(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
    reenroll: bool,
) -> Result<Response, ServerError> {
    let op = if reenroll {
        Operation::SimpleReenroll
    } else {
        Operation::SimpleEnroll
    };
    let csr = read_csr(st, label, conn, req, op, reenroll).await?;
    let (identity, der) = (csr.identity, csr.der);
    let peer = conn.peer.to_string();
    let request = EnrollRequest {
        domain: &label.cfg.domain,
        csr_der: &der,
        identity: &identity,
        renewal: reenroll.then_some(RenewalTarget::ByIdentity),
        // The audit trail's "from where" (issue 11 item 4).
        origin: est_ca::Origin {
            source: &peer,
            label: &label.cfg.name,
        },
    };
    let issued = match (label.cfg.approval, reenroll) {
        // EST-49/EST-91: initial enrollment on a manual label is held for the operator.
        (Approval::Manual { retry_after }, false) => {
            match st.ca.enroll_with_approval(request, &label.cfg.name).await? {
                est_ca::EnrollOutcome::Issued(c) => *c,
                est_ca::EnrollOutcome::Pending => return Ok(accepted(retry_after)),
            }
        }
        _ => st.ca.enroll(request).await?,
    };
    certs_only_response(&issued.der)
}

/// The 200 answer of an enrollment: the issued certificate (DER) as a base64 certs-only
/// Simple PKI Response (EST-74, EST-88).
pub(crate) fn certs_only_response(cert_der: &[u8]) -> Result<Response, ServerError> {
    let p7 = est_proto::certs_only_encode_der(&[cert_der]).map_err(|e| {
        ServerError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding response: {e}"),
        )
    })?;
    Ok(base64_response(
        CERTS_ONLY,
        Bytes::from(est_proto::encode_body(&p7)),
    ))
}

/// 202 with Retry-After in delta-seconds and a human-readable note (EST-91).
pub(crate) fn accepted(retry_after: std::time::Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut r = (
        StatusCode::ACCEPTED,
        format!("request held for manual approval; send the same request again in {secs} s\n"),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        h.insert(header::RETRY_AFTER, v);
    }
    r
}

/// The wall clock in unix seconds (audit records of refusals the front end decides).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Basic user names with this prefix are one-time enrollment token ids (SEC-1).
pub use est_ca::TOKEN_PREFIX;

/// EST-48: a certificate of this CA (recorded in our store) with id-kp-cmcRA is an RA.
fn is_ra(identity: &Identity) -> bool {
    matches!(identity, Identity::Certificate { cert, record: Some(_) } if est_ca::is_registration_authority(cert))
}

/// Whether the label authorizes this RA identity (CMC-56): its subject matches one of the
/// label's `authorized_ras` globs.
pub(crate) fn ra_authorized(label: &Label, identity: &Identity) -> bool {
    match identity {
        // Patterns match per RDN (a `*` does not cross into other name components).
        Identity::Certificate { cert, .. } => est_ca::any_dn_glob(
            &label.cfg.cmc.authorized_ras,
            &cert.tbs_certificate().subject().to_string(),
        ),
        _ => false,
    }
}

/// Whether a certificate-authenticated client asks for its own subject name.
fn own_subject(identity: &Identity, csr: &x509_cert::request::CertReq) -> bool {
    matches!(identity, Identity::Certificate { cert, .. }
        if der::Encode::to_der(cert.tbs_certificate().subject()).ok() == der::Encode::to_der(&csr.info.subject).ok())
}

/// EST-54/EST-59: a challengePassword is the base64 channel binding of this connection.
/// An RA (EST-48) forwards its clients' CSRs, whose bindings belong to other connections:
/// a binding that does not match is accepted from it.
fn check_pop_linking(
    label: &Label,
    conn: &ConnInfo,
    csr: &x509_cert::request::CertReq,
    ra: bool,
) -> Result<(), ServerError> {
    let cp = est_proto::challenge_password(csr)
        .map_err(|e| ServerError::bad_request(format!("challengePassword: {e}")))?;
    match (cp, &conn.binding) {
        (None, _) if label.cfg.require_pop_linking => Err(ServerError::bad_request(
            "linking of identity and POP required: put the base64 channel binding of this TLS connection in challengePassword",
        )),
        (None, _) => Ok(()),
        (Some(_), _) if ra => {
            tracing::info!(peer = %conn.peer, "challengePassword from an RA accepted without matching this connection (EST-48)");
            Ok(())
        }
        (Some(_), None) => Err(ServerError::bad_request(
            "identity/POP linking failed: this TLS 1.2 connection has no extended master secret, so tls-unique cannot be used",
        )),
        (Some(cp), Some(b)) => {
            if est_proto::binding_matches(&cp, b.value()) {
                Ok(())
            } else {
                Err(ServerError::bad_request(format!(
                    "identity/POP linking failed: challengePassword does not match the {} value of this TLS connection",
                    b.name()
                )))
            }
        }
    }
}
