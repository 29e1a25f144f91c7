//! RA mode (issue 10, RFC 7030 §3.5, RFC 5272 §7): a label whose requests go to an upstream
//! CA instead of this server's own. The RA authenticates and authorizes the client exactly as
//! a CA label does (the label's methods, EST-47 policy, channel binding), then hands the
//! request to an [`Upstream`], which wraps it without altering it (CMC-57) and brings back
//! the CA's answer. The RA keeps no issuing key.
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use der::{Decode, Encode};
use est_ca::Identity;
use est_proto::Operation;
use http::{HeaderValue, StatusCode, header};
use x509_cert::Certificate;

use crate::handlers::{EstState, Label, read_csr};
use crate::{ConnInfo, ServerError};

/// What became of a forwarded enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// The upstream CA issued this certificate (DER).
    Issued(Vec<u8>),
    /// The upstream CA holds the request; the client asks again after this long (EST-91).
    Pending(Duration),
}

/// Why a forwarded request did not come back with a certificate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream CA refused the request; its reason goes to the client (403).
    #[error("the upstream CA refused the request: {0}")]
    Refused(String),
    /// The upstream CA found the request itself wrong (e.g. key reuse it does not permit,
    /// EST-86); its reason goes to the client (400).
    #[error("the upstream CA refused the request: {0}")]
    Invalid(String),
    /// The upstream CA could not be reached, or answered something this RA cannot use (502).
    #[error("the upstream CA is unavailable: {0}")]
    Unavailable(String),
}

/// An EST enrollment this RA authenticated and authorized.
#[derive(Debug, Clone, Copy)]
pub struct ForwardEnroll<'a> {
    pub label: &'a str,
    /// The client's DER PKCS#10, unchanged (CMC-57).
    pub csr_der: &'a [u8],
    /// Who the RA authenticated ([`Identity::requester`]), for the audit and the pending map.
    pub requester: &'a str,
    /// A /simplereenroll whose names this RA checked against the client's certificate.
    pub reenroll: bool,
    /// With `reenroll`: the certificate being renewed (the client's TLS certificate), which
    /// the RA names to the CA (EST-84..EST-86).
    pub renewing: Option<&'a Certificate>,
}

/// A client's Full PKI Request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardCmc<'a> {
    pub label: &'a str,
    /// The client's DER ContentInfo, unchanged (CMC-57).
    pub request_der: &'a [u8],
    /// The requester this RA authenticated over HTTP or TLS, when it did: the RA then vouches
    /// for the request (RA Identity Witness, CMC-62); `None`: the request must authenticate
    /// itself to the CA.
    pub vouched: Option<&'a str>,
    /// Body part IDs of the certification requests in the client's PKIData (empty: a request
    /// of controls only, such as Query Pending).
    pub request_ids: &'a [u32],
    /// Who the RA authenticated over HTTP or TLS, vouched for or not: a Query Pending from
    /// the client whose request the RA vouched for is the RA's to forward (CMC-64).
    pub requester: Option<&'a str>,
}

/// An answer relayed as the upstream sent it.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    /// The body as sent on the wire (base64 for EST payloads).
    pub body: Bytes,
}

/// The upstream CA's answer to a certification request the RA made itself for a key it
/// generated (SKGD-35, SKGD-36).
#[derive(Debug, Clone)]
pub struct CaResponse {
    /// The CA's signed response as it came (a DER ContentInfo), verified; the RA hands it to
    /// the client through Response Body (CMC-63).
    pub signed: Vec<u8>,
    /// The CA's status for the RA's request; `None` when it said nothing but certificates (a
    /// success).
    pub status: Option<est_cmc::CmcStatusInfoV2>,
    /// The certificates of the CA's response.
    pub certificates: Vec<Certificate>,
}

