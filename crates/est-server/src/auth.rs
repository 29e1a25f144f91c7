//! HTTP authentication of a request (EST-38..EST-43): Basic (RFC 7617) and Digest (RFC 7616),
//! both only ever inside TLS because this server speaks nothing else (EST-39, SEC-1). The
//! header parsers are pure; this module adds the lookups, the nonce state and the 401
//! challenges.
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use est_ca::Identity;
use http::{HeaderValue, StatusCode, header};
use zeroize::Zeroizing;

use crate::digest::{self, DigestAlgorithm, DigestCredentials, DigestError};
use der::Decode;
use x509_cert::Certificate;

use crate::handlers::{EstCa, Label, TOKEN_PREFIX};
use crate::nonce::{NonceCheck, NonceManager};
use crate::ratelimit::{FailureKey, FailureLimiter, FailurePolicy};
use crate::{ConnInfo, ServerError, TrustAnchorSet};

/// Server-wide HTTP authentication settings (the per-label choice of methods is
/// [`crate::AuthMethods`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The realm of Basic and Digest challenges. Digest HA1 values are computed for it, so
    /// users must be (re-)added after it changes.
    pub realm: String,
    /// How long a Digest nonce is accepted; after that the client gets `stale=true`.
    pub nonce_lifetime: Duration,
    /// Nonces tracked for replay protection (memory bound).
    pub max_tracked_nonces: usize,
    /// Digest algorithms offered, one challenge each, in this order (EST-42).
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Guessing protection: slow-down and lockout after failed authentications (SEC-3).
    pub failures: FailurePolicy,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            realm: DEFAULT_REALM.into(),
            nonce_lifetime: Duration::from_secs(300),
            max_tracked_nonces: 100_000,
            digest_algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            failures: FailurePolicy::default(),
        }
    }
}

/// The Digest HA1 values of a user for `realm`, every supported algorithm, ready to be sealed
/// into [`est_ca::UserRecord::digest_secrets`] when the user is created.
pub fn user_digest_secrets(
    realm: &str,
    user: &str,
    password: &[u8],
) -> Result<est_ca::DigestSecrets, DigestError> {
    let mut ha1 = Vec::new();
    for alg in DigestAlgorithm::ALL {
        ha1.push((alg.name().to_owned(), alg.ha1(user, realm, password)?));
    }
    Ok(est_ca::DigestSecrets {
        realm: realm.to_owned(),
        ha1,
    })
}

/// The realm used when none is configured.
pub const DEFAULT_REALM: &str = "estuary";

/// Runtime state of HTTP authentication, shared by all connections.
#[derive(Debug)]
pub(crate) struct HttpAuth {
    settings: AuthSettings,
    nonces: NonceManager,
    /// Digest HA1 used when the user is unknown, so the work done does not depend on it.
    dummy_ha1: Zeroizing<String>,
    limiter: FailureLimiter,
    /// Password verifications (argon2id, ~20 ms of a core each) running at once, at most half
    /// the cores (at least one): a guessing flood cannot take the cores from TLS handshakes,
    /// /cacerts and enrollments (issue 12).
    password_checks: tokio::sync::Semaphore,
}

