//! RA mode's way to the upstream CA (issue 10): an [`est_server::Upstream`] over Estuary's
//! EST client. Over `/fullcmc` it signs its own PKIData around the client's request with the
//! RA certificate (id-kp-cmcRA), never altering the request (CMC-57); over plain EST it posts
//! the client's PKCS#10 to the upstream's `/simpleenroll` with the RA's TLS client
//! certificate. Connections to the upstream are kept alive and reused.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use der::{Decode, Encode};
use est_client::{ClientConfig, ClientError, ClientIdentity, EstClient, EstConnection, Trust};
use est_cmc::client::{RequestOptions, RequestSigner, build_query_pending};
use est_cmc::{CmcStatus, ResponseSummary};
use est_proto::Operation;
use est_server::{ForwardCmc, ForwardEnroll, Forwarded, Relayed, UpstreamError};
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use x509_cert::Certificate;

use crate::config::{AnyError, UpstreamProtocol, UpstreamSection, pem_certs, read_secret};

const CMC_RESPONSE: &str = "application/pkcs7-mime; smime-type=CMC-response";
/// Idle keep-alive connections kept per upstream.
const MAX_IDLE: usize = 64;
/// Pending EST enrollments remembered (a bound on memory; the oldest is dropped beyond it,
/// and a client retrying after that is sent to the CA anew, which finds its held request).
const MAX_PENDING: usize = 10_000;
/// Retry-After for a pending answer without a pendTime.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long the RA remembers a pendToken of a client's vouched request (a held request
/// waits for its operator this long at most, as far as this RA is concerned).
const HELD_TOKEN_TTL: Duration = Duration::from_secs(7 * 86_400);
/// pendTokens remembered at most (the map starts over when full).
const MAX_HELD_TOKENS: usize = 100_000;

/// A CA-side pending answer to an enrollment this RA forwarded over /fullcmc, kept so that the
/// client's retry is answered by Query Pending (CMC-64) instead of a new request.
#[derive(Debug, Clone)]
struct Held {
    token: Vec<u8>,
    transaction_id: der::asn1::Int,
    server_nonce: Option<Vec<u8>>,
    retry_after: Duration,
    at: std::time::Instant,
}

/// Runs `$body` with `$c` bound to a kept-alive connection to the upstream, or a new one; a
/// reused connection that fails at the HTTP layer (the upstream closed it while idle) is
/// replaced once, and `$body` runs anew (building its request anew: fresh nonces).
macro_rules! with_conn {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut fresh = false;
        loop {
            match $self.take(fresh).await {
                Err(e) => break Err(e),
                Ok((mut conn, reused)) => {
                    let $c = &mut conn;
                    let out = $body;
                    match out {
                        // Closed by the upstream before the request went out (an idle
                        // connection it timed out): once more on a new connection. Not
                        // after the request was sent: a POST is not repeated.
                        Err(ClientError::Http(_)) if reused && $c.is_closed() => {
                            fresh = true;
                            continue;
                        }
                        other => {
                            $self.put_back(conn, other.is_ok());
                            break other;
                        }
                    }
                }
            }
        }
    }};
}

