//! The HTTP door: an HTTP/1.1 server in the same process as IRC, sharing
//! its state, store and shutdown.
//!
//! One [`Router`] is built from modules, each adding its routes
//! (`health.rs`: `/healthz`; `metrics.rs`: `/metrics`); the web client,
//! file host and WebSocket IRC will be modules of their own merged in
//! [`router`]. Handlers are thin: they call the same server and store
//! APIs the IRC commands call.
//!
//! The connections are served from our own accept loop, by hyper's
//! HTTP/1 connection code with axum's router as the service, rather than
//! by `axum::serve`, so that:
//! - a TLS acceptor can wrap the accepted socket before it is served (the
//!   connection code takes any `AsyncRead + AsyncWrite` stream);
//! - hyper's header read timeout can be set (a slowloris trickling its
//!   headers is cut at `http.header_timeout_secs`, and so is an idle
//!   keep-alive connection);
//! - the connections are counted against `http.max_connections` and
//!   every one ends, gracefully, when the server stops.

mod acme;
pub mod allow;
mod health;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tower_http::timeout::{RequestBodyDeadlineLayer, TimeoutLayer};
use tracing::{debug, info, warn};

use crate::config::HttpConfig;
use crate::server::Server;

/// Most bytes of a request's head (request line and headers); more get
/// 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Connections waiting for `accept` in the kernel.
const LISTEN_BACKLOG: i32 = 1024;

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub server: Arc<Server>,
    health: Arc<health::Health>,
    metrics_allow: Arc<allow::AllowList>,
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    /// `http.listen`: every route; `/metrics` to `http.metrics_allow`.
    Main,
    /// `http.metrics_listen`: `/metrics` and `/healthz`, to anyone.
    MetricsOnly,
}

/// The router of one kind of listener.
///
/// A module adds its routes with `merge`. The routes merged inside
/// [`small_bodies`] take bodies of at most `http.max_body_bytes`, read
/// within the request timeout; a module whose routes take larger bodies
/// (file uploads) is merged beside them, with limits of its own. The
/// timeout of the whole request and the access log are around every route.
fn router(state: AppState, door: Door) -> Router {
    let config = state.server.config().http.clone();
    let access = match door {
        Door::Main => metrics::Access::AllowList,
        Door::MetricsOnly => metrics::Access::Anyone,
    };
    let main_only = match door {
        Door::Main => acme::routes(),
        Door::MetricsOnly => Router::new(),
    };
    let routes = small_bodies(
        Router::new()
            .merge(main_only)
            .merge(health::routes())
            .merge(metrics::routes(access)),
        &config,
    );
    around_every_route(routes.with_state(state), &config)
}

/// Bodies of at most `http.max_body_bytes`, all in within the request
/// timeout. A longer `Content-Length` is answered 413 before the body is
/// read, whether the route reads bodies or not; a chunked body is cut at
/// the limit by axum's extractors, with 413 too.
fn small_bodies<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    config: &HttpConfig,
) -> Router<S> {
    let max_body_bytes = config.max_body_bytes;
    routes
        .layer(RequestBodyDeadlineLayer::new(Duration::from_secs(
            config.request_timeout_secs,
        )))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            refuse_long_bodies(request, next, max_body_bytes)
        }))
}

async fn refuse_long_bodies(request: Request, next: Next, max_body_bytes: usize) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > max_body_bytes as u64) {
        debug!(?announced, max_body_bytes, "HTTP body too long");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("A body may hold at most {max_body_bytes} bytes\n"),
        )
            .into_response();
    }
    next.run(request).await
}

/// A request not answered within `http.request_timeout_secs` gets 408;
/// every request gets an access log line.
fn around_every_route(router: Router, config: &HttpConfig) -> Router {
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(middleware::from_fn(access_log))
}

/// One line per request through `tracing` (target `parlor::http`): the
/// client, method, path (without the query, which may carry tokens),
/// status and time taken.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Every connection the door serves puts its peer in the request.
    let peer = request.extensions().get::<Peer>().map(|peer| peer.0.ip());
    let method = request.method().clone();
    // Bounded: the head may be 16 KiB.
    let path: String = request.uri().path().chars().take(200).collect();
    let response = next.run(request).await;
    crate::metrics::http_request();
    info!(
        peer = peer.map(tracing::field::display),
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "http request"
    );
    response
}

