//! Listeners: binding the configured addresses, accepting connections
//! (TLS ones after their handshake), and opening or closing listeners when
//! a reload changes the addresses. Closing a listener leaves the
//! connections it accepted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use arc_swap::ArcSwapOption;

use super::{connection, flush, wire, Server};
use crate::config::Cidr;

/// One configured listener: its address, and what its connections open
/// with. Two listeners on port 0 differ by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    pub addr: SocketAddr,
    pub tls: bool,
    /// A PROXY header first. Turning it on or off for a port in use takes
    /// a restart (or a reload without the port, then one with it): the
    /// new listener is bound before the old one is closed.
    pub proxy: bool,
}

impl ListenerKey {
    fn kind(&self) -> &'static str {
        match (self.tls, self.proxy) {
            (true, _) => "IRC over TLS",
            (false, true) => "IRC behind a proxy",
            (false, false) => "IRC",
        }
    }
}

/// A listener a configuration asks for.
pub struct Wanted {
    pub key: ListenerKey,
    /// The listener reads a PROXY header first, from these senders.
    pub proxy_from: Option<Arc<Vec<Cidr>>>,
}

/// The listeners open now, by configured address.
#[derive(Default)]
pub struct Listeners {
    open: Mutex<HashMap<ListenerKey, OpenListener>>,
}

struct OpenListener {
    bound: SocketAddr,
    stop: CancellationToken,
    /// Changed in place by a reload: the socket stays.
    proxy_from: Arc<ArcSwapOption<Vec<Cidr>>>,
}

impl Listeners {
    /// Opens the listeners of `wanted` not open yet and closes those open
    /// but not wanted. All or nothing for the opening: if one address
    /// cannot be bound, none of the new ones stay and nothing is closed.
    /// Returns what changed, for the log and the operator.
    pub fn apply(
        &self,
        server: &Arc<Server>,
        wanted: &[Wanted],
        tracker: &TaskTracker,
    ) -> anyhow::Result<Vec<String>> {
        use anyhow::Context as _;
        let send_buffer = server.config().limits.send_buffer_bytes;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut fresh = Vec::new();
        for want in wanted {
            let addr = want.key.addr;
            if let Some(listener) = open.get(&want.key) {
                listener.proxy_from.store(want.proxy_from.clone());
                continue;
            }
            if fresh.iter().any(|(key, _, _)| *key == want.key) {
                continue;
            }
            let listener =
                bind(addr, send_buffer).with_context(|| format!("cannot listen on {addr}"))?;
            fresh.push((want.key, listener, want.proxy_from.clone()));
        }
        let mut changes = Vec::new();
        open.retain(|key, listener| {
            let keep = wanted.iter().any(|want| want.key == *key);
            if !keep {
                listener.stop.cancel();
                let kind = key.kind();
                info!(address = %listener.bound, "no longer listening for {kind}");
                changes.push(format!("stopped listening on {} ({kind})", listener.bound));
            }
            keep
        });
        // Bound before any accepts: the first client already gets the
        // `sts` port.
        for (key, listener, proxy_from) in &fresh {
            let bound = listener.local_addr()?;
            let kind = key.kind();
            info!(address = %bound, "listening for {kind}");
            if key.tls {
                let _ = server.first_tls_port.set(bound.port());
            }
            changes.push(format!("listening on {bound} ({kind})"));
            open.insert(
                *key,
                OpenListener {
                    bound,
                    stop: CancellationToken::new(),
                    proxy_from: Arc::new(ArcSwapOption::new(proxy_from.clone())),
                },
            );
        }
        for (key, listener, _) in fresh {
            let tls = key.tls;
            let opened = &open[&key];
            let (stop, proxy_from) = (opened.stop.clone(), opened.proxy_from.clone());
            tracker.spawn(accept_loop(
                server.clone(),
                listener,
                tls,
                proxy_from,
                stop,
                tracker.clone(),
            ));
        }
        Ok(changes)
    }

    /// The addresses bound, plain or TLS, in the order of `keys`.
    pub fn bound(&self, keys: &[ListenerKey]) -> Vec<SocketAddr> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|key| open.get(key).map(|l| l.bound))
            .collect()
    }
}

/// The listeners a configuration asks for. Plaintext listeners may expect
/// PROXY headers; TLS ones do not (yet).
pub fn wanted(config: &crate::Config) -> Vec<Wanted> {
    let plain = config.server.listen.iter().filter_map(|listen| {
        Some(Wanted {
            key: ListenerKey {
                addr: listen.socket_addr()?,
                tls: false,
                proxy: listen.proxy,
            },
            proxy_from: listen.proxy.then(|| Arc::new(listen.proxy_from.clone())),
        })
    });
    let tls = config.tls.listen_addrs().into_iter().map(|addr| Wanted {
        key: ListenerKey {
            addr,
            tls: true,
            proxy: false,
        },
        proxy_from: None,
    });
    plain.chain(tls).collect()
}

