//! Our own accept loop: TCP accept, admission to the connection table → TLS handshake under a
//! timeout → per-connection [`ConnInfo`] → hyper HTTP/1.1 with header-read and idle timeouts
//! → axum. The loop never waits for a free slot: a full table makes room by closing its
//! longest-idle connection ([`crate::conntable`]), so a flood of idle or slow connections
//! cannot queue a fresh client behind it.
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_openssl::SslStream;
use tower::ServiceExt;

use crate::conntable::{BusyGuard, ConnStats, ConnTable, Slot, TablePolicy};
use crate::handlers::dispatch;
use crate::metrics::{HandshakeFailure, ListenerKind, Metrics, RequestClass};
use crate::{ConnInfo, EstState, Limits};

/// How often the reaper closes connections past the timeouts in force.
const REAP_EVERY: Duration = Duration::from_millis(250);

/// At most one flood warning in the log per this period.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The TLS configuration new connections handshake with; replaced whole on a reload, while
/// open connections keep the one they started with.
type SharedAcceptor = Arc<std::sync::RwLock<Arc<SslAcceptor>>>;

fn current(acceptor: &SharedAcceptor) -> Arc<SslAcceptor> {
    // A panic while holding the lock cannot leave the Arc half-written: use it.
    match acceptor.read() {
        Ok(a) => a.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// The EST state requests are served with; replaced whole by a reload, while requests in
/// flight finish with the one they started with.
#[derive(Debug)]
pub(crate) struct StateCell(std::sync::RwLock<Arc<EstState>>);

impl StateCell {
    pub(crate) fn current(&self) -> Arc<EstState> {
        match self.0.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, new: Arc<EstState>) {
        match self.0.write() {
            Ok(mut s) => *s = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// A server running on a background task.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    table: Arc<ConnTable>,
    acceptor: SharedAcceptor,
    /// The EST listener's state (`None` for the admin listener).
    state: Option<Arc<StateCell>>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// New connections handshake with `acceptor` (a reloaded certificate, key or client trust
    /// anchors); connections already open keep theirs, so nothing is dropped.
    pub fn replace_acceptor(&self, acceptor: SslAcceptor) {
        let new = Arc::new(acceptor);
        match self.acceptor.write() {
            Ok(mut a) => *a = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Later requests are served with `state` (a reloaded configuration: labels, their
    /// policies and upstreams, HTTP authentication settings, body and request limits);
    /// requests in flight finish with the state they started with, and no connection is
    /// dropped. Digest nonces and guessing counters carry over when the authentication
    /// settings are unchanged. Connection limits and the listen address stay as they were
    /// started. A no-op on the admin listener.
    pub fn replace_state(&self, state: EstState) {
        if let Some(cell) = &self.state {
            let old = cell.current();
            cell.replace(Arc::new(state.keeping_auth_of(&old)));
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// The open connections by phase, and what the flood defences did so far.
    pub fn connection_stats(&self) -> ConnStats {
        self.table.stats()
    }

    /// The connection table, for the admin listener's gauges.
    pub(crate) fn table(&self) -> Arc<ConnTable> {
        self.table.clone()
    }
}

/// Sorts a request into its bounded metric labels (EST listener only).
pub(crate) type Classifier = Arc<dyn Fn(&str) -> RequestClass + Send + Sync>;

/// What one listener serves, and what it reports to the metrics.
#[derive(Clone)]
pub(crate) struct Service {
    pub router: Router,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub kind: ListenerKind,
    /// Counts requests by operation and label; `None`: requests are not counted.
    pub classify: Option<Classifier>,
}

/// Binds `listen` and serves until [`RunningServer::shutdown`].
pub async fn serve(
    listen: SocketAddr,
    acceptor: SslAcceptor,
    state: Arc<EstState>,
) -> std::io::Result<RunningServer> {
    serve_listener(TcpListener::bind(listen).await?, acceptor, state)
}

/// Serves on a listener the caller bound, for callers that need the bound address (port 0)
/// before the state exists: the CRL distribution point URL in issued certificates is derived
/// from it.
pub fn serve_listener(
    listener: TcpListener,
    acceptor: SslAcceptor,
    state: Arc<EstState>,
) -> std::io::Result<RunningServer> {
    let cell = Arc::new(StateCell(std::sync::RwLock::new(state.clone())));
    let classify_state = cell.clone();
    let service = Service {
        limits: state.limits().clone(),
        metrics: state.metrics().clone(),
        kind: ListenerKind::Est,
        classify: Some(Arc::new(move |path: &str| {
            crate::metrics::classify(path, |l| classify_state.current().has_label(l))
        })),
        router: Router::new().fallback(dispatch).with_state(cell.clone()),
    };
    let mut server = spawn_listener(listener, acceptor, service)?;
    server.state = Some(cell);
    Ok(server)
}

/// Serves `service` on `listener` with its own connection table.
pub(crate) fn spawn_listener(
    listener: TcpListener,
    acceptor: SslAcceptor,
    service: Service,
) -> std::io::Result<RunningServer> {
    let local_addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let table = ConnTable::new(TablePolicy::from_limits(&service.limits));
    let acceptor: SharedAcceptor = Arc::new(std::sync::RwLock::new(Arc::new(acceptor)));
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor.clone(),
        service,
        table.clone(),
        rx,
    ));
    Ok(RunningServer {
        local_addr,
        table,
        acceptor,
        state: None,
        shutdown: tx,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: SharedAcceptor,
    service: Service,
    table: Arc<ConnTable>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = service.limits.clone();
    let reaper = tokio::spawn(reap(table.clone()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    accept_failed(&e, &table).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let (slot, closed) = match table.admit(peer.ip(), Instant::now()) {
            Ok(x) => x,
            Err(why) => {
                tracing::debug!(%peer, reason = %why, "connection refused");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = current(&acceptor);
        let service = service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            tokio::select! {
                r = connection(tcp, peer, slot, acceptor, service, watcher) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                // Evicted or reaped: dropping the connection's future closes the socket.
                _ = closed => tracing::debug!(%peer, "idle or slow connection closed"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
            table.close_all();
        }
    }
    reaper.abort();
}

/// Out of file descriptors, make room by closing the longest-idle connection; a client that
/// reset before we accepted is the client's business; anything else (ENOBUFS, ENOMEM) backs
/// off briefly, so that a persistent error cannot spin the accept loop. Warnings are logged
/// at most once a second.
async fn accept_failed(e: &std::io::Error, table: &ConnTable) {
    static LAST_WARNING: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let warn_now = || {
        let now = Instant::now();
        let mut last = LAST_WARNING.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            *last = Some(now);
        }
        due
    };
    match e.raw_os_error() {
        // EMFILE and ENFILE (the same numbers on Linux, the BSDs and macOS).
        Some(23 | 24) => {
            let evicted = table.evict_one(Instant::now());
            if warn_now() {
                tracing::warn!(error = %e, evicted, "accept failed: out of file descriptors");
            }
            let pause = if evicted { 10 } else { 100 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        // ECONNABORTED, ECONNRESET, EPROTO (Linux numbers): the client went away first.
        Some(103 | 104 | 71) => tracing::debug!(error = %e, "accept failed"),
        _ => {
            if warn_now() {
                tracing::warn!(error = %e, "accept failed");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Closes connections past the timeouts in force, and warns (at most every
/// [`REPORT_EVERY`]) while the table is under pressure.
async fn reap(table: Arc<ConnTable>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = table.stats();
    let mut last_report = Instant::now();
    loop {
        tick.tick().await;
        table.reap(Instant::now());
        if last_report.elapsed() < REPORT_EVERY {
            continue;
        }
        let now = table.stats();
        let evicted = now.evicted - reported.evicted;
        let per_source = now.refused_per_source - reported.refused_per_source;
        let all_busy = now.refused_all_busy - reported.refused_all_busy;
        if evicted + per_source + all_busy > 0 {
            let (handshake, idle) = table.policy().effective_timeouts(now.open);
            tracing::warn!(
                open = now.open,
                max = table.policy().capacity,
                evicted,
                refused_per_source = per_source,
                refused_all_busy = all_busy,
                reaped = now.reaped - reported.reaped,
                ?handshake,
                ?idle,
                "connection flood: idle and slow connections closed to make room"
            );
        }
        reported = now;
        last_report = Instant::now();
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    acceptor: Arc<SslAcceptor>,
    service: Service,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Service {
        router,
        limits,
        metrics,
        kind,
        classify,
    } = service;
    let ssl = Ssl::new(acceptor.context())?;
    let mut stream = SslStream::new(ssl, tcp)?;
    match tokio::time::timeout(limits.handshake_timeout, Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            metrics.handshake_failed(kind, HandshakeFailure::of(&e));
            return Err(format!("TLS handshake: {e}").into());
        }
        Err(_) => {
            metrics.handshake_failed(kind, HandshakeFailure::Timeout);
            return Err("TLS handshake timed out".into());
        }
    }
    slot.handshake_done();
    let slot = Arc::new(slot);
    let mut info = ConnInfo::from_ssl(stream.ssl(), peer);
    info.slot = Some(slot.clone());
    let info = Arc::new(info);
    let request_timeout = limits.request_timeout;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        // Busy from here until hyper has taken the whole response body: the reaper and
        // evictions leave the connection alone meanwhile.
        let busy = slot.request();
        req.extensions_mut().insert(info.clone());
        let router = router.clone();
        let observed = classify
            .as_ref()
            .map(|c| (c(req.uri().path()), metrics.clone(), Instant::now()));
        async move {
            let req = req.map(axum::body::Body::new);
            let resp = match tokio::time::timeout(request_timeout, router.oneshot(req)).await {
                Ok(Ok(r)) => r,
                Ok(Err(never)) => match never {},
                Err(_) => crate::ServerError::new(
                    http::StatusCode::REQUEST_TIMEOUT,
                    "request took too long",
                )
                .into_response_ext(),
            };
            if let Some((class, metrics, started)) = observed {
                metrics.request(&class, resp.status().as_u16(), started.elapsed());
            }
            Ok::<_, std::convert::Infallible>(resp.map(|body| Sending { body, _busy: busy }))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        // Header names in canonical case (`Content-Type`, `Retry-After`; `WWW-Authenticate`
        // through `CanonicalHeaders`): RFC 9110 makes them case-insensitive, but widely
        // deployed EST clients (libest's estclient and its descendants) compare them byte for
        // byte.
        .title_case_headers(true)
        .max_buf_size(64 * 1024);
    // header_read_timeout also bounds how long an idle keep-alive connection may wait for its
    // next request head, so idle and slow clients are both cut off; the reaper cuts them
    // sooner when the connection table fills.
    let conn = http.serve_connection(
        TokioIo::new(crate::header_case::CanonicalHeaders::new(stream)),
        svc,
    );
    watcher.watch(conn).await.map_err(|e| e.into())
}

impl crate::ServerError {
    fn into_response_ext(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// A response body that keeps its connection marked busy until hyper has taken all of it.
struct Sending<B> {
    body: B,
    _busy: BusyGuard,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Sending<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