/// The running HTTP door.
pub struct HttpDoor {
    addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    metrics_addrs: Vec<SocketAddr>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// What every connection of the door shares.
struct Shared {
    http1: http1::Builder,
    connections: Arc<Semaphore>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Shared {
    fn new(config: &HttpConfig) -> Arc<Shared> {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(config.header_timeout_secs))
            .max_header_size(MAX_HEAD_BYTES);
        Arc::new(Shared {
            http1,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        })
    }
}

/// Binds `http.listen` and `http.metrics_listen` and starts serving.
pub fn start(server: &Arc<Server>) -> anyhow::Result<HttpDoor> {
    let config = &server.config().http;
    let state = AppState {
        server: server.clone(),
        health: Arc::new(health::Health::default()),
        metrics_allow: Arc::new(allow::AllowList::new(&config.metrics_allow)),
    };
    let shared = Shared::new(config);
    let mut door = HttpDoor {
        addrs: Vec::new(),
        https_addrs: Vec::new(),
        metrics_addrs: Vec::new(),
        stop: shared.stop.clone(),
        tracker: shared.tracker.clone(),
    };
    let listeners = [
        (Door::Main, false, server.config().http_listen_addrs()),
        (Door::Main, true, server.config().https_listen_addrs()),
        (
            Door::MetricsOnly,
            false,
            server.config().metrics_listen_addrs(),
        ),
    ];
    for (kind, tls, addrs) in listeners {
        if addrs.is_empty() {
            continue;
        }
        let app = router(state.clone(), kind);
        for addr in addrs {
            let listener =
                bind(addr).with_context(|| format!("cannot listen on {addr} for HTTP"))?;
            let local = listener.local_addr()?;
            match kind {
                Door::Main if tls => {
                    info!(address = %local, "listening for HTTPS");
                    door.https_addrs.push(local);
                }
                Door::Main => {
                    info!(address = %local, "listening for HTTP");
                    door.addrs.push(local);
                }
                Door::MetricsOnly => {
                    info!(address = %local, "listening for HTTP (metrics only)");
                    door.metrics_addrs.push(local);
                }
            }
            let tls = tls.then(|| server.clone());
            shared
                .tracker
                .spawn(accept_loop(listener, app.clone(), shared.clone(), tls));
        }
    }
    Ok(door)
}

impl HttpDoor {
    /// The `http.listen` addresses bound (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The `http.tls_listen` addresses bound.
    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.https_addrs
    }

    /// The `http.metrics_listen` addresses bound.
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        &self.metrics_addrs
    }

    /// Stops accepting and asks every connection to end: a request under
    /// way is answered first, an idle keep-alive connection closes now.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits, at most `within`, for every connection to end.
    pub async fn wait(&self, within: Duration) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("some HTTP requests did not finish in time");
        }
    }
}

/// Binds one address. IPv6 sockets are IPv6-only, as for IRC, so that
/// `0.0.0.0:8080` and `[::]:8080` can both be listened on.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    // Replies are written whole: no reason to wait for a full segment.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// `tls`: the server whose certificate HTTPS connections are served with.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    tls: Option<Arc<Server>>,
) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually EMFILE; back off instead of spinning.
                warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            crate::metrics::http_refused();
            // A new socket's buffer is empty: the answer fits at once, or
            // the client goes without it.
            let _ = stream.try_write(BUSY);
            continue;
        };
        #[cfg(not(target_os = "linux"))]
        let _ = stream.set_nodelay(true);
        let Some(server) = &tls else {
            shared
                .tracker
                .spawn(serve(stream, peer, app.clone(), shared.clone(), permit));
            continue;
        };
        // The handshake on the connection's own task, so that a slow one
        // holds up nobody; it counts against the connection limit.
        let (server, app, inner) = (server.clone(), app.clone(), shared.clone());
        shared.tracker.spawn(async move {
            let Some(acceptor) = server.tls.load_full() else {
                return;
            };
            match acceptor.handshake_stream(stream).await {
                Ok(stream) => serve(stream, peer, app, inner, permit).await,
                Err(error) => {
                    crate::metrics::tls_handshake_failed();
                    info!(%peer, %error, "HTTPS handshake failed");
                }
            }
        });
    }
}

/// The answer to a connection past `http.max_connections`.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 21\r\n\
connection: close\r\n\
\r\n\
Too many connections\n";

/// Serves one connection until the client closes it, a timeout or an
/// error ends it, or the server stops (gracefully: the request under way
/// is answered first).
async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(request)
    });
    // With upgrades, for WebSocket later.
    let connection = shared
        .http1
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shared.stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // A header timeout, a client gone mid-request, a malformed request.
        debug!(%peer, %error, "HTTP connection ended");
    }
    drop(permit);
}

#[cfg(test)]
mod tests;
