//! The admin web console (issue 11 item 1), on the admin listener beside `/metrics`,
//! `/healthz` and `/readyz`: server-rendered HTML ([askama] templates, no script, no CDN).
//!
//! Authentication: an administrator account (argon2id password + TOTP, [`est_ca::admin`]), or
//! an administrator client certificate: one that validated to our own CA roots in the TLS
//! handshake (explicit trust anchors), whose subject matches `[admin] admin_subjects` and
//! which the store records as issued and not revoked. Either opens a session: a 256-bit random
//! id in a `__Host-` cookie (`Secure`, `HttpOnly`, `SameSite=Strict`, path `/`), kept in memory
//! (only its SHA-256), ending after [`SESSION_IDLE`] idle or [`SESSION_MAX`] in all.
//!
//! CSRF: every state-changing request is a POST whose form carries the session's CSRF token
//! (compared in constant time); a POST whose `Origin` (or `Sec-Fetch-Site`) names another site
//! is refused before that. Pages are `no-store`, framed by nobody (`frame-ancestors 'none'`),
//! and load nothing but our stylesheet (Content-Security-Policy).
//!
//! Every change made here is recorded in the audit trail as `admin:<name>` from the client
//! address, like the CLI's `cli:<user>`.
mod describe;
mod pages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use est_ca::{Authority, PasswordVerifier, SecretBox};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;

pub use describe::{
    Asked, certificate_sans, describe_request, general_name_text, key_description, san_matches,
};

use crate::ratelimit::{FailureKey, FailureLimiter, FailurePolicy};
use crate::{ConnInfo, TrustAnchorSet};

/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, active or not.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (a flood of logins cannot exhaust memory): the oldest go first.
const MAX_SESSIONS: usize = 1024;
/// Largest form body accepted (a pasted certificate fits many times over).
const MAX_FORM: usize = 64 * 1024;
/// The session cookie. `__Host-`: browsers accept it only with `Secure`, `Path=/` and no
/// `Domain`, so no other host or path can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-estuary-console";

/// What the console needs from the binary that wires it (the parts that depend on the
/// server's configuration).
#[async_trait]
pub trait ConsoleOps: Send + Sync + std::fmt::Debug + 'static {
    /// Adds an HTTP user as `estuary user add` does: argon2id password hash, Digest secrets
    /// sealed for the configured realm.
    async fn add_user(
        &self,
        name: &str,
        password: &[u8],
        allowed_names: Vec<String>,
    ) -> Result<(), String>;
    /// The EST labels configured (`""`: the label-less path), for the token form.
    fn labels(&self) -> Vec<String>;
}

/// Console settings (from `[admin]`).
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// RFC 4514 subject patterns ([`est_ca::any_dn_glob`]) of administrator client
    /// certificates; empty: certificates do not log in.
    pub admin_subjects: Vec<String>,
    /// The name authenticator apps show (`otpauth` issuer).
    pub issuer: String,
}

#[derive(Debug)]
struct Session {
    admin: String,
    /// `password+totp` or `certificate`.
    via: &'static str,
    csrf: String,
    created: Instant,
    last: Instant,
    flash: Option<Flash>,
}

/// A message for the next page shown in a session (after a redirect).
#[derive(Clone)]
pub(crate) enum Flash {
    Ok(String),
    Err(String),
    /// A secret shown once: (element id, label, value), zeroized when dropped.
    Secret(&'static str, String, zeroize::Zeroizing<String>),
}

impl std::fmt::Debug for Flash {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok(m) => f.debug_tuple("Ok").field(m).finish(),
            Self::Err(m) => f.debug_tuple("Err").field(m).finish(),
            Self::Secret(id, label, _) => f.debug_tuple("Secret").field(id).field(label).finish(),
        }
    }
}

/// Who is asking, for a page and the audit trail.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub name: String,
    pub via: &'static str,
    pub csrf: String,
    pub source: String,
    pub flash: Option<Flash>,
    session_key: [u8; 32],
}

impl Admin {
    pub fn actor(&self) -> String {
        format!("admin:{}", self.name)
    }
}

