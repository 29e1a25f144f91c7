//! The admin listener (issue 11): its own TLS listener, off the EST port (default
//! 127.0.0.1:8444), serving
//! - `GET /healthz`: 200 `ok` while the process serves at all (liveness);
//! - `GET /readyz`: 200 `ready` when the store answers a cheap query and every CA domain's
//!   signing key signs, else 503 listing what failed (readiness);
//! - `GET /metrics`: the Prometheus text exposition of [`Metrics`];
//! - every other path: the web console ([`crate::console`]) when configured.
//!
//! It runs on the same accept loop as EST (connection table, timeouts, handshake metrics), with
//! a small connection table of its own.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use est_ca::{Authority, CaError, KeyType};
use http::{HeaderValue, Method, StatusCode, header};
use openssl::ssl::SslAcceptor;
use tokio::net::TcpListener;

use crate::conntable::ConnTable;
use crate::metrics::ListenerKind;
use crate::serve::{Service, spawn_listener};
use crate::{Limits, Metrics, RunningServer};

/// Store counts older than this are read again at the next scrape: a scrape every few seconds
/// costs the store one count every 15 s, also with a million certificates.
const SNAPSHOT_TTL: Duration = Duration::from_secs(15);

/// How long a readiness probe or a scrape waits for the store.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a signing-key check result is reused (an HSM round trip per probe is wasteful).
const KEY_CHECK_TTL: Duration = Duration::from_secs(10);

/// Open connections at most on the admin listener (a few scrapers and probes).
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// Counts from the store, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Requests held for manual approval.
    pub pending: u64,
    /// Recorded certificates not revoked (expired ones included).
    pub valid: u64,
    pub revoked: u64,
}

/// What the admin listener asks the CA: readiness and the gauges read at scrape. The embedded
/// [`Authority`] implements it.
#[async_trait]
pub trait HealthSource: Send + Sync + std::fmt::Debug + 'static {
    /// A cheap store round trip.
    async fn store_check(&self) -> Result<(), CaError>;
    /// Signs a test message with every CA domain's key: the domains whose key failed, with why.
    fn signing_key_failures(&self) -> Vec<(String, String)>;
    async fn store_counts(&self) -> Result<StoreCounts, CaError>;
    /// (key type, keys ready, pool target) for every pooled /serverkeygen key type.
    fn key_pool(&self) -> Vec<(KeyType, usize, usize)>;
}

#[async_trait]
impl HealthSource for Authority {
    async fn store_check(&self) -> Result<(), CaError> {
        // A primary-key lookup of a name no user can have: one indexed read.
        self.store().get_user("").await?;
        Ok(())
    }

    fn signing_key_failures(&self) -> Vec<(String, String)> {
        let mut failed: Vec<(String, String)> = self
            .domains()
            .filter_map(|d| {
                d.issuer
                    .key
                    .sign(b"estuary readiness probe")
                    .err()
                    .map(|e| (d.name.clone(), e.to_string()))
            })
            .collect();
        failed.sort();
        failed
    }

    async fn store_counts(&self) -> Result<StoreCounts, CaError> {
        let store = self.store();
        let total = store.count_certificates().await?;
        let mut revoked = 0u64;
        for d in self.domains() {
            revoked = revoked.saturating_add(store.revocation_state(&d.name).await?.0);
        }
        let pending = store.list_pending(Some("pending")).await?.len() as u64;
        Ok(StoreCounts {
            pending,
            valid: total.saturating_sub(revoked),
            revoked,
        })
    }

    fn key_pool(&self) -> Vec<(KeyType, usize, usize)> {
        let pool = self.key_pool();
        pool.targets()
            .into_iter()
            .map(|(kt, target)| (kt, pool.ready(kt), target))
            .collect()
    }
}

/// CA domains whose signing key failed its test signature, with why.
type KeyFailures = Vec<(String, String)>;