pub struct UpstreamClient {
    name: String,
    protocol: UpstreamProtocol,
    /// With the RA's TLS client certificate.
    client: EstClient,
    /// Without a client certificate: for client requests that authenticate themselves to the
    /// CA, so that the RA's TLS identity does not vouch for them.
    anonymous: EstClient,
    chain: Vec<Certificate>,
    trust: X509Store,
    signer: est_cms::OpensslSigner,
    /// The RA certificate's chain beyond itself (for responses the RA signs, SKGD-36).
    signer_chain: Vec<Certificate>,
    idle: Mutex<Vec<EstConnection>>,
    pending: Mutex<HashMap<[u8; 32], Held>>,
    /// pendTokens of CMC clients' requests this RA vouched for and the CA holds, with whose
    /// they are: that client's Query Pending for one is forwarded under the RA's name.
    held_tokens: Mutex<HashMap<Vec<u8>, (String, std::time::Instant)>>,
    /// Ask the upstream's OCSP responder before a renewal.
    check_revocation: bool,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("name", &self.name)
            .field("url", &self.client.config().url)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// Reads the `[[upstream]]` files (relative to `data_dir`).
    pub fn load(u: &UpstreamSection, data_dir: &Path) -> Result<Self, AnyError> {
        let chain_der = pem_certs(&data_dir.join(&u.ca_certs))?;
        if chain_der.is_empty() {
            return Err(format!("upstream {:?}: ca_certs holds no certificate", u.name).into());
        }
        let chain = chain_der
            .iter()
            .map(|d| Certificate::from_der(d))
            .collect::<Result<Vec<_>, _>>()?;
        let anchors = chain_der
            .iter()
            .map(|d| X509::from_der(d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut store = X509StoreBuilder::new()?;
        for a in &anchors {
            store.add_cert(a.clone())?;
        }
        // Every certificate of ca_certs is the operator's choice: a path may end at the
        // issuing CA.
        store.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)?;
        let ra_chain = pem_certs(&data_dir.join(&u.cert))?;
        let ra_cert_der = ra_chain
            .first()
            .ok_or_else(|| format!("upstream {:?}: cert holds no certificate", u.name))?;
        let key_pem = read_secret(&data_dir.join(&u.key))?;
        let key = openssl::pkey::PKey::private_key_from_pem(&key_pem)
            .map_err(|e| format!("upstream {:?}: key: {e}", u.name))?;
        let ra_cert = Certificate::from_der(ra_cert_der)?;
        if !est_ca::is_registration_authority(&ra_cert) {
            tracing::warn!(upstream = %u.name, "the RA certificate has no id-kp-cmcRA: the upstream CA will not take its word for its clients (CMC-56)");
        }
        let identity = ClientIdentity {
            cert: X509::from_der(ra_cert_der)?,
            chain: ra_chain[1..]
                .iter()
                .map(|d| X509::from_der(d))
                .collect::<Result<_, _>>()?,
            key: key.clone(),
        };
        let cfg = ClientConfig {
            url: u.url.trim_end_matches('/').to_owned(),
            label: u.label.clone(),
            trust: Trust::Explicit(anchors),
            identity: Some(identity),
            basic: None,
            max_tls12: false,
            http_auth: est_client::HttpAuth::Basic,
        };
        let anonymous = EstClient::new(ClientConfig {
            identity: None,
            ..cfg.clone()
        })?;
        Ok(Self {
            name: u.name.clone(),
            protocol: u.protocol,
            client: EstClient::new(cfg)?,
            anonymous,
            chain,
            trust: store.build(),
            signer: est_cms::OpensslSigner::new(key, ra_cert)?,
            signer_chain: ra_chain[1..]
                .iter()
                .map(|d| Certificate::from_der(d))
                .collect::<Result<_, _>>()?,
            idle: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            held_tokens: Mutex::new(HashMap::new()),
            check_revocation: u.check_revocation,
        })
    }

    pub fn url(&self) -> &str {
        &self.client.config().url
    }

    pub fn ra_certificate(&self) -> &Certificate {
        est_cms::CmsSigner::certificate(&self.signer)
    }

    /// GET /cacerts with the RA's identity: whether the upstream answers, and what.
    pub async fn probe(&self) -> Result<Vec<Certificate>, ClientError> {
        let mut c = self.client.connect().await?;
        c.cacerts().await
    }

    /// The configured CA certificates.
    pub fn configured_chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// A kept-alive connection (with the RA's certificate), and whether it was reused; or a
    /// new one.
    async fn take(&self, fresh: bool) -> Result<(EstConnection, bool), ClientError> {
        if !fresh {
            while let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
                // The upstream closes connections idle for long: those are dropped here.
                if !c.is_closed() {
                    return Ok((c, true));
                }
            }
        }
        Ok((self.client.connect().await?, false))
    }

    fn put_back(&self, c: EstConnection, ok: bool) {
        if !ok {
            return;
        }
        if let Ok(mut v) = self.idle.lock()
            && v.len() < MAX_IDLE
        {
            v.push(c);
        }
    }

