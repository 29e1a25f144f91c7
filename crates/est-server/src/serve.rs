//! Our own accept loop: TCP accept under a connection cap → TLS handshake under a timeout →
//! per-connection [`ConnInfo`] → hyper HTTP/1.1 with header-read and idle timeouts → axum.
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_openssl::SslStream;
use tower::ServiceExt;

use crate::handlers::dispatch;
use crate::{ConnInfo, EstState, Limits};

/// A server running on a background task.
#[derive(Debug)]
pub struct RunningServer {
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish (up to the grace period), then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
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
    let local_addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let limits = state.limits().clone();
    let router = Router::new().fallback(dispatch).with_state(state);
    let task = tokio::spawn(accept_loop(
        listener,
        Arc::new(acceptor),
        router,
        limits,
        rx,
    ));
    Ok(RunningServer {
        local_addr,
        shutdown: tx,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        // Wait for a free connection slot before accepting: excess clients queue in the
        // kernel's backlog instead of consuming memory here.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let limits = limits.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection(tcp, peer, acceptor, router, limits, watcher).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Arc<SslAcceptor>,
    router: Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ssl = Ssl::new(acceptor.context())?;
    let mut stream = SslStream::new(ssl, tcp)?;
    match tokio::time::timeout(limits.handshake_timeout, Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("TLS handshake: {e}").into()),
        Err(_) => return Err("TLS handshake timed out".into()),
    }
    let info = Arc::new(ConnInfo::from_ssl(stream.ssl(), peer));
    let request_timeout = limits.request_timeout;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(info.clone());
        let router = router.clone();
        async move {
            let req = req.map(axum::body::Body::new);
            match tokio::time::timeout(request_timeout, router.oneshot(req)).await {
                Ok(r) => r,
                Err(_) => Ok(crate::ServerError::new(
                    http::StatusCode::REQUEST_TIMEOUT,
                    "request took too long",
                )
                .into_response_ext()),
            }
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
    // next request head, so idle and slow clients are both cut off.
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