/// How many password verifications may run at once on this machine.
fn password_check_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl HttpAuth {
    pub(crate) fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub(crate) fn new(settings: AuthSettings) -> Result<Self, String> {
        let nonces = NonceManager::new(
            settings.nonce_lifetime.as_secs().max(1),
            settings.max_tracked_nonces,
        )
        .map_err(|e| format!("nonce key: {e}"))?;
        if settings.realm.contains(['"', '\\', '\n', '\r']) {
            return Err(
                "the authentication realm may not contain quotes, backslashes or line breaks"
                    .into(),
            );
        }
        let dummy_ha1 = DigestAlgorithm::Sha256
            .ha1("", &settings.realm, b"")
            .map_err(|e| e.to_string())?;
        let limiter = FailureLimiter::new(settings.failures, 100_000);
        Ok(Self {
            settings,
            nonces,
            dummy_ha1,
            limiter,
            password_checks: tokio::sync::Semaphore::new(password_check_slots()),
        })
    }

    /// SEC-3: 429 with Retry-After while `user` or the client's address is locked out, before
    /// any credential is checked (so a locked-out guesser learns nothing).
    pub(crate) fn check_locked(&self, user: &str, peer: IpAddr) -> Result<(), ServerError> {
        let now = Instant::now();
        // The guessing source is locked, never the victim: a user name is locked only from
        // the address that failed with it, so 30 guesses from 30 addresses cannot lock its
        // owner out (issue 12); guesses spread over addresses are slowed by the user's delay.
        let remaining = self
            .limiter
            .locked(&FailureKey::addr(peer), now)
            .max(self.limiter.locked(&FailureKey::user_at(user, peer), now));
        match remaining {
            None => Ok(()),
            Some(r) => {
                let secs = r.as_secs() + u64::from(r.subsec_nanos() > 0);
                let mut e = ServerError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed authentication attempts; try again later",
                );
                if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                    e = e.with_header(header::RETRY_AFTER, v);
                }
                Err(e)
            }
        }
    }

    /// A Basic password check (argon2id for known and unknown users alike, SEC-17) under the
    /// global concurrency limit, on a thread that may block: the runtime's workers go on
    /// serving other connections meanwhile. The user is looked up first, outside the limit:
    /// the slots bound CPU, and a slow or unreachable store must not hold them (issue 12).
    async fn check_password(
        &self,
        ca: &dyn EstCa,
        user: &str,
        password: &[u8],
    ) -> Result<Option<Identity>, ServerError> {
        let record = ca.find_user(user).await?;
        let _slot = self
            .password_checks
            .acquire()
            .await
            .map_err(|_| ServerError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
        let found = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| ca.verify_user_password(user, record, password))
            }
            _ => ca.verify_user_password(user, record, password),
        };
        Ok(found?)
    }

    /// Counts a failed authentication against the user name and the address, and waits the
    /// growing delay before the caller answers (SEC-3). Logged without any secret (SEC-17).
    pub(crate) async fn failed(&self, user: &str, conn: &ConnInfo) {
        let peer = conn.peer.ip();
        let now = Instant::now();
        // The user's count across addresses only adds delay (see `check_locked`).
        let (d0, _) = self
            .limiter
            .record_failure(FailureKey::User(user.to_owned()), now);
        let (d1, l1) = self
            .limiter
            .record_failure(FailureKey::user_at(user, peer), now);
        let (d2, l2) = self.limiter.record_failure(FailureKey::addr(peer), now);
        // Server-wide: guessing spread over many names and addresses still slows every further
        // failure (a delay only, never a lockout of everyone).
        let (d3, _) = self.limiter.record_failure(FailureKey::Global, now);
        let d2 = d2.max(d3);
        if l1 || l2 {
            tracing::warn!(user = %user, %peer, "too many failed authentications: this source locked out for {:?}", self.settings.failures.lockout);
        }
        // Evictable while it waits (see `Slot::idle_while_delayed`).
        let _idle = conn.slot.as_ref().map(|s| s.idle_while_delayed());
        tokio::time::sleep(d0.max(d1).max(d2)).await;
    }

    /// The Digest algorithms `label` offers and accepts, in order.
    fn digest_algorithms<'a>(&'a self, label: &'a Label) -> &'a [DigestAlgorithm] {
        label
            .cfg
            .auth
            .digest_algorithms
            .as_deref()
            .unwrap_or(&self.settings.digest_algorithms)
    }

    /// 401 with one challenge per method the label accepts (EST-41): Basic first, then Digest,
    /// one challenge per algorithm, strongest first, sharing a fresh nonce. Basic comes first
    /// because RFC 7030-era clients (Bouncy Castle's ESTService among them) answer only the
    /// first challenge and a Basic-only client would fail on a Digest one; clients that can
    /// choose (curl --anyauth) pick Digest anyway.
    pub(crate) fn unauthorized(&self, label: &Label, reason: &str, stale: bool) -> ServerError {
        let mut e = ServerError::new(StatusCode::UNAUTHORIZED, reason.to_string());
        if label.cfg.auth.basic
            && let Ok(v) = HeaderValue::from_str(&format!(
                "Basic realm={}, charset=\"UTF-8\"",
                digest::quote(&self.settings.realm)
            ))
        {
            e = e.with_header(header::WWW_AUTHENTICATE, v);
        }
        if label.cfg.auth.digest {
            match self.nonces.issue(unix_now()) {
                Ok(nonce) => {
                    for alg in self.digest_algorithms(label) {
                        let c = digest::challenge(
                            &self.settings.realm,
                            &nonce,
                            self.nonces.opaque(),
                            *alg,
                            stale,
                        );
                        if let Ok(v) = HeaderValue::from_str(&c) {
                            e = e.with_header(header::WWW_AUTHENTICATE, v);
                        }
                    }
                }
                Err(err) => tracing::error!(error = %err, "cannot issue a Digest nonce"),
            }
        }
        e
    }

    /// Verifies `Authorization: Digest` for a request (`method`, request-target `target`).
    pub(crate) async fn digest(
        &self,
        ca: &dyn EstCa,
        label: &Label,
        conn: &ConnInfo,
        value: &[u8],
        method: &str,
        target: &http::Uri,
    ) -> Result<Identity, ServerError> {
        let fail = |why: &str| self.unauthorized(label, why, false);
        let creds = digest::parse_authorization(value).map_err(|e| match e {
            DigestError::UnsupportedAlgorithm => fail("unsupported Digest algorithm"),
            other => fail(&format!("malformed Digest credentials: {other}")),
        })?;
        self.check_locked(&creds.username, conn.peer.ip())?;
        // Only what this label offers: no downgrade to an algorithm it does not (EST-42).
        if !self.digest_algorithms(label).contains(&creds.algorithm) {
            return Err(fail("this Digest algorithm is not offered on this label"));
        }
        if creds.realm != self.settings.realm {
            return Err(fail("Digest realm does not match"));
        }
        if creds
            .opaque
            .as_deref()
            .is_some_and(|o| o != self.nonces.opaque())
        {
            return Err(fail("Digest opaque does not match"));
        }
        if !uri_matches(&creds.uri, target) {
            return Err(fail("Digest uri does not match the request"));
        }
        let now = unix_now();
        match self.nonces.check(&creds.nonce, creds.nc, now) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale => {
                return Err(self.unauthorized(label, "Digest nonce expired; retry", true));
            }
            NonceCheck::Invalid => {
                tracing::warn!(user = %creds.username, peer = %conn.peer, "Digest nonce invalid or replayed");
                self.failed(&creds.username, conn).await;
                return Err(fail("Digest nonce invalid or already used"));
            }
        }
        let found = ca
            .digest_ha1(
                &creds.username,
                &self.settings.realm,
                creds.algorithm.name(),
            )
            .await?;
        let ha1 = found
            .as_ref()
            .map_or(self.dummy_ha1.as_str(), |(h, _)| h.as_str());
        let ok = digest::response_matches(&creds, ha1, method).unwrap_or(false);
        match found {
            Some((_, id)) if ok => {
                // SEC-20: the count is consumed only by a verified request, atomically.
                if self.nonces.accept(&creds.nonce, creds.nc, now) {
                    Ok(id)
                } else {
                    Err(fail("Digest nonce invalid or already used"))
                }
            }
            _ => {
                log_failure(&creds, conn);
                self.failed(&creds.username, conn).await;
                Err(fail("invalid user name or password"))
            }
        }
    }
}