/// The console's state.
pub struct Console {
    pub(crate) authority: Arc<Authority>,
    pub(crate) sealer: Arc<SecretBox>,
    pub(crate) ops: Arc<dyn ConsoleOps>,
    pub(crate) cfg: ConsoleConfig,
    verifier: PasswordVerifier,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    limiter: FailureLimiter,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Fails without a server secret: TOTP secrets are sealed by it.
    pub fn new(
        authority: Arc<Authority>,
        ops: Arc<dyn ConsoleOps>,
        cfg: ConsoleConfig,
    ) -> Result<Self, String> {
        let sealer = authority.secret_box().cloned().ok_or(
            "the console needs the server secret (keys/server-secret) to open TOTP secrets",
        )?;
        Ok(Self {
            authority,
            sealer,
            ops,
            cfg,
            verifier: PasswordVerifier::new(Duration::ZERO).map_err(|e| e.to_string())?,
            sessions: Mutex::new(HashMap::new()),
            limiter: FailureLimiter::new(FailurePolicy::default(), 10_000),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; the cookie value to set.
    fn open_session(&self, admin: &str, via: &'static str) -> Result<String, String> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let now = Instant::now();
        let mut s = self.sessions();
        s.retain(|_, v| live(v, now));
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s.iter().min_by_key(|(_, v)| v.last).map(|(k, _)| *k)
        {
            s.remove(&oldest);
        }
        s.insert(
            session_key(&id),
            Session {
                admin: admin.to_owned(),
                via,
                csrf,
                created: now,
                last: now,
                flash: None,
            },
        );
        Ok(id)
    }

    /// The session named by the request's cookie, refreshed; its flash message is taken.
    fn session(&self, headers: &HeaderMap, source: &str) -> Option<Admin> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let key = session_key(id);
        let now = Instant::now();
        let mut s = self.sessions();
        let live_now = s.get(&key).is_some_and(|v| live(v, now));
        if !live_now {
            s.remove(&key);
            return None;
        }
        let v = s.get_mut(&key)?;
        v.last = now;
        Some(Admin {
            name: v.admin.clone(),
            via: v.via,
            csrf: v.csrf.clone(),
            source: source.to_owned(),
            flash: v.flash.take(),
            session_key: key,
        })
    }

    pub(crate) fn set_flash(&self, admin: &Admin, flash: Flash) {
        if let Some(v) = self.sessions().get_mut(&admin.session_key) {
            v.flash = Some(flash);
        }
    }

    fn close_session(&self, admin: &Admin) {
        self.sessions().remove(&admin.session_key);
    }

    /// The administrator a client certificate makes, if any.
    async fn certificate_admin(&self, conn: &ConnInfo) -> Option<String> {
        if self.cfg.admin_subjects.is_empty() || conn.client_trust != Some(TrustAnchorSet::Explicit)
        {
            return None;
        }
        let der = conn.client_cert.as_deref()?;
        let cert = <x509_cert::Certificate as der::Decode>::from_der(der).ok()?;
        let subject = cert.tbs_certificate().subject().to_string();
        if !est_ca::any_dn_glob(&self.cfg.admin_subjects, &subject) {
            return None;
        }
        // Issued by us and not revoked: a certificate the store does not know is nobody.
        let serial = est_ca::serial_hex(cert.tbs_certificate().serial_number());
        match self.authority.store().certificate_by_serial(&serial).await {
            Ok(Some(r)) if r.status == est_ca::CertStatus::Valid && r.der == der => {
                Some(format!("{subject} (certificate {serial})"))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "console: checking an administrator certificate");
                None
            }
        }
    }

    /// Whether a session's administrator still is one (see [`handle`]).
    async fn still_valid(&self, a: &Admin, conn: Option<&ConnInfo>) -> bool {
        if a.via == "certificate" {
            return match conn {
                Some(c) => self.certificate_admin(c).await.as_deref() == Some(a.name.as_str()),
                None => false,
            };
        }
        match self.authority.store().get_admin(&a.name).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "console: checking an administrator");
                false
            }
        }
    }

    pub(crate) async fn audit(&self, admin: &Admin, action: &str, target: &str, details: String) {
        self.audit_on(admin, action, target, "", details).await;
    }

    /// [`Self::audit`] of an action on something of an EST label (a held request).
    pub(crate) async fn audit_on(
        &self,
        admin: &Admin,
        action: &str,
        target: &str,
        label: &str,
        details: String,
    ) {
        let event =
            est_ca::AuditEvent::new(unix_now(), admin.actor(), admin.source.clone(), action)
                .target(target)
                .label(label)
                .details(details);
        self.authority.audit(&event).await;
    }
}

/// Constant-time equality of two strings (lengths are not secret).
fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) < SESSION_IDLE && now.duration_since(s.created) < SESSION_MAX
}

fn session_key(id: &str) -> [u8; 32] {
    openssl::sha::sha256(id.as_bytes())
}

