//! The Estuary EST client library: one TLS connection per [`EstConnection`], HTTP/1.1 over our
//! own `SslStream` so the channel binding of the connection is known before the CSR that must
//! carry it is built (RFC 7030 §3.5).
mod csr;
mod keygen;

use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use der::Decode;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use tokio_openssl::SslStream;
use x509_cert::Certificate;
use zeroize::Zeroizing;

pub use csr::{
    KeyKind, San, build_csr, build_csr_full, build_csr_with, generate_key, san_extension,
    subject_key_id, subject_key_id_extension,
};
pub use est_proto::ChannelBinding;
pub use est_proto::digest::DigestAlgorithm;
pub use keygen::{KeyProtection, ServerGeneratedKey, server_keygen};

/// The request media type of /fullcmc (RFC 7030 §4.3.1).
pub const FULL_CMC_REQUEST: &str = "application/pkcs7-mime; smime-type=CMC-request";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("connection: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered with an error status; `reason` is its text/plain explanation.
    #[error("server answered {status}: {reason}")]
    Status { status: u16, reason: String },
    #[error("unexpected response: {0}")]
    Response(String),
    #[error("{0}")]
    Other(String),
}

impl From<openssl::error::ErrorStack> for ClientError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        ClientError::Tls(e.to_string())
    }
}

/// How the server is authenticated (EST-30).
#[derive(Debug, Clone)]
pub enum Trust {
    /// Explicit trust anchors; the server certificate must chain to one and match the host
    /// name or IP address of the URL (RFC 6125).
    Explicit(Vec<X509>),
    /// No trust anchors yet (EST-68): only /cacerts may be fetched, and nothing is trusted
    /// until a human has accepted the CA fingerprint. Credentials are never sent.
    Bootstrap,
}