fn log_failure(creds: &DigestCredentials, conn: &ConnInfo) {
    // SEC-17: the user name and peer, never the response or anything derived from a secret.
    tracing::warn!(user = %creds.username, peer = %conn.peer, algorithm = %creds.algorithm, "Digest authentication failed");
}

/// The Digest `uri` must name the request-target (RFC 7616 §3.4.6): the same path and query,
/// whether sent in origin form or absolute form.
fn uri_matches(digest_uri: &str, target: &http::Uri) -> bool {
    let want = target.path_and_query().map_or("/", |p| p.as_str());
    if digest_uri == want {
        return true;
    }
    match digest_uri.parse::<http::Uri>() {
        Ok(u) if u.scheme().is_some() => u.path_and_query().is_some_and(|p| p.as_str() == want),
        _ => false,
    }
}

/// Who is asking (EST-38, EST-47): the TLS client certificate, HTTP Basic or Digest
/// credentials, or an enrollment token, as the label allows. Re-enrollment renews the
/// certificate the client authenticated with, when there is one (EST-84); initial enrollment
/// prefers explicit HTTP credentials when both are present.
pub(crate) async fn authenticate(
    ca: &dyn EstCa,
    auth: &HttpAuth,
    label: &Label,
    conn: &ConnInfo,
    req: &http::request::Parts,
    reenroll: bool,
) -> Result<Identity, ServerError> {
    let (cert_identity, cert_refusal) = certificate_identity(ca, label, conn, reenroll).await?;
    if reenroll && let Some(id) = cert_identity {
        return Ok(id);
    }
    if let Some(value) = req.headers.get(header::AUTHORIZATION) {
        let scheme = scheme_of(value.as_bytes());
        let accepted = (scheme == "basic" && label.cfg.auth.basic)
            || (scheme == "digest" && label.cfg.auth.digest);
        if accepted {
            return http_identity(ca, auth, label, conn, req, value.as_bytes(), &scheme).await;
        }
        // A scheme this label does not take: fall back to the certificate, else challenge.
        if cert_identity.is_none() {
            return Err(auth.unauthorized(
                label,
                "authentication scheme not accepted here; see WWW-Authenticate",
                false,
            ));
        }
    }
    if let Some(id) = cert_identity {
        return Ok(id);
    }
    if let Some(why) = cert_refusal {
        return Err(ServerError::new(StatusCode::FORBIDDEN, why));
    }
    // The plain challenge (no credentials at all) has an empty body: Bouncy Castle 1.72 fails
    // on a 401 whose body it has not read before answering the challenge.
    let why = conn.client_cert_error.clone().unwrap_or_default();
    Err(auth.unauthorized(label, &why, false))
}