/// The admin listener's state: the metrics, the CA it reports on, the EST listener it watches.
#[derive(Debug)]
pub struct AdminState {
    metrics: Arc<Metrics>,
    health: Arc<dyn HealthSource>,
    est_table: Option<Arc<ConnTable>>,
    limits: Limits,
    snapshot: tokio::sync::Mutex<Option<(Instant, StoreCounts)>>,
    key_check: std::sync::Mutex<Option<(Instant, KeyFailures)>>,
    /// The web console, served on every other path; `None`: those are 404.
    console: Option<Arc<crate::console::Console>>,
}

impl AdminState {
    /// `limits` are the EST listener's: the admin listener keeps its timeouts, with a table of
    /// [`ADMIN_MAX_CONNECTIONS`].
    pub fn new(metrics: Arc<Metrics>, health: Arc<dyn HealthSource>, limits: &Limits) -> Self {
        Self {
            metrics,
            health,
            est_table: None,
            limits: Limits {
                max_connections: ADMIN_MAX_CONNECTIONS,
                max_connections_per_source: ADMIN_MAX_CONNECTIONS,
                ..limits.clone()
            },
            snapshot: tokio::sync::Mutex::new(None),
            key_check: std::sync::Mutex::new(None),
            console: None,
        }
    }

    /// Serves the web console on every path but the three above.
    pub fn with_console(mut self, console: crate::console::Console) -> Self {
        self.console = Some(Arc::new(console));
        self
    }

    /// Reports the open connections of `est` (the EST listener).
    pub fn watching(mut self, est: &RunningServer) -> Self {
        self.est_table = Some(est.table());
        self
    }

    fn signing_key_failures(&self) -> Vec<(String, String)> {
        let mut cached = self.key_check.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, failures)) = cached.as_ref()
            && at.elapsed() < KEY_CHECK_TTL
        {
            return failures.clone();
        }
        let failures = self.health.signing_key_failures();
        *cached = Some((Instant::now(), failures.clone()));
        failures
    }

    async fn readiness(&self) -> Result<(), Vec<String>> {
        let mut failed = Vec::new();
        match tokio::time::timeout(STORE_PROBE_TIMEOUT, self.health.store_check()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(format!("store: {e}")),
            Err(_) => failed.push(format!(
                "store: no answer within {} s",
                STORE_PROBE_TIMEOUT.as_secs()
            )),
        }
        for (domain, e) in self.signing_key_failures() {
            failed.push(format!("CA {domain:?} signing key: {e}"));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed)
        }
    }

    /// Sets the scrape-time gauges, then encodes every metric.
    async fn scrape(&self) -> String {
        let m = &self.metrics;
        {
            let mut snap = self.snapshot.lock().await;
            let stale = snap
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= SNAPSHOT_TTL);
            if stale {
                match tokio::time::timeout(STORE_PROBE_TIMEOUT, self.health.store_counts()).await {
                    Ok(Ok(c)) => *snap = Some((Instant::now(), c)),
                    Ok(Err(e)) => tracing::warn!(error = %e, "metrics: store counts"),
                    Err(_) => tracing::warn!("metrics: the store did not answer in time"),
                }
            }
            if let Some((at, c)) = snap.as_ref() {
                m.pending.set(i64::try_from(c.pending).unwrap_or(i64::MAX));
                m.set_certificates("valid", c.valid);
                m.set_certificates("revoked", c.revoked);
                m.store_snapshot_age
                    .set(i64::try_from(at.elapsed().as_secs()).unwrap_or(i64::MAX));
            }
        }
        for (kt, ready, target) in self.health.key_pool() {
            m.key_pool(kt, ready, target);
        }
        if let Some(t) = &self.est_table {
            m.connections(ListenerKind::Est, &t.stats());
        }
        m.encode()
    }
}