pub(crate) fn random_hex(n: usize) -> Result<String, String> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).map_err(|e| e.to_string())?;
    Ok(hex::encode(b))
}

pub(crate) use crate::handlers::unix_now;

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The headers every console answer carries.
fn secure_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it Chromium sends `Origin: null` on same-origin form POSTs
    // (the check in `cross_site` copes with that too).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(&mut r);
    r
}

pub(crate) fn plain(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure_headers(&mut r);
    r
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(&mut r);
    r
}

fn with_cookie(mut r: Response, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn session_cookie(id: &str) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_MAX.as_secs()
    )
}

fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A POST from another site? `Sec-Fetch-Site`, which every current browser sends, decides
/// when present: `same-origin` (or `none`, typed by the user) passes. Without it (older
/// browsers, scripts), an `Origin` must be `https://<Host>`; none at all passes (curl), the
/// CSRF token still has to match. (A same-origin POST may carry `Origin: null`, e.g. under a
/// strict Referrer-Policy: `Sec-Fetch-Site` tells those apart.)
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(o), Some(h)) => o != format!("https://{h}"),
        _ => true,
    }
}

/// A decoded `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map_or("", |v| v.as_str())
    }
    fn parse(bytes: &[u8]) -> Self {
        Self(form_urlencoded::parse(bytes).into_owned().collect())
    }
}

/// The query string's parameters.
pub(crate) fn query(req_uri: &http::Uri) -> Form {
    Form::parse(req_uri.query().unwrap_or("").as_bytes())
}

async fn read_form(body: Body) -> Result<Form, Response> {
    let limited = http_body_util::Limited::new(body, MAX_FORM);
    match limited.collect().await {
        Ok(b) => Ok(Form::parse(&b.to_bytes())),
        Err(_) => Err(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("form body over {MAX_FORM} bytes or unreadable\n"),
        )),
    }
}

/// Serves a console request (any path the admin listener does not serve itself).
pub(crate) async fn handle(console: &Console, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<Arc<ConnInfo>>().cloned();
    let peer = conn.as_ref().map(|c| c.peer);
    let source = peer.map(|p| p.to_string()).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return r;
    }
    if path == "/static/console.css" {
        let mut r = (StatusCode::OK, pages::CSS).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        );
        secure_headers(&mut r);
        return r;
    }
    let form = if method == Method::POST {
        if cross_site(&parts.headers) {
            return plain(
                StatusCode::FORBIDDEN,
                "cross-site request refused (Origin / Sec-Fetch-Site)\n",
            );
        }
        match read_form(body).await {
            Ok(f) => f,
            Err(r) => return r,
        }
    } else {
        Form::default()
    };
    if path == "/login" {
        return if method == Method::POST {
            login(console, &form, peer, &source).await
        } else {
            pages::login_page(None, StatusCode::OK)
        };
    }
    let mut admin = console.session(&parts.headers, &source);
    let mut new_cookie = None;
    if admin.is_none()
        && let Some(c) = &conn
        && let Some(name) = console.certificate_admin(c).await
    {
        match console.open_session(&name, "certificate") {
            Ok(id) => {
                let cookie = session_cookie(&id);
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}")) {
                    h.insert(header::COOKIE, v);
                }
                admin = console.session(&h, &source);
                new_cookie = Some(cookie);
                tracing::info!(admin = %name, %source, "console: administrator certificate accepted");
            }
            Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
    // A session stays as good as what opened it: the administrator account must still
    // exist, the certificate must still be presented, recorded and not revoked.
    if let Some(a) = &admin
        && !console.still_valid(a, conn.as_deref()).await
    {
        console.close_session(a);
        admin = None;
    }
    let Some(admin) = admin else {
        return if method == Method::GET || method == Method::HEAD {
            redirect("/login")
        } else {
            plain(StatusCode::FORBIDDEN, "not logged in\n")
        };
    };
    if method == Method::POST && !ct_eq(form.get("csrf"), &admin.csrf) {
        return plain(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again\n",
        );
    }
    if method == Method::POST && path == "/logout" {
        console.close_session(&admin);
        console
            .audit(
                &admin,
                est_ca::audit_action::ADMIN_LOGOUT,
                &admin.name,
                String::new(),
            )
            .await;
        return with_cookie(redirect("/login"), &cleared_cookie());
    }
    let r = pages::route(console, &admin, &method, &path, &parts.uri, &form).await;
    match new_cookie {
        Some(c) => with_cookie(r, &c),
        None => r,
    }
}