    /// Signs `pki` as the RA, posts it to /fullcmc and verifies the CA's signed answer
    /// (CMC-28) and its recipientNonce (CMC-51). The PKIResponse content comes back with its
    /// summary and certificates; a Simple PKI Response (certificates only, CMC-4) comes back
    /// with an empty summary.
    async fn post_signed(
        &self,
        build: impl Fn() -> Result<(est_cmc::PkiData, Vec<u8>), String>,
    ) -> Result<CmcAnswer, UpstreamError> {
        self.post_signed_with(&[], build).await
    }

    /// [`Self::post_signed`] with unsigned attributes in the RA's SignerInfo (CMC-25).
    async fn post_signed_with(
        &self,
        unsigned: &[x509_cert::attr::Attribute],
        build: impl Fn() -> Result<(est_cmc::PkiData, Vec<u8>), String>,
    ) -> Result<CmcAnswer, UpstreamError> {
        let (status, der, nonce) = with_conn!(self, |c| {
            match build().and_then(|(pki, nonce)| {
                est_cmc::client::sign_request_with(
                    &pki,
                    &RequestSigner::Certificate(&self.signer),
                    unsigned,
                )
                .map(|r| (r, nonce))
            }) {
                Ok((req, nonce)) => c.full_cmc(&req).await.map(|(s, d)| (s, d, nonce)),
                Err(e) => Err(ClientError::Other(e)),
            }
        })
        .map_err(client_error)?;
        let ci = cms::content_info::ContentInfo::from_der(&der)
            .map_err(|e| UpstreamError::Unavailable(format!("CMC response: {e}")))?;
        let sd: cms::signed_data::SignedData = ci
            .content
            .decode_as()
            .map_err(|e| UpstreamError::Unavailable(format!("CMC response: {e}")))?;
        if sd.signer_infos.0.is_empty() {
            // CMC-4: a Simple PKI Response, certificates only.
            let certs = est_proto::certs_only_decode(&der)
                .map_err(|e| UpstreamError::Unavailable(format!("Simple PKI Response: {e}")))?;
            return Ok(CmcAnswer {
                status,
                signed: der,
                content: None,
                summary: ResponseSummary::default(),
                certificates: certs,
            });
        }
        let v = self.verify_response(&der)?;
        if v.content_type != est_cmc::oids::CT_PKI_RESPONSE {
            return Err(UpstreamError::Unavailable(format!(
                "the CA signed {}, not a PKIResponse",
                v.content_type
            )));
        }
        let summary = ResponseSummary::read(&v.content)
            .map_err(|e| UpstreamError::Unavailable(format!("PKIResponse: {e}")))?;
        if summary.recipient_nonce.as_deref() != Some(nonce.as_slice()) {
            return Err(UpstreamError::Unavailable(
                "the CA's response does not answer this request (recipientNonce, CMC-51)".into(),
            ));
        }
        Ok(CmcAnswer {
            status,
            signed: der,
            content: Some(v.content),
            summary,
            certificates: v.certificates,
        })
    }

    /// Verifies the CA's signed response (CMC-28). A signer that is one of the configured
    /// CA certificates is trusted as it is (the operator's choice; no path to build, which
    /// through OpenSSL 3's decoders was half of the RA's CPU per request); any other signer
    /// must chain to them.
    fn verify_response(&self, der: &[u8]) -> Result<est_cms::Verified, UpstreamError> {
        let err = |e: est_cms::CmsError| {
            UpstreamError::Unavailable(format!("the CA's response signature: {e}"))
        };
        let v = est_cms::verify(
            der,
            &self.trust,
            &est_cms::VerifyOptions {
                skip_chain_validation: true,
                ..Default::default()
            },
        )
        .map_err(err)?;
        let now = std::time::SystemTime::now();
        for signer in &v.signers {
            let validity = signer.tbs_certificate().validity();
            let current = validity.not_before.to_system_time() <= now
                && now <= validity.not_after.to_system_time();
            if !(current && self.chain.contains(signer)) {
                est_cms::validate_chain(&self.trust, signer, &v.certificates).map_err(err)?;
            }
        }
        Ok(v)
    }