/// Connections the kernel may hold waiting for accept; a burst of
/// connecting clients should queue, not be refused.
const LISTEN_BACKLOG: i32 = 4096;

/// Binds one listen address. IPv6 sockets are IPv6-only, so that
/// `0.0.0.0:6667` and `[::]:6667` can both be listened on, as admins expect.
/// `send_buffer` is `limits.send_buffer_bytes` (0: the kernel's choice).
pub(super) fn bind(addr: SocketAddr, send_buffer: usize) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    // Linux hands the listener's TCP_NODELAY down to every socket it
    // accepts: set once here, it saves each connection a `setsockopt`.
    socket.set_tcp_nodelay(true)?;
    // Handed down the same way; set only when asked for, since a fixed
    // size stops the kernel from growing the buffer as a connection needs.
    if send_buffer != 0 {
        socket.set_send_buffer_size(send_buffer)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(
    server: Arc<Server>,
    listener: TcpListener,
    tls: bool,
    proxy_from: Arc<ArcSwapOption<Vec<Cidr>>>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = server.shutdown.cancelled() => return,
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually EMFILE; back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Elsewhere an accepted socket may not inherit it (see `bind`).
        #[cfg(not(target_os = "linux"))]
        {
            let _ = stream.set_nodelay(true);
            let send_buffer = server.config().limits.send_buffer_bytes;
            if send_buffer != 0 {
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer);
            }
        }
        crate::metrics::accepted(if tls {
            crate::metrics::Transport::Tls
        } else {
            crate::metrics::Transport::Plain
        });
        if let Some(trusted) = proxy_from.load_full() {
            // The client's address comes first, in a PROXY header.
            super::proxy::start(&server, stream, peer, trusted, &tracker);
        } else if tls {
            // A handshake is work and memory before the connection counts
            // against any limit: a flood of them waits for none, it is
            // closed at once past the bound.
            let Ok(permit) = server.handshakes.clone().try_acquire_owned() else {
                crate::metrics::refused(crate::metrics::Refusal::Full);
                info!(%peer, "too many TLS handshakes under way; connection closed");
                continue;
            };
            // Off the accept loop: a slow handshake must not hold up the
            // next client.
            tracker.spawn(start_after_handshake(
                server.clone(),
                stream,
                peer,
                permit,
                tracker.clone(),
            ));
        } else {
            connection::start(&server, wire::Wire::plain(stream), peer, &tracker);
        }
        flush::write_held();
    }
}

async fn start_after_handshake(
    server: Arc<Server>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    tracker: TaskTracker,
) {
    let Some(acceptor) = server.tls.load_full() else {
        return;
    };
    let handshake = tokio::select! {
        () = server.shutdown.cancelled() => return,
        handshake = acceptor.handshake(stream) => handshake,
    };
    drop(permit);
    match handshake {
        Ok((socket, session)) => {
            connection::start(&server, wire::Wire::tls(socket, session), peer, &tracker);
            flush::write_held();
        }
        // Scanners and clients that distrust the certificate end here.
        Err(error) => {
            crate::metrics::tls_handshake_failed();
            info!(%peer, %error, "TLS handshake failed");
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn accepted_connections_do_not_wait_to_fill_a_segment() {
        let listener = super::bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        // Checked on the accepted socket, as the accept loop leaves it.
        assert!(accepted.nodelay().unwrap(), "Nagle's algorithm is off");
    }

    /// `limits.send_buffer_bytes` reaches every accepted socket through
    /// the listener (elsewhere the accept loop sets it on each); 0 leaves
    /// the kernel's size, which it may grow.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_connections_get_the_send_buffer_asked_for() {
        let size_of = async |send_buffer| {
            let listener = super::bind("127.0.0.1:0".parse().unwrap(), send_buffer).unwrap();
            let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (accepted, _) = listener.accept().await.unwrap();
            socket2::SockRef::from(&accepted)
                .send_buffer_size()
                .unwrap()
        };
        let kernels = size_of(0).await;
        let small = size_of(4096).await;
        // Linux reports twice what was asked (its bookkeeping is counted).
        assert!((4096..=8192).contains(&small), "{small} bytes");
        assert!(kernels > small, "the kernel's default is {kernels} bytes");
    }
}