/// The login form's POST: password and TOTP code, with guessing protection per address and
/// per name.
async fn login(console: &Console, form: &Form, peer: Option<SocketAddr>, source: &str) -> Response {
    // Administrator names are at most 64 characters: a longer one is nobody, and the
    // guessing counters never hold more.
    let name: String = form.get("username").trim().chars().take(65).collect();
    let ip = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    let now = Instant::now();
    let keys = [FailureKey::addr(ip), FailureKey::user_at(&name, ip)];
    if let Some(wait) = keys.iter().find_map(|k| console.limiter.locked(k, now)) {
        return pages::login_page(
            Some(format!(
                "too many failed logins: try again in {} s",
                wait.as_secs().max(1)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let result = est_ca::admin::check_login(
        console.authority.store().as_ref(),
        &console.sealer,
        &console.verifier,
        &name,
        form.get("password").as_bytes(),
        form.get("totp"),
        unix_now(),
    )
    .await;
    let event = |action: &str, details: String| {
        est_ca::AuditEvent::new(unix_now(), format!("admin:{name}"), source, action)
            .target(name.clone())
            .details(details)
    };
    match result {
        Ok(Ok(a)) => match console.open_session(&a.name, "password+totp") {
            Ok(id) => {
                tracing::info!(admin = %a.name, %source, "console: login");
                console
                    .authority
                    .audit(&event(
                        est_ca::audit_action::ADMIN_LOGIN,
                        "password+totp".into(),
                    ))
                    .await;
                with_cookie(redirect("/"), &session_cookie(&id))
            }
            Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        Ok(Err(why)) => {
            // Each failure slows the next guess down (up to the policy's maximum delay).
            let mut delay = Duration::ZERO;
            for k in keys {
                delay = delay.max(console.limiter.record_failure(k, now).0);
            }
            tokio::time::sleep(delay).await;
            tracing::warn!(admin = %name, %source, reason = ?why, "console: login refused");
            console
                .authority
                .audit(&event(
                    est_ca::audit_action::ADMIN_LOGIN_FAILED,
                    format!("{why:?}"),
                ))
                .await;
            pages::login_page(
                Some("wrong name, password or code".into()),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "console: login check failed");
            pages::login_page(
                Some(format!("the login could not be checked: {e}")),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[
            ("cookie", "a=1; __Host-estuary-console-x=no"),
            ("cookie", " __Host-estuary-console=abc ; b=2"),
        ]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(cookie(&HeaderMap::new(), SESSION_COOKIE), None);
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let host = ("host", "127.0.0.1:8444");
        assert!(!cross_site(&headers(&[host])), "no Origin: curl, scripts");
        assert!(!cross_site(&headers(&[
            host,
            ("origin", "https://127.0.0.1:8444")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8444")
        ])));
        assert!(cross_site(&headers(&[host, ("origin", "null")])));
        assert!(cross_site(&headers(&[("origin", "https://x")])), "no Host");
        assert!(!cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!cross_site(&headers(&[host, ("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        // What Chromium sends for a same-origin form POST under Referrer-Policy: no-referrer.
        assert!(!cross_site(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        // Sec-Fetch-Site decides over a matching Origin.
        assert!(cross_site(&headers(&[
            host,
            ("origin", "https://127.0.0.1:8444"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn constant_time_comparison_handles_any_lengths() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"), "different lengths never panic");
        assert!(!ct_eq("", "x"));
    }

    #[test]
    fn forms_decode_and_missing_fields_are_empty() {
        let f = Form::parse(b"csrf=ab&reason=key+compromise%21&x=1&x=2");
        assert_eq!(f.get("csrf"), "ab");
        assert_eq!(f.get("reason"), "key compromise!");
        assert_eq!(f.get("missing"), "");
        let f = Form::parse(b"\xff\xfe=%zz&&=");
        assert_eq!(f.get("csrf"), "");
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        let now = Instant::now();
        let s = |created: Duration, last: Duration| Session {
            admin: "a".into(),
            via: "password+totp",
            csrf: String::new(),
            created: now.checked_sub(created).unwrap_or(now),
            last: now.checked_sub(last).unwrap_or(now),
            flash: None,
        };
        assert!(live(&s(Duration::from_secs(60), Duration::ZERO), now));
        assert!(!live(&s(Duration::from_secs(3600), SESSION_IDLE), now));
        assert!(!live(&s(SESSION_MAX, Duration::ZERO), now));
    }
}