/// A TLS client certificate with its key (and optional chain).
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert: X509,
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host[:port]`
    pub url: String,
    pub label: Option<String>,
    pub trust: Trust,
    pub identity: Option<ClientIdentity>,
    /// HTTP Basic credentials (the user name may be empty, EST-43).
    pub basic: Option<(String, Zeroizing<String>)>,
    /// Negotiate at most TLS 1.2 (tls-unique instead of tls-exporter).
    pub max_tls12: bool,
    /// Which HTTP authentication scheme answers a 401 with the `basic` credentials.
    pub http_auth: HttpAuth,
}

/// How the client answers an HTTP 401 with its user name and password (RFC 7030 §3.2.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpAuth {
    /// Basic when the server offers it, else Digest (the strongest algorithm offered).
    #[default]
    Auto,
    /// Basic only.
    Basic,
    /// Digest only (RFC 7616, qop=auth; SHA-256, SHA-512-256 or MD5): the password never
    /// crosses the wire, even inside TLS.
    Digest,
}

/// Result of an enrollment.
#[derive(Debug, Clone)]
pub enum EnrollOutcome {
    /// The issued certificate first, then any other certificates the server added (EST-88).
    Issued(Vec<Certificate>),
    /// 202: try again after this long (EST-91).
    Pending { retry_after: Duration },
}

/// An answer as the server sent it ([`EstConnection::post_raw`]).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    /// The body as sent (base64 for EST payloads, text/plain for errors).
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct EstClient {
    cfg: ClientConfig,
    host: String,
    port: u16,
    connector: SslConnector,
}

impl EstClient {
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        let rest = cfg
            .url
            .strip_prefix("https://")
            .ok_or_else(|| ClientError::Config("the URL must start with https://".into()))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse()
                    .map_err(|_| ClientError::Config("bad port".into()))?,
            ),
            _ => (authority.trim_matches(['[', ']']).to_string(), 443),
        };
        if host.is_empty() {
            return Err(ClientError::Config("no host in URL".into()));
        }
        if let Some(l) = &cfg.label {
            est_proto::validate_label(l).map_err(|e| ClientError::Config(e.to_string()))?;
        }
        let mut b = SslConnector::builder(SslMethod::tls_client())?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        if cfg.max_tls12 {
            b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
        }
        b.set_options(openssl::ssl::SslOptions::NO_RENEGOTIATION);
        match &cfg.trust {
            Trust::Explicit(anchors) => {
                if anchors.is_empty() {
                    return Err(ClientError::Config("no trust anchors".into()));
                }
                let mut store = openssl::x509::store::X509StoreBuilder::new()?;
                for a in anchors {
                    store.add_cert(a.clone())?;
                }
                b.set_cert_store(store.build());
                b.set_verify(SslVerifyMode::PEER);
            }
            Trust::Bootstrap => b.set_verify(SslVerifyMode::NONE),
        }
        if let Some(id) = &cfg.identity {
            b.set_certificate(&id.cert)?;
            for c in &id.chain {
                b.add_extra_chain_cert(c.clone())?;
            }
            b.set_private_key(&id.key)?;
        }
        Ok(Self {
            cfg,
            host,
            port,
            connector: b.build(),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Opens a TLS connection and verifies the server (except in bootstrap mode).
    pub async fn connect(&self) -> Result<EstConnection, ClientError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Connect(format!("{}:{}: {e}", self.host, self.port)))?;
        let _ = tcp.set_nodelay(true);
        let mut conf = self.connector.configure()?;
        if matches!(self.cfg.trust, Trust::Bootstrap) {
            conf.set_verify_hostname(false);
        }
        // SNI and host-name (or IP) verification (RFC 6125 §6.4, EST-31).
        let ssl = conf.into_ssl(&self.host)?;
        let mut stream = SslStream::new(ssl, tcp)?;
        tokio::time::timeout(Duration::from_secs(30), Pin::new(&mut stream).connect())
            .await
            .map_err(|_| ClientError::Tls("handshake timed out".into()))?
            .map_err(|e| {
                let v = stream.ssl().verify_result();
                if v != openssl::x509::X509VerifyResult::OK {
                    ClientError::Tls(format!(
                        "server certificate not trusted: {}",
                        v.error_string()
                    ))
                } else {
                    ClientError::Tls(e.to_string())
                }
            })?;
        let binding = channel_binding(stream.ssl());
        let peer_chain: Vec<X509> = stream
            .ssl()
            .peer_cert_chain()
            .map(|s| s.iter().map(|c| c.to_owned()).collect())
            .unwrap_or_default();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "EST connection ended");
            }
        });
        Ok(EstConnection {
            sender,
            binding,
            peer_chain,
            client: self.clone(),
        })
    }
}

/// tls-unique (TLS 1.2: the first Finished of the handshake: ours for a full handshake, the
/// server's for a resumed one) or tls-exporter (TLS 1.3).
fn channel_binding(ssl: &openssl::ssl::SslRef) -> Option<ChannelBinding> {
    if ssl.version2() == Some(SslVersion::TLS1_3) {
        let mut v = vec![0u8; 32];
        ssl.export_keying_material(&mut v, "EXPORTER-Channel-Binding", Some(&[]))
            .ok()?;
        Some(ChannelBinding::TlsExporter(v))
    } else {
        let mut v = vec![0u8; 64];
        let n = if ssl.session_reused() {
            ssl.peer_finished(&mut v)
        } else {
            ssl.finished(&mut v)
        };
        v.truncate(n);
        (n > 0).then_some(ChannelBinding::TlsUnique(v))
    }
}

/// One TLS connection to an EST server; requests run one after another (keep-alive).
#[derive(Debug)]
pub struct EstConnection {
    sender: SendRequest<Full<Bytes>>,
    binding: Option<ChannelBinding>,
    peer_chain: Vec<X509>,
    client: EstClient,
}

struct Resp {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    /// Every WWW-Authenticate value (a server may send one challenge per header).
    www_authenticate: Vec<String>,
    body: Bytes,
}

impl EstConnection {
    pub fn channel_binding(&self) -> Option<&ChannelBinding> {
        self.binding.as_ref()
    }

    /// Whether the server closed this connection (a kept-alive connection to reuse must not
    /// be).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// The certificates the server presented (for showing fingerprints in bootstrap mode).
    pub fn peer_chain(&self) -> &[X509] {
        &self.peer_chain
    }

    fn path(&self, op: est_proto::Operation) -> String {
        match &self.client.cfg.label {
            Some(l) => format!("/.well-known/est/{l}/{}", op.as_str()),
            None => format!("/.well-known/est/{}", op.as_str()),
        }
    }

    async fn send(
        &mut self,
        op: est_proto::Operation,
        body: Option<Vec<u8>>,
        authorization: Option<&str>,
    ) -> Result<Resp, ClientError> {
        let bootstrap = matches!(self.client.cfg.trust, Trust::Bootstrap);
        if bootstrap && op != est_proto::Operation::CaCerts {
            return Err(ClientError::Config(
                "in bootstrap mode only /cacerts may be used (EST-68)".into(),
            ));
        }
        let mut req = Request::builder()
            .method(op.method())
            .uri(self.path(op))
            .header(
                header::HOST,
                format!("{}:{}", self.client.host, self.client.port),
            );
        // EST-96: /fullcmc names the S/MIME type of the request.
        let media_type = match op {
            est_proto::Operation::FullCmc => Some(FULL_CMC_REQUEST),
            _ => op.request_media_type(),
        };
        if let Some(mt) = media_type {
            req = req
                .header(header::CONTENT_TYPE, mt)
                .header("content-transfer-encoding", "base64");
        }
        // EST-45: credentials only to a server we authenticated.
        if let Some(a) = authorization.filter(|_| !bootstrap) {
            req = req.header(header::AUTHORIZATION, a);
        }
        let body = body
            .map(|d| Bytes::from(est_proto::encode_body(&d)))
            .unwrap_or_default();
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        self.exchange(req).await
    }

    /// Sends `req` on this connection and reads the answer (at most 16 MiB of body).
    async fn exchange(&mut self, req: Request<Full<Bytes>>) -> Result<Resp, ClientError> {
        self.sender
            .ready()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let hv = |n: header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = resp.status();
        let content_type = hv(header::CONTENT_TYPE).unwrap_or_default();
        let retry_after = hv(header::RETRY_AFTER);
        let www_authenticate: Vec<String> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let body = http_body_util::Limited::new(resp.into_body(), 16 * 1024 * 1024)
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        Ok(Resp {
            status,
            content_type,
            retry_after,
            www_authenticate,
            body,
        })
    }

    /// `Basic <base64(user:password)>` of the configured credentials.
    fn basic_value(&self) -> Option<Zeroizing<String>> {
        let (u, p) = self.client.cfg.basic.as_ref()?;
        let cred = Zeroizing::new(format!("{u}:{}", p.as_str()));
        Some(Zeroizing::new(format!(
            "Basic {}",
            openssl::base64::encode_block(cred.as_bytes())
        )))
    }

    /// The Digest answer to `c` for `op` with the configured credentials (nc 1, a fresh
    /// cnonce); `None` without credentials.
    fn digest_value(
        &self,
        c: &est_proto::digest::DigestChallenge,
        op: est_proto::Operation,
    ) -> Result<Option<Zeroizing<String>>, ClientError> {
        let Some((user, password)) = &self.client.cfg.basic else {
            return Ok(None);
        };
        let mut cn = [0u8; 16];
        openssl::rand::rand_bytes(&mut cn).map_err(|e| ClientError::Other(e.to_string()))?;
        let cnonce: String = cn.iter().map(|b| format!("{b:02x}")).collect();
        est_proto::digest::authorization(
            c,
            user,
            password.as_bytes(),
            op.method(),
            &self.path(op),
            1,
            &cnonce,
        )
        .map(Some)
        .map_err(|e| ClientError::Other(format!("Digest: {e}")))
    }

    /// Sends once; on 401 with configured credentials, once more answering the challenge:
    /// Basic or Digest as [`HttpAuth`] says (a Digest answer whose nonce the server calls
    /// stale is repeated once with the new nonce, RFC 7616 §3.3).
    async fn send_auth(
        &mut self,
        op: est_proto::Operation,
        body: Option<Vec<u8>>,
    ) -> Result<Resp, ClientError> {
        let r = self.send(op, body.clone(), None).await?;
        if self.client.cfg.basic.is_none() {
            return Ok(r);
        }
        if r.status != StatusCode::UNAUTHORIZED {
            return Ok(r);
        }
        let basic_offered = est_proto::digest::offers_scheme(
            r.www_authenticate.iter().map(String::as_str),
            "basic",
        );
        let digest =
            est_proto::digest::parse_challenges(r.www_authenticate.iter().map(String::as_str));
        let use_basic = match self.client.cfg.http_auth {
            HttpAuth::Basic => true,
            HttpAuth::Digest => false,
            HttpAuth::Auto => basic_offered || digest.is_empty(),
        };
        if use_basic {
            // Never Basic to a server that did not offer it.
            if !basic_offered {
                return Ok(r);
            }
            let value = self.basic_value();
            return self
                .send(op, body, value.as_deref().map(|v| v.as_str()))
                .await;
        }
        let Some(mut challenge) = digest.into_iter().next() else {
            return Ok(r);
        };
        let mut retried = false;
        loop {
            let value = self.digest_value(&challenge, op)?;
            let r = self
                .send(op, body.clone(), value.as_deref().map(|v| v.as_str()))
                .await?;
            if r.status != StatusCode::UNAUTHORIZED || retried {
                return Ok(r);
            }
            let again =
                est_proto::digest::parse_challenges(r.www_authenticate.iter().map(String::as_str));
            match again
                .into_iter()
                .find(|c| c.stale && c.algorithm == challenge.algorithm)
            {
                Some(c) => {
                    challenge = c;
                    retried = true;
                }
                None => return Ok(r),
            }
        }
    }

    fn error(r: &Resp) -> ClientError {
        let text = String::from_utf8_lossy(&r.body)
            .trim()
            .chars()
            .take(500)
            .collect::<String>();
        ClientError::Status {
            status: r.status.as_u16(),
            reason: if text.is_empty() {
                r.status.to_string()
            } else {
                text
            },
        }
    }

    fn certs_body(r: &Resp) -> Result<Vec<Certificate>, ClientError> {
        let mt = est_proto::MediaType::parse(&r.content_type).ok_or_else(|| {
            ClientError::Response(format!("bad Content-Type {:?}", r.content_type))
        })?;
        if mt.essence != "application/pkcs7-mime" {
            return Err(ClientError::Response(format!(
                "expected application/pkcs7-mime, got {:?}",
                r.content_type
            )));
        }
        let der = est_proto::decode_body(&r.body)
            .map_err(|e| ClientError::Response(format!("body is not base64: {e}")))?;
        est_proto::certs_only_decode(&der)
            .map_err(|e| ClientError::Response(format!("not a certs-only response: {e}")))
    }

    /// GET /cacerts (EST-62); anything but 200 is an error (EST-67).
    pub async fn cacerts(&mut self) -> Result<Vec<Certificate>, ClientError> {
        let r = self.send(est_proto::Operation::CaCerts, None, None).await?;
        if r.status != StatusCode::OK {
            return Err(Self::error(&r));
        }
        Self::certs_body(&r)
    }

    /// GET /csrattrs: `None` for 204/404 (EST-103).
    pub async fn csrattrs(&mut self) -> Result<Option<est_asn1::CsrAttrs>, ClientError> {
        let r = self.send_auth(est_proto::Operation::CsrAttrs, None).await?;
        match r.status {
            StatusCode::OK => {
                let der = est_proto::decode_body(&r.body)
                    .map_err(|e| ClientError::Response(e.to_string()))?;
                est_asn1::CsrAttrs::from_der(&der)
                    .map(Some)
                    .map_err(|e| ClientError::Response(format!("CsrAttrs: {e}")))
            }
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::error(&r)),
        }
    }

    async fn enroll_op(
        &mut self,
        op: est_proto::Operation,
        csr_der: &[u8],
    ) -> Result<EnrollOutcome, ClientError> {
        let r = self.send_auth(op, Some(csr_der.to_vec())).await?;
        match r.status {
            StatusCode::OK => {
                let certs = Self::certs_body(&r)?;
                if certs.is_empty() {
                    return Err(ClientError::Response(
                        "no certificate in the response".into(),
                    ));
                }
                Ok(EnrollOutcome::Issued(certs))
            }
            StatusCode::ACCEPTED => {
                let secs = r
                    .retry_after
                    .as_deref()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(60);
                tracing::info!(
                    retry_after = secs,
                    "request accepted for manual approval (202)"
                );
                Ok(EnrollOutcome::Pending {
                    retry_after: Duration::from_secs(secs),
                })
            }
            _ => Err(Self::error(&r)),
        }
    }

    /// POST a DER Full PKI Request (ContentInfo(SignedData(PKIData)), RFC 5272 §3.2) to
    /// /fullcmc (RFC 7030 §4.3) and return the HTTP status and the DER of the CMC response,
    /// unverified: the caller checks its signature, nonces and statuses. A CMC-level failure
    /// comes as a 4xx/5xx carrying a PKIResponse (EST-99) and is returned like a success; an
    /// error status with any other body (text/plain) is [`ClientError::Status`].
    ///
    /// Configured credentials go with the request itself (to the server this connection
    /// authenticated, EST-45): a server that also accepts CMC-level authentication (an
    /// identity proof, a signing certificate) answers a request without them with a CMC
    /// failure rather than a 401 to retry after, and would have spent its senderNonce. With
    /// [`HttpAuth::Basic`] they are sent as Basic at once; otherwise an empty /simpleenroll
    /// first learns the schemes offered (Basic only if offered, else Digest with its nonce).
    pub async fn full_cmc(&mut self, request_der: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
        let op = est_proto::Operation::FullCmc;
        let body = Some(request_der.to_vec());
        let r = match self.client.cfg.http_auth {
            // Asked for: Basic up front, in one round trip.
            HttpAuth::Basic => {
                let value = self.basic_value();
                self.send(op, body, value.as_deref().map(|v| v.as_str()))
                    .await?
            }
            // A label that accepts CMC-level authentication answers a credential-less request
            // itself (it would spend the senderNonce) rather than with a 401 to retry after:
            // what the label offers is learnt first from a probe that cannot spend anything,
            // an empty /simpleenroll, which is refused with 401 before any body is read.
            _ if self.client.cfg.basic.is_none() => self.send(op, body, None).await?,
            mode => {
                let probe = self
                    .send(est_proto::Operation::SimpleEnroll, None, None)
                    .await?;
                let offered = probe.www_authenticate.iter().map(String::as_str);
                let basic = est_proto::digest::offers_scheme(offered.clone(), "basic");
                let digest = est_proto::digest::parse_challenges(offered);
                let value = if probe.status != StatusCode::UNAUTHORIZED {
                    // Authenticated otherwise (a TLS client certificate): no password.
                    None
                } else if mode == HttpAuth::Auto && (basic || digest.is_empty()) {
                    if basic { self.basic_value() } else { None }
                } else {
                    match digest.first() {
                        Some(c) => self.digest_value(c, op)?,
                        None => None,
                    }
                };
                self.send(op, body, value.as_deref().map(|v| v.as_str()))
                    .await?
            }
        };
        let mt = est_proto::MediaType::parse(&r.content_type);
        let cms = mt
            .as_ref()
            .is_some_and(|m| m.essence == "application/pkcs7-mime");
        if !cms {
            if r.status.is_success() {
                return Err(ClientError::Response(format!(
                    "/fullcmc answered {} with Content-Type {:?}, not application/pkcs7-mime",
                    r.status.as_u16(),
                    r.content_type
                )));
            }
            return Err(Self::error(&r));
        }
        let der = est_proto::decode_body(&r.body)
            .map_err(|e| ClientError::Response(format!("body is not base64: {e}")))?;
        Ok((r.status.as_u16(), der))
    }

    /// An OCSP request (RFC 6960 Appendix A.1: DER, `application/ocsp-request`) POSTed to
    /// the server's `/ocsp`; the DER answer when it is `200 application/ocsp-response`.
    pub async fn ocsp(&mut self, request_der: &[u8]) -> Result<Vec<u8>, ClientError> {
        let req = Request::builder()
            .method(http::Method::POST)
            .uri(est_proto::OCSP_PATH)
            .header(
                header::HOST,
                format!("{}:{}", self.client.host, self.client.port),
            )
            .header(header::CONTENT_TYPE, est_proto::OCSP_REQUEST_MEDIA_TYPE)
            .body(Full::new(Bytes::from(request_der.to_vec())))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let r = self.exchange(req).await?;
        if r.status != StatusCode::OK || r.content_type != est_proto::OCSP_RESPONSE_MEDIA_TYPE {
            return Err(ClientError::Status {
                status: r.status.as_u16(),
                reason: format!(
                    "OCSP: {} {}",
                    r.content_type,
                    String::from_utf8_lossy(&r.body).trim()
                ),
            });
        }
        Ok(r.body.to_vec())
    }

    /// POSTs `der` (base64 on the wire) to `op` with the configured credentials and returns
    /// the answer as it came, for relays (RA mode): nothing in it is checked here.
    pub async fn post_raw(
        &mut self,
        op: est_proto::Operation,
        der: &[u8],
    ) -> Result<RawResponse, ClientError> {
        let r = self.send_auth(op, Some(der.to_vec())).await?;
        Ok(RawResponse {
            status: r.status.as_u16(),
            content_type: r.content_type,
            retry_after: r.retry_after,
            body: r.body,
        })
    }

    pub async fn simple_enroll(&mut self, csr_der: &[u8]) -> Result<EnrollOutcome, ClientError> {
        self.enroll_op(est_proto::Operation::SimpleEnroll, csr_der)
            .await
    }

    pub async fn simple_reenroll(&mut self, csr_der: &[u8]) -> Result<EnrollOutcome, ClientError> {
        self.enroll_op(est_proto::Operation::SimpleReenroll, csr_der)
            .await
    }
}

/// Most requests [`enroll_with_key`] sends for one enrollment while the server answers 202.
pub const MAX_ENROLL_ATTEMPTS: u32 = 100;

/// Enrolls (or re-enrolls) `key` for `subject`/`sans`: the CSR carries this connection's channel
/// binding (EST-51); on 202 it waits Retry-After, reconnects and rebuilds the CSR with the new
/// connection's binding and the same key (EST-17), until `max_wait` is used up.
pub async fn enroll_with_key(
    client: &EstClient,
    key: &PKey<Private>,
    subject: &str,
    sans: &[San],
    reenroll: bool,
    max_wait: Duration,
) -> Result<Vec<Certificate>, ClientError> {
    let started = std::time::Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let mut conn = client.connect().await?;
        let cp = conn.channel_binding().map(|b| b.challenge_password());
        let csr = build_csr(key, subject, sans, cp.as_deref())?;
        let out = if reenroll {
            conn.simple_reenroll(&csr).await?
        } else {
            conn.simple_enroll(&csr).await?
        };
        match out {
            EnrollOutcome::Issued(certs) => return Ok(certs),
            EnrollOutcome::Pending { retry_after } => {
                // EST-91: wait at least Retry-After (never less than a second, so a server
                // answering 0 is not hammered), for a bounded time and number of attempts.
                let retry_after = retry_after.max(Duration::from_secs(1));
                if started.elapsed() + retry_after > max_wait || attempts >= MAX_ENROLL_ATTEMPTS {
                    return Err(ClientError::Other(format!(
                        "still pending after {}s; try again later",
                        started.elapsed().as_secs()
                    )));
                }
                tokio::time::sleep(retry_after).await;
            }
        }
    }
}

/// What a certificate of a /cacerts answer is during a root key rollover (EST-66, EST-67).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaCertRole {
    /// The self-signed root with the latest notAfter: the current root (NewWithNew).
    NewWithNew,
    /// Another self-signed root: the previous one (OldWithOld).
    OldWithOld,
    /// A root's key certified by another root (OldWithNew or NewWithOld).
    RolloverLink,
    /// An intermediate CA (or anything else).
    Other,
}

/// The role of each certificate of a /cacerts answer (EST-67: the client handles the
/// rollover certificates; the newest self-signed one is NewWithNew, EST-66).
pub fn cacert_roles(certs: &[Certificate]) -> Vec<CaCertRole> {
    let self_signed =
        |c: &Certificate| c.tbs_certificate().subject() == c.tbs_certificate().issuer();
    let newest = certs
        .iter()
        .enumerate()
        .filter(|(_, c)| self_signed(c))
        .max_by_key(|(_, c)| c.tbs_certificate().validity().not_after.to_system_time())
        .map(|(i, _)| i);
    let root_names: Vec<_> = certs
        .iter()
        .filter(|c| self_signed(c))
        .map(|c| c.tbs_certificate().subject().clone())
        .collect();
    certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let tbs = c.tbs_certificate();
            if Some(i) == newest {
                CaCertRole::NewWithNew
            } else if self_signed(c) {
                CaCertRole::OldWithOld
            } else if root_names.contains(tbs.subject()) && root_names.contains(tbs.issuer()) {
                CaCertRole::RolloverLink
            } else {
                CaCertRole::Other
            }
        })
        .collect()
}

/// SHA-256 fingerprint as colon-separated uppercase hex (for out-of-band checks, EST-68).
pub fn fingerprint(cert: &X509) -> Result<String, ClientError> {
    let d = cert.digest(openssl::hash::MessageDigest::sha256())?;
    Ok(d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Converts between the two certificate representations.
pub fn to_x509(c: &Certificate) -> Result<X509, ClientError> {
    let der = der::Encode::to_der(c).map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(X509::from_der(&der)?)
}

pub fn from_x509(c: &X509) -> Result<Certificate, ClientError> {
    Certificate::from_der(&c.to_der()?).map_err(|e| ClientError::Other(e.to_string()))
}

/// Parses an RFC 4514 subject string, for callers that want to check it before enrolling.
pub fn parse_subject(s: &str) -> Result<x509_cert::name::Name, ClientError> {
    x509_cert::name::Name::from_str(s)
        .map_err(|e| ClientError::Config(format!("subject {s:?}: {e}")))
}