    /// The enrollment over /fullcmc: a Query Pending for a request the CA holds, else the
    /// PKCS#10 in an RA-signed PKIData.
    async fn enroll_cmc(&self, req: ForwardEnroll<'_>) -> Result<Forwarded, UpstreamError> {
        let csr = x509_cert::request::CertReq::from_der(req.csr_der)
            .map_err(|e| UpstreamError::Refused(format!("PKCS#10: {e}")))?;
        let spki = csr
            .info
            .public_key
            .to_der()
            .map_err(|e| UpstreamError::Refused(e.to_string()))?;
        let key = pending_key(req.requester, &spki, &csr);
        let held = self.pending.lock().ok().and_then(|m| m.get(&key).cloned());
        let (answer, id) = match &held {
            Some(h) => {
                let a = self
                    .post_signed(|| {
                        let opts = RequestOptions::continuing(
                            h.transaction_id.clone(),
                            h.server_nonce.clone(),
                        )?;
                        let nonce = opts.sender_nonce.clone();
                        Ok((build_query_pending(&opts, &h.token)?, nonce))
                    })
                    .await?;
                (a, est_cmc::client::ID_QUERY_PENDING)
            }
            None => {
                let a = self
                    .post_signed(|| {
                        let opts = RequestOptions::random()?;
                        let nonce = opts.sender_nonce.clone();
                        // EST-84..EST-86: a re-enrollment names the certificate it renews,
                        // so that the CA renews it (names, key reuse, no approval hold).
                        let pki = match req.renewing {
                            Some(old) => est_cmc::ra::wrap_pkcs10_renewal(&opts, req.csr_der, old)?,
                            None => est_cmc::ra::wrap_pkcs10(&opts, req.csr_der)?,
                        };
                        Ok((pki, nonce))
                    })
                    .await?;
                (a, est_cmc::client::ID_REQUEST)
            }
        };
        let status = status_of(&answer.summary, id);
        match status {
            None => self.issued(&key, &answer, &spki),
            Some(s) if s.status == CmcStatus::SUCCESS => self.issued(&key, &answer, &spki),
            Some(s) if s.status == CmcStatus::PENDING => {
                let token = match (&held, est_cmc::ra::pend_token(&answer.summary, id)) {
                    (_, Some(t)) => t,
                    (Some(h), None) => h.token.clone(),
                    (None, None) => {
                        return Err(UpstreamError::Unavailable(
                            "the CA answered pending without a pendToken".into(),
                        ));
                    }
                };
                let transaction_id = answer.summary.transaction_id.clone().ok_or_else(|| {
                    UpstreamError::Unavailable(
                        "the CA's pending answer has no transactionId".into(),
                    )
                })?;
                // The CA's pendTime says when to ask again (at most an hour from now).
                let wait =
                    est_cmc::ra::pend_wait(&answer.summary, id, std::time::SystemTime::now())
                        .unwrap_or(DEFAULT_RETRY_AFTER)
                        .min(Duration::from_secs(3600));
                let h = Held {
                    token,
                    transaction_id,
                    server_nonce: answer.summary.sender_nonce.clone(),
                    retry_after: wait,
                    at: std::time::Instant::now(),
                };
                let after = h.retry_after;
                self.remember(key, h);
                Ok(Forwarded::Pending(after))
            }
            Some(s) => {
                self.forget(&key);
                let why = est_cmc::describe_status(&s);
                // EST-86: key reuse the CA does not permit is a bad request (400).
                let fail_info = match &s.other_info {
                    Some(est_cmc::types::OtherStatusInfo::FailInfo(f)) => Some(*f),
                    _ => None,
                };
                if fail_info == Some(est_cmc::CmcFailInfo::NO_KEY_REUSE) {
                    Err(UpstreamError::Invalid(why))
                } else {
                    Err(UpstreamError::Refused(why))
                }
            }
        }
    }

    /// The certificate for `spki` in a success answer; the pending entry goes.
    fn issued(
        &self,
        key: &[u8; 32],
        answer: &CmcAnswer,
        spki: &[u8],
    ) -> Result<Forwarded, UpstreamError> {
        self.forget(key);
        let cert = answer
            .certificates
            .iter()
            .find(|c| est_cmc::ra_keygen::certifies(c, spki))
            .ok_or_else(|| {
                UpstreamError::Unavailable(
                    "the CA's success answer carries no certificate for this key".into(),
                )
            })?;
        Ok(Forwarded::Issued(
            cert.to_der()
                .map_err(|e| UpstreamError::Unavailable(e.to_string()))?,
        ))
    }