/// The identity of a validated TLS client certificate, when the label accepts certificates;
/// or why a certificate from an implicit trust anchor does not count here (SEC-23).
async fn certificate_identity(
    ca: &dyn EstCa,
    label: &Label,
    conn: &ConnInfo,
    reenroll: bool,
) -> Result<(Option<Identity>, Option<&'static str>), ServerError> {
    let (Some(der), true) = (&conn.client_cert, label.cfg.auth.client_cert) else {
        return Ok((None, None));
    };
    let cert = Certificate::from_der(der)
        .map_err(|_| ServerError::bad_request("unreadable client certificate"))?;
    if conn.client_trust != Some(TrustAnchorSet::Implicit) {
        return Ok((Some(ca.certificate_identity(cert).await?), None));
    }
    Ok(match (label.cfg.implicit_enroll, reenroll) {
        (Some(mapping), false) => (
            Some(Identity::ImplicitCertificate {
                cert: Box::new(cert),
                mapping,
            }),
            None,
        ),
        (Some(_), true) => (
            None,
            Some(
                "a certificate from an implicit trust anchor allows initial enrollment only (SEC-23)",
            ),
        ),
        (None, _) => (
            None,
            Some("certificates from implicit trust anchors are not accepted on this label"),
        ),
    })
}

/// Basic (users and enrollment tokens) or Digest credentials, with guessing protection.
async fn http_identity(
    ca: &dyn EstCa,
    auth: &HttpAuth,
    label: &Label,
    conn: &ConnInfo,
    req: &http::request::Parts,
    value: &[u8],
    scheme: &str,
) -> Result<Identity, ServerError> {
    if scheme == "digest" {
        return auth
            .digest(ca, label, conn, value, req.method.as_str(), &req.uri)
            .await;
    }
    let unauthorized = |why: &str| auth.unauthorized(label, why, false);
    let (user, password) =
        parse_basic(value).ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    auth.check_locked(&user, conn.peer.ip())?;
    let (found, why) = if user.starts_with(TOKEN_PREFIX) {
        (
            ca.authenticate_token(&user, &password, &label.cfg.name)
                .await?,
            "invalid, expired or already used enrollment token for this label",
        )
    } else {
        (
            auth.check_password(ca, &user, &password).await?,
            "invalid user name or password",
        )
    };
    match found {
        Some(id) => Ok(id),
        None => {
            // SEC-17: who and from where, never the secret.
            tracing::warn!(user = %user, peer = %conn.peer, "Basic authentication failed");
            auth.failed(&user, conn).await;
            Err(unauthorized(why))
        }
    }
}

/// Credentials from an `Authorization: Basic` header (RFC 7617). The user name may be empty
/// (EST-43). Returns `None` for another scheme or a malformed value.
pub(crate) fn parse_basic(value: &[u8]) -> Option<(String, Zeroizing<Vec<u8>>)> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?,
    );
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_owned();
    let password = Zeroizing::new(decoded[colon + 1..].to_vec());
    Some((user, password))
}

/// The authentication scheme of an `Authorization` header value, lowercased.
pub(crate) fn scheme_of(value: &[u8]) -> String {
    let s = String::from_utf8_lossy(value);
    s.trim_start()
        .split([' ', '\t'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn basic() {
        let (u, p) = parse_basic(b"Basic dXNlcjpwYXNzOndvcmQ=").unwrap();
        assert_eq!(u, "user");
        assert_eq!(&p[..], b"pass:word");
        let (u, p) = parse_basic(b"basic OnNlY3JldA==").unwrap();
        assert_eq!(u, "");
        assert_eq!(&p[..], b"secret");
        assert!(parse_basic(b"Digest abc").is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic dXNlcg==").is_none());
    }

    #[test]
    fn digest_uri_forms() {
        let t: http::Uri = "/.well-known/est/simpleenroll".parse().unwrap();
        assert!(uri_matches("/.well-known/est/simpleenroll", &t));
        assert!(uri_matches(
            "https://est.example:8443/.well-known/est/simpleenroll",
            &t
        ));
        assert!(!uri_matches("/.well-known/est/other", &t));
        assert!(!uri_matches("", &t));
        let q: http::Uri = "/x?a=1".parse().unwrap();
        assert!(uri_matches("/x?a=1", &q));
        assert!(!uri_matches("/x", &q));
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme_of(b"Digest username=x"), "digest");
        assert_eq!(scheme_of(b"  BASIC abc"), "basic");
        assert_eq!(scheme_of(b""), "");
    }
}