/// The CA an RA label forwards to: over `/fullcmc` (RA-signed PKIData) or plain EST (the RA's
/// own TLS client certificate).
#[async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug + 'static {
    /// The upstream CA's certificates, the issuing CA first: this label's /cacerts (EST-62).
    fn ca_chain(&self) -> Vec<Certificate>;
    /// Enrolls the PKCS#10 of an EST client; a retry of a request the CA holds is answered by
    /// asking the CA about it (Query Pending, CMC-64), not by sending it anew.
    async fn enroll(&self, req: ForwardEnroll<'_>) -> Result<Forwarded, UpstreamError>;
    /// Forwards a client's Full PKI Request; the answer is the CA's response to the client
    /// (CMC-63, CMC-66): a DER ContentInfo with its HTTP status and Content-Type.
    async fn full_cmc(&self, req: ForwardCmc<'_>) -> Result<Relayed, UpstreamError>;
    /// Whether the certificate (DER) a client renews with is still good at the upstream CA
    /// (its OCSP responder); `Refused` when it is revoked or unknown there. Default: not
    /// checked.
    async fn check_not_revoked(&self, _cert_der: &[u8]) -> Result<(), UpstreamError> {
        Ok(())
    }
    /// SKGD-35: asks the CA to certify a key this RA generated for a client: `req.csr_der`
    /// (the RA's own PKCS#10, with ChangeSubjectName) in an RA-signed PKIData. Default: not
    /// possible.
    async fn certify_generated(
        &self,
        _req: ForwardEnroll<'_>,
    ) -> Result<CaResponse, UpstreamError> {
        Err(UpstreamError::Refused(
            "this RA's upstream CA does not certify keys the RA generates".into(),
        ))
    }
    /// The RA's own CMC signer (its id-kp-cmcRA certificate and key) with the rest of its
    /// chain: the key generator and response signer of RA-generated keys (SKGD-34, SKGD-36).
    /// Default: none.
    fn ra_signer(&self) -> Option<(&(dyn est_cms::CmsSigner + Sync), &[Certificate])> {
        None
    }
    /// Forwards a /serverkeygen request (RFC 7030 §4.4.1: the CA generates the key) and
    /// relays the CA's multipart answer unchanged, so a key encrypted for the client stays so.
    async fn server_keygen(&self, label: &str, csr_der: &[u8]) -> Result<Relayed, UpstreamError>;
}

fn upstream_error(e: UpstreamError) -> ServerError {
    match e {
        UpstreamError::Refused(why) => ServerError::new(
            StatusCode::FORBIDDEN,
            format!("the upstream CA refused the request: {why}"),
        ),
        UpstreamError::Invalid(why) => {
            ServerError::bad_request(format!("the upstream CA refused the request: {why}"))
        }
        UpstreamError::Unavailable(why) => {
            tracing::warn!(reason = %why, "upstream CA unavailable");
            ServerError::new(
                StatusCode::BAD_GATEWAY,
                format!("the upstream CA is unavailable: {why}"),
            )
        }
    }
}

/// /simpleenroll and /simplereenroll on an RA label.
pub(crate) async fn enroll(
    st: &EstState,
    label: &Label,
    up: &dyn Upstream,
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
    if reenroll {
        check_renewal(&csr.identity, &csr.csr, up)?;
        // A revoked certificate renews nothing: asked of the upstream CA, which knows.
        if let Identity::Certificate { cert, .. } = &csr.identity {
            let der = cert
                .to_der()
                .map_err(|e| ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            up.check_not_revoked(&der).await.map_err(upstream_error)?;
        }
    } else {
        authorize(st, label, conn, &csr).await?;
    }
    let requester = csr.identity.requester();
    let renewing = match &csr.identity {
        Identity::Certificate { cert, .. } if reenroll => Some(cert.as_ref()),
        _ => None,
    };
    let out = up
        .enroll(ForwardEnroll {
            label: &label.cfg.name,
            csr_der: &csr.der,
            requester: &requester,
            reenroll,
            renewing,
        })
        .await;
    let outcome = match &out {
        Ok(Forwarded::Issued(der)) => format!("issued {}", serial_of(der)),
        Ok(Forwarded::Pending(_)) => "pending".to_owned(),
        Err(e) => e.to_string(),
    };
    record(st, label, conn, &requester, op, &outcome).await;
    match out.map_err(upstream_error)? {
        Forwarded::Issued(der) => crate::handlers::certs_only_response(&der),
        Forwarded::Pending(after) => Ok(crate::handlers::accepted(after)),
    }
}

/// EST-82 at the RA: a /simplereenroll comes with the certificate being renewed (the TLS
/// client certificate, validated to the upstream CA's chain) and asks for the same subject
/// and SubjectAltName. The upstream CA sees an RA-vouched request, so this is the only place
/// the rule can be enforced.
fn check_renewal(
    identity: &Identity,
    csr: &x509_cert::request::CertReq,
    up: &dyn Upstream,
) -> Result<(), ServerError> {
    let Identity::Certificate { cert, .. } = identity else {
        return Err(ServerError::new(
            StatusCode::FORBIDDEN,
            "re-enrollment through this RA needs the certificate being renewed as the TLS client certificate",
        ));
    };
    // Issued by this label's upstream CA itself (not by another CA under the same root).
    if !issued_by_one_of(cert, &up.ca_chain()) {
        return Err(ServerError::new(
            StatusCode::FORBIDDEN,
            "the certificate being renewed was not issued by this label's upstream CA",
        ));
    }
    let old = cert.tbs_certificate();
    let same_subject = old.subject().to_der().ok() == csr.info.subject.to_der().ok();
    let old_san = san_of(old.extensions().map(|e| e.as_slice()).unwrap_or(&[]));
    let new_san = requested_san(csr)?;
    if !same_subject || old_san != new_san {
        return Err(ServerError::new(
            StatusCode::BAD_REQUEST,
            "reenroll must ask for the subject and SubjectAltName of the certificate being renewed (EST-82)",
        ));
    }
    Ok(())
}

/// Whether one of `cas` names itself as `cert`'s issuer and its key verifies `cert`.
fn issued_by_one_of(cert: &Certificate, cas: &[Certificate]) -> bool {
    let Ok(leaf) = cert
        .to_der()
        .map_err(|_| ())
        .and_then(|d| openssl::x509::X509::from_der(&d).map_err(|_| ()))
    else {
        return false;
    };
    cas.iter()
        .filter(|ca| ca.tbs_certificate().subject() == cert.tbs_certificate().issuer())
        .any(|ca| {
            ca.to_der()
                .ok()
                .and_then(|d| openssl::x509::X509::from_der(&d).ok())
                .and_then(|x| x.public_key().ok())
                .is_some_and(|k| leaf.verify(&k).unwrap_or(false))
        })
}

/// The identity-level checks of an initial enrollment (a user's names, a token's subject
/// and its one use, a certificate holder's own name) before the RA vouches for `csr`
/// upstream, where the CA takes the RA's word (CMC-56). The label's access rules were
/// applied by [`read_csr`].
async fn authorize(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    csr: &crate::handlers::CsrRequest,
) -> Result<(), ServerError> {
    let verified = est_ca::VerifiedCsr::verify(&csr.der, false)?;
    let source = conn.peer.to_string();
    st.ca
        .authorize_forwarding(
            &csr.identity,
            verified.subject(),
            verified.san.as_ref(),
            est_ca::Origin {
                source: &source,
                label: &label.cfg.name,
            },
        )
        .await?;
    Ok(())
}

/// The SubjectAltName entries (sorted DER) of a list of extensions.
fn san_of(exts: &[x509_cert::ext::Extension]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = exts
        .iter()
        .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .filter_map(|e| {
            x509_cert::ext::pkix::SubjectAltName::from_der(e.extn_value.as_bytes()).ok()
        })
        .flat_map(|s| s.0.into_iter())
        .filter_map(|g| g.to_der().ok())
        .collect();
    out.sort();
    out
}

fn requested_san(csr: &x509_cert::request::CertReq) -> Result<Vec<Vec<u8>>, ServerError> {
    let mut exts = Vec::new();
    for attr in csr.info.attributes.iter() {
        if attr.oid != const_oid::db::rfc5912::ID_EXTENSION_REQ {
            continue;
        }
        for v in attr.values.iter() {
            let list: Vec<x509_cert::ext::Extension> = v
                .decode_as()
                .map_err(|e| ServerError::bad_request(format!("extensionRequest: {e}")))?;
            exts.extend(list);
        }
    }
    Ok(san_of(&exts))
}

/// /serverkeygen on an RA label: authenticated and authorized here, generated by the CA.
pub(crate) async fn server_keygen(
    st: &EstState,
    label: &Label,
    up: &dyn Upstream,
    conn: &ConnInfo,
    req: Request,
) -> Result<Response, ServerError> {
    if label.cfg.server_keygen.is_none() {
        return Err(ServerError::new(
            StatusCode::NOT_IMPLEMENTED,
            "/serverkeygen is not enabled for this CA label",
        ));
    }
    let csr = read_csr(st, label, conn, req, Operation::ServerKeyGen, false).await?;
    authorize(st, label, conn, &csr).await?;
    let requester = csr.identity.requester();
    let out = up.server_keygen(&label.cfg.name, &csr.der).await;
    let outcome = match &out {
        Ok(r) => format!("upstream answered {}", r.status),
        Err(e) => e.to_string(),
    };
    record(
        st,
        label,
        conn,
        &requester,
        Operation::ServerKeyGen,
        &outcome,
    )
    .await;
    relay(out.map_err(upstream_error)?)
}

/// /fullcmc on an RA label: the HTTP layer is authenticated as on a CA label (a request
/// without credentials is let through when the label accepts CMC-level authentication: it
/// then has to convince the CA by itself); the body must be a Full PKI Request, which goes to
/// the CA unchanged inside the RA's wrapper.
pub(crate) async fn full_cmc(
    st: &EstState,
    label: &Label,
    up: &dyn Upstream,
    conn: &ConnInfo,
    req: Request,
) -> Result<Response, ServerError> {
    let (identity, der) = crate::cmc::read_request(st, label, conn, req).await?;
    // SKGD-35: a label that generates keys itself answers a ServerKeyGenRequest here; any
    // other request, and every request on a label without it, goes to the CA (SKGD-38).
    if let Some(oids) = &label.cfg.cmc.server_keygen
        && est_cmc::ra::carries_control(&der, &oids.server_key_gen_request)
    {
        return crate::cmc::ra_generated_key(st, label, up, conn, identity, der).await;
    }
    // The RA vouches only for a request it could read and authorize whole: every
    // certification request through the label's rules and the identity-level checks.
    // Anything else goes to the CA as it is, over a connection that vouches for nothing.
    let request_ids = match &identity {
        Some(id) => vouchable(st, label, conn, id, &der).await?,
        None => {
            certification_request_ids(&der)?;
            Vec::new()
        }
    };
    let authenticated = identity.as_ref().map(Identity::requester);
    let requester = authenticated.clone().filter(|_| !request_ids.is_empty());
    let out = up
        .full_cmc(ForwardCmc {
            label: &label.cfg.name,
            request_der: &der,
            vouched: requester.as_deref(),
            request_ids: &request_ids,
            requester: authenticated.as_deref(),
        })
        .await;
    let outcome = match &out {
        Ok(r) => format!(
            "upstream answered {}{}",
            r.status,
            if requester.is_some() {
                "; vouched"
            } else {
                "; as it is"
            }
        ),
        Err(e) => e.to_string(),
    };
    record(
        st,
        label,
        conn,
        requester.as_deref().unwrap_or(""),
        Operation::FullCmc,
        &outcome,
    )
    .await;
    relay(out.map_err(upstream_error)?)
}

/// The body part IDs of the certification requests of an authenticated client's Full PKI
/// Request, each authorized as an enrollment here; empty when the RA cannot vouch for it
/// (encrypted, controls only, or not readable: the CA then judges it alone). A request whose
/// names this client may not have is refused (403).
async fn vouchable(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    identity: &Identity,
    der: &[u8],
) -> Result<Vec<u32>, ServerError> {
    certification_request_ids(der)?;
    let policy = est_cmc::RequestPolicy {
        allow_sha1_pop: label.cfg.cmc.allow_sha1_pop,
    };
    let owned = der.to_vec();
    let parsed = tokio::task::spawn_blocking(move || {
        est_cmc::FullPkiRequest::parse_layered(&owned, policy, None)
    })
    .await
    .map_err(|_| ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    let Ok(request) = parsed else {
        return Ok(Vec::new());
    };
    let source = conn.peer.to_string();
    let mut ids = Vec::new();
    for r in request.requests.iter().flatten() {
        let (subject, san) = r.effective_names();
        let names = est_ca::RequestedNames::from_request(&subject, san.as_ref())?;
        label.cfg.policy.authorize(identity, &names)?;
        st.ca
            .authorize_forwarding(
                identity,
                &subject,
                san.as_ref(),
                est_ca::Origin {
                    source: &source,
                    label: &label.cfg.name,
                },
            )
            .await?;
        ids.push(r.body_part_id);
    }
    Ok(ids)
}

/// The body part IDs of the certification requests of the client's Full PKI Request (400
/// for a body that is not one; see [`est_cmc::ra::request_ids`]).
fn certification_request_ids(der: &[u8]) -> Result<Vec<u32>, ServerError> {
    est_cmc::ra::request_ids(der).map_err(ServerError::bad_request)
}

/// The log line and audit record of a forwarded request (issue 10: the RA records what it
/// forwarded and what came back): who, from where, which operation, the outcome.
pub(crate) async fn record(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    requester: &str,
    op: Operation,
    outcome: &str,
) {
    tracing::info!(label = %label.cfg.name, %requester, op = op.as_str(), %outcome, "RA: request forwarded");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let event = est_ca::AuditEvent::new(
        now,
        requester,
        conn.peer.to_string(),
        est_ca::audit_action::RA_FORWARD,
    )
    .target(op.as_str())
    .label(label.cfg.name.clone())
    .details(outcome);
    st.ca.audit(&event).await;
}

/// The serial (lowercase hex) of a DER certificate, for the audit trail.
fn serial_of(der: &[u8]) -> String {
    Certificate::from_der(der)
        .map(|c| est_ca::serial_hex(c.tbs_certificate().serial_number()))
        .unwrap_or_default()
}

/// The upstream's answer as it came: status, Content-Type, Retry-After and body.
fn relay(r: Relayed) -> Result<Response, ServerError> {
    let status = StatusCode::from_u16(r.status).map_err(|_| {
        ServerError::new(
            StatusCode::BAD_GATEWAY,
            "the upstream CA answered with an invalid status",
        )
    })?;
    let mut resp = (status, r.body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&r.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // As this server answers itself: base64 bodies say so (EST-11); a multipart/mixed body's
    // parts carry their own (a top-level one makes Bouncy Castle decode the whole body).
    if r.content_type.starts_with("application/pkcs7-mime") {
        h.insert(
            "content-transfer-encoding",
            HeaderValue::from_static("base64"),
        );
    }
    if let Some(v) = r.retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::RETRY_AFTER, v);
    }
    Ok(resp)
}