    fn forget(&self, key: &[u8; 32]) {
        if let Ok(mut m) = self.pending.lock() {
            m.remove(key);
        }
    }

    fn remember(&self, key: [u8; 32], h: Held) {
        if let Ok(mut m) = self.pending.lock() {
            if m.len() >= MAX_PENDING
                && let Some(oldest) = m.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| *k)
            {
                m.remove(&oldest);
            }
            m.insert(key, h);
        }
    }

    async fn enroll_est(&self, req: ForwardEnroll<'_>) -> Result<Forwarded, UpstreamError> {
        // A /simplereenroll the RA checked goes to /simpleenroll: towards the CA the RA's own
        // certificate authenticates, and /simplereenroll would renew that one (docs/ra.md).
        let out = with_conn!(self, |c| c.simple_enroll(req.csr_der).await).map_err(client_error)?;
        match out {
            est_client::EnrollOutcome::Issued(certs) => {
                let first = certs.first().ok_or_else(|| {
                    UpstreamError::Unavailable("no certificate in the answer".into())
                })?;
                Ok(Forwarded::Issued(
                    first
                        .to_der()
                        .map_err(|e| UpstreamError::Unavailable(e.to_string()))?,
                ))
            }
            est_client::EnrollOutcome::Pending { retry_after } => {
                Ok(Forwarded::Pending(retry_after))
            }
        }
    }

    /// A client's Full PKI Request with certification requests the RA vouches for: wrapped
    /// with Batch Requests and RA Identity Witness; the CA's own response to it comes back
    /// (CMC-63, CMC-66).
    /// Whether every pendToken of the client's Query Pending names a request this RA vouched
    /// for `who` (and there is at least one).
    fn holds_tokens_of(&self, request_der: &[u8], who: &str) -> bool {
        let Ok(tokens) = est_cmc::ra::query_pending_tokens(request_der) else {
            return false;
        };
        let held = self.held_tokens.lock().unwrap_or_else(|p| p.into_inner());
        !tokens.is_empty()
            && tokens
                .iter()
                .all(|t| held.get(t).is_some_and(|(owner, _)| owner == who))
    }

    /// Remembers the pendTokens the CA gave `who`'s vouched request.
    fn remember_tokens(&self, response_der: &[u8], who: &str) {
        let tokens = est_cmc::ra::pending_tokens(response_der);
        if tokens.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let mut held = self.held_tokens.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|_, (_, at)| now.duration_since(*at) < HELD_TOKEN_TTL);
        if held.len() >= MAX_HELD_TOKENS {
            held.clear();
        }
        for t in tokens {
            held.insert(t, (who.to_owned(), now));
        }
    }

    async fn wrap_cmc(&self, req: ForwardCmc<'_>) -> Result<Relayed, UpstreamError> {
        // CMC-25: the client's CMC Unsigned Data moves into the RA's SignerInfo.
        let (client_der, unsigned) =
            est_cmc::ra::move_unsigned_data(req.request_der).map_err(UpstreamError::Refused)?;
        let unsigned: Vec<_> = unsigned.into_iter().collect();
        let answer = self
            .post_signed_with(&unsigned, || {
                let opts = RequestOptions::random()?;
                let nonce = opts.sender_nonce.clone();
                Ok((
                    est_cmc::ra::wrap_full_request(&opts, &client_der, req.request_ids)?,
                    nonce,
                ))
            })
            .await?;
        let content = answer.content.ok_or_else(|| {
            UpstreamError::Unavailable("the CA answered a batch with a Simple PKI Response".into())
        })?;
        match est_cmc::ra::batch_member(&content).map_err(UpstreamError::Unavailable)? {
            Some(inner) => {
                if let Some(who) = req.vouched {
                    self.remember_tokens(&inner, who);
                }
                Ok(Relayed {
                    status: 200,
                    content_type: CMC_RESPONSE.into(),
                    retry_after: None,
                    body: bytes::Bytes::from(est_proto::encode_body(&inner)),
                })
            }
            None => {
                let why = answer
                    .summary
                    .statuses
                    .iter()
                    .map(est_cmc::describe_status)
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(UpstreamError::Refused(if why.is_empty() {
                    format!(
                        "the CA answered {} without a response to the request",
                        answer.status
                    )
                } else {
                    why
                }))
            }
        }
    }
}