/// Serves the admin endpoints on `listener` until [`RunningServer::shutdown`]. The returned
/// server takes TLS reloads like the EST one ([`RunningServer::replace_acceptor`]).
pub fn serve_admin(
    listener: TcpListener,
    acceptor: SslAcceptor,
    state: AdminState,
) -> std::io::Result<RunningServer> {
    let state = Arc::new(state);
    let service = Service {
        limits: state.limits.clone(),
        metrics: state.metrics.clone(),
        kind: ListenerKind::Admin,
        classify: None,
        router: Router::new().fallback(dispatch).with_state(state),
    };
    spawn_listener(listener, acceptor, service)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn dispatch(State(st): State<Arc<AdminState>>, req: Request) -> Response {
    let path = req.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        if let Some(console) = &st.console {
            return crate::console::handle(console, req).await;
        }
        return text(
            StatusCode::NOT_FOUND,
            "not found: the admin listener serves /healthz, /readyz and /metrics\n".into(),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match st.readiness().await {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(failed) => {
                tracing::warn!(failed = ?failed, "readiness check failed");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready\n{}\n", failed.join("\n")),
                )
            }
        },
        _ => {
            let mut r = text(StatusCode::OK, st.scrape().await);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    /// A CA whose store and keys fail on demand.
    #[derive(Debug, Default)]
    struct Fake {
        store_down: AtomicBool,
        key_broken: AtomicBool,
    }

    #[async_trait]
    impl HealthSource for Fake {
        async fn store_check(&self) -> Result<(), CaError> {
            if self.store_down.load(Ordering::SeqCst) {
                Err(CaError::Store(est_ca::StoreError::Unavailable(
                    "connection refused".into(),
                )))
            } else {
                Ok(())
            }
        }
        fn signing_key_failures(&self) -> Vec<(String, String)> {
            if self.key_broken.load(Ordering::SeqCst) {
                vec![("default".into(), "token removed".into())]
            } else {
                Vec::new()
            }
        }
        async fn store_counts(&self) -> Result<StoreCounts, CaError> {
            Ok(StoreCounts {
                pending: 1,
                valid: 5,
                revoked: 2,
            })
        }
        fn key_pool(&self) -> Vec<(KeyType, usize, usize)> {
            vec![(KeyType::Rsa2048, 1, 4)]
        }
    }

    async fn call(
        st: &Arc<AdminState>,
        method: Method,
        path: &str,
    ) -> (StatusCode, String, String) {
        let router = Router::new().fallback(dispatch).with_state(st.clone());
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let r = router.oneshot(req).await.unwrap();
        let status = r.status();
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn endpoints_answer_and_readiness_follows_the_store_and_keys() {
        let fake = Arc::new(Fake::default());
        let st = Arc::new(AdminState::new(
            Arc::new(Metrics::new()),
            fake.clone(),
            &Limits::default(),
        ));
        assert_eq!(
            call(&st, Method::GET, "/healthz").await,
            (
                StatusCode::OK,
                "text/plain; charset=utf-8".into(),
                "ok\n".into()
            )
        );
        assert_eq!(call(&st, Method::GET, "/readyz").await.0, StatusCode::OK);
        fake.store_down.store(true, Ordering::SeqCst);
        let (status, _, body) = call(&st, Method::GET, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("store:"), "{body}");
        fake.store_down.store(false, Ordering::SeqCst);
        assert_eq!(call(&st, Method::GET, "/readyz").await.0, StatusCode::OK);
        // Key check results are cached: a fresh state sees the broken key at once.
        fake.key_broken.store(true, Ordering::SeqCst);
        let st2 = Arc::new(AdminState::new(
            Arc::new(Metrics::new()),
            fake.clone(),
            &Limits::default(),
        ));
        let (status, _, body) = call(&st2, Method::GET, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("CA \"default\" signing key: token removed"),
            "{body}"
        );

        let (status, ct, body) = call(&st, Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert!(body.contains("\nestuary_pending_requests 1\n"), "{body}");
        assert!(
            body.contains("estuary_certificates{status=\"revoked\"} 2\n"),
            "{body}"
        );
        assert!(
            body.contains("estuary_keypool_ready{key_type=\"rsa2048\"} 1\n"),
            "{body}"
        );

        assert_eq!(
            call(&st, Method::POST, "/metrics").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let (status, ct, _) = call(&st, Method::GET, "/.well-known/est/cacerts").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(ct.starts_with("text/plain"));
    }
}