struct CmcAnswer {
    status: u16,
    /// The CA's signed response as it came (DER ContentInfo).
    signed: Vec<u8>,
    /// The verified PKIResponse (DER); `None` for a Simple PKI Response.
    content: Option<Vec<u8>>,
    summary: ResponseSummary,
    certificates: Vec<Certificate>,
}

/// The pending map's key: who asked, for which key and subject (a retry carries a new
/// channel binding, so the CSR itself differs).
fn pending_key(requester: &str, spki: &[u8], csr: &x509_cert::request::CertReq) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    for part in [
        requester.as_bytes(),
        spki,
        &csr.info.subject.to_der().unwrap_or_default(),
    ] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finish()
}

/// The CA's status for body part `id`, or its whole-request failure (which names no body
/// part); `None`: nothing said (certificates only).
fn status_of(summary: &ResponseSummary, id: u32) -> Option<est_cmc::CmcStatusInfoV2> {
    summary.status_of(id).cloned().or_else(|| {
        summary
            .statuses
            .iter()
            .find(|s| s.status == CmcStatus::FAILED)
            .cloned()
    })
}

fn client_error(e: ClientError) -> UpstreamError {
    match e {
        ClientError::Status { status, reason } if (400..500).contains(&status) => {
            UpstreamError::Refused(format!("{status}: {reason}"))
        }
        other => UpstreamError::Unavailable(other.to_string()),
    }
}

fn relayed(r: est_client::RawResponse) -> Relayed {
    Relayed {
        status: r.status,
        content_type: r.content_type,
        retry_after: r.retry_after,
        body: r.body,
    }
}

#[async_trait]
impl est_server::Upstream for UpstreamClient {
    fn ca_chain(&self) -> Vec<Certificate> {
        self.chain.clone()
    }

    async fn enroll(&self, req: ForwardEnroll<'_>) -> Result<Forwarded, UpstreamError> {
        match self.protocol {
            UpstreamProtocol::Fullcmc => self.enroll_cmc(req).await,
            UpstreamProtocol::Est => self.enroll_est(req).await,
        }
    }

    async fn full_cmc(&self, req: ForwardCmc<'_>) -> Result<Relayed, UpstreamError> {
        if self.protocol == UpstreamProtocol::Est {
            return Err(UpstreamError::Refused(
                "this RA's upstream CA speaks plain EST, not CMC: use /simpleenroll".into(),
            ));
        }
        if req.vouched.is_some() && !req.request_ids.is_empty() {
            return self.wrap_cmc(req).await;
        }
        // CMC-64: a client's Query Pending for a request this RA vouched for (the CA holds
        // it under the RA's name), from the same client: wrapped, so that the CA answers it.
        if let Some(who) = req.requester
            && self.holds_tokens_of(req.request_der, who)
        {
            return self
                .wrap_cmc(ForwardCmc {
                    vouched: Some(who),
                    ..req
                })
                .await;
        }
        // Everything else (controls only: Query Pending, Get Certificate, revocation; an
        // encrypted request; a client the RA did not authenticate) goes as it is over a
        // connection without the RA's certificate: the request has to authenticate itself,
        // and the RA's identity vouches for nothing it did not sign (CMC-58: signature
        // layers are not removed).
        let out = match self.anonymous.connect().await {
            Ok(mut c) => c.post_raw(Operation::FullCmc, req.request_der).await,
            Err(e) => Err(e),
        };
        out.map(relayed).map_err(client_error)
    }

    async fn certify_generated(
        &self,
        req: ForwardEnroll<'_>,
    ) -> Result<est_server::CaResponse, UpstreamError> {
        if self.protocol == UpstreamProtocol::Est {
            return Err(UpstreamError::Refused(
                "RA-generated keys need an upstream CA over /fullcmc".into(),
            ));
        }
        // SKGD-35: the RA's own PKCS#10 in its own signed PKIData.
        let answer = self
            .post_signed(|| {
                let opts = RequestOptions::random()?;
                let nonce = opts.sender_nonce.clone();
                Ok((est_cmc::ra::wrap_pkcs10(&opts, req.csr_der)?, nonce))
            })
            .await?;
        let status = status_of(&answer.summary, est_cmc::client::ID_REQUEST);
        Ok(est_server::CaResponse {
            signed: answer.signed,
            status,
            certificates: answer.certificates,
        })
    }

    fn ra_signer(&self) -> Option<(&(dyn est_cms::CmsSigner + Sync), &[Certificate])> {
        (self.protocol == UpstreamProtocol::Fullcmc).then_some((
            &self.signer as &(dyn est_cms::CmsSigner + Sync),
            self.signer_chain.as_slice(),
        ))
    }

    async fn check_not_revoked(&self, cert_der: &[u8]) -> Result<(), UpstreamError> {
        if !self.check_revocation {
            return Ok(());
        }
        let leaf = X509::from_der(cert_der).map_err(|e| UpstreamError::Refused(e.to_string()))?;
        let issuer = self
            .chain
            .iter()
            .filter_map(|c| c.to_der().ok().and_then(|d| X509::from_der(&d).ok()))
            .find(|c| {
                leaf.issuer_name()
                    .try_cmp(c.subject_name())
                    .is_ok_and(|o| o == std::cmp::Ordering::Equal)
            })
            .ok_or_else(|| {
                UpstreamError::Refused("the certificate's issuer is not the upstream CA".into())
            })?;
        let unavailable =
            |e: openssl::error::ErrorStack| UpstreamError::Unavailable(format!("OCSP: {e}"));
        let id = || {
            openssl::ocsp::OcspCertId::from_cert(
                openssl::hash::MessageDigest::sha1(),
                &leaf,
                &issuer,
            )
        };
        let mut req = openssl::ocsp::OcspRequest::new().map_err(unavailable)?;
        req.add_id(id().map_err(unavailable)?)
            .map_err(unavailable)?;
        let req_der = req.to_der().map_err(unavailable)?;
        let answer = with_conn!(self, |c| c.ocsp(&req_der).await).map_err(client_error)?;
        let resp = openssl::ocsp::OcspResponse::from_der(&answer).map_err(unavailable)?;
        if resp.status() != openssl::ocsp::OcspResponseStatus::SUCCESSFUL {
            return Err(UpstreamError::Unavailable(format!(
                "the upstream OCSP responder answered status {}",
                resp.status().as_raw()
            )));
        }
        let basic = resp.basic().map_err(unavailable)?;
        // Signed by the upstream CA (an answer may leave its certificate out: ca_certs has
        // it) or by a delegated responder chaining to ca_certs.
        let mut known = openssl::stack::Stack::new().map_err(unavailable)?;
        for c in &self.chain {
            if let Some(x) = c.to_der().ok().and_then(|d| X509::from_der(&d).ok()) {
                known.push(x).map_err(unavailable)?;
            }
        }
        basic
            .verify(&known, &self.trust, openssl::ocsp::OcspFlag::empty())
            .map_err(|e| UpstreamError::Unavailable(format!("the OCSP answer's signature: {e}")))?;
        let cert_id = id().map_err(unavailable)?;
        let status = basic.find_status(&cert_id).ok_or_else(|| {
            UpstreamError::Unavailable("the OCSP answer says nothing of this certificate".into())
        })?;
        status
            .check_validity(300, None)
            .map_err(|e| UpstreamError::Unavailable(format!("a stale OCSP answer: {e}")))?;
        match status.status {
            openssl::ocsp::OcspCertStatus::GOOD => Ok(()),
            openssl::ocsp::OcspCertStatus::REVOKED => Err(UpstreamError::Refused(
                "the certificate is revoked (upstream OCSP)".into(),
            )),
            _ => Err(UpstreamError::Refused(
                "the upstream CA does not know the certificate (OCSP unknown)".into(),
            )),
        }
    }

    async fn server_keygen(&self, _label: &str, csr_der: &[u8]) -> Result<Relayed, UpstreamError> {
        with_conn!(self, |c| c.post_raw(Operation::ServerKeyGen, csr_der).await)
            .map(relayed)
            .map_err(client_error)
    }
}
