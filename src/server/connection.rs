//! One client connection, served by one task: it reads and handles lines in
//! batches, applies flood control, and writes what the client's full socket
//! held back (see [`Outbox`]). Keepalive is the sweep's (`keepalive.rs`).

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use super::caps::Cap;
use super::flood::FloodControl;
use super::flush::FlushScope;
use super::labeled::LabeledReply;
use super::outbox::Outbox;
use super::wire::Wire;
use super::world::Client;
use super::{unix_now, ConnectionSlot, Server};
use crate::commands::{self, Flow, Session, SessionUpdate};
use crate::proto::codec::{Frame, LineCodec};
use crate::proto::numeric::{Extra, Response};
use crate::proto::{parse_message, LineBuilder, Message, ParseError};

use self::input::{Input, Pause};

mod input;
mod message_run;

pub(super) const SHUTDOWN_REASON: &str = "Server shutting down";

/// Tells a connection it cannot be served, then closes it.
pub(super) async fn refuse(wire: Wire, reason: &str) {
    info!(reason, "connection refused");
    let line = Bytes::from(format!("ERROR :{reason}\r\n"));
    wire.send_and_close(line, Duration::from_secs(2)).await;
}

/// Serves a new connection on a task of its own, or tells it why it
/// cannot be served.
pub(super) fn start(server: &Arc<Server>, wire: Wire, peer: SocketAddr, tracker: &TaskTracker) {
    let (slot, count) = ConnectionSlot::take(server);
    if count > server.config().limits.max_clients {
        drop(slot);
        crate::metrics::refused(crate::metrics::Refusal::Full);
        tracker.spawn(refuse(wire, "Server is full"));
        return;
    }
    match Connection::admit(server, wire, peer, slot) {
        Ok(connection) => tracker.spawn(connection.into_task()),
        Err(wire) => {
            crate::metrics::refused(crate::metrics::Refusal::PerAddress);
            tracker.spawn(refuse(wire, "Too many connections from your address"))
        }
    };
}

/// Everything a connection's task keeps. Held in one place, owned by the
/// task's one future, because every idle client holds one: its size is
/// most of what an idle client costs.
struct Connection {
    server: Arc<Server>,
    session: Session,
    input: Input,
    slot: ConnectionSlot,
    /// The client was taken out of the network.
    left: bool,
    waiting: Waiting,
}

impl Connection {
    /// Adds the client to the network, unless its address has too many
    /// connections already.
    fn admit(
        server: &Arc<Server>,
        wire: Wire,
        peer: SocketAddr,
        slot: ConnectionSlot,
    ) -> Result<Connection, Wire> {
        let id = server.next_client_id.fetch_add(1, Ordering::Relaxed);
        let limits = &server.config().limits;
        let mut world = server.world();
        let from_ip = world.connections_per_ip.count(peer.ip());
        if limits.max_clients_per_ip != 0 && from_ip >= limits.max_clients_per_ip {
            return Err(wire);
        }
        let secure = wire.is_secure();
        let outbox = Outbox::new(limits.sendq_bytes, wire);
        world.add_client(Client::new(id, peer.ip(), outbox.clone(), unix_now()));
        if world.shutting_down {
            // Added after the shutdown told every client: told here.
            outbox.request_disconnect(SHUTDOWN_REASON.to_owned());
        }
        drop(world);
        info!(client = id, %peer, secure, "connected");
        Ok(Connection {
            server: server.clone(),
            session: Session::new(id, outbox),
            input: Input {
                buffer: BytesMut::new(),
                codec: LineCodec::default(),
                at_eof: false,
                flood: FloodControl::new(
                    limits.flood_burst,
                    limits.flood_lines_per_sec,
                    Instant::now(),
                ),
                held_line: None,
            },
            slot,
            left: false,
            waiting: Waiting::Nothing,
        })
    }

    /// The connection's task. An `async fn` taking `self` would store the
    /// connection twice in its future (once as the argument, once as the
    /// local it is moved to), 736 bytes instead of 480: the block captures
    /// it once and `serve` borrows it.
    #[allow(clippy::manual_async_fn)]
    fn into_task(mut self) -> impl Future<Output = ()> + Send {
        async move { self.serve().await }
    }

    async fn serve(&mut self) {
        let account = {
            let mut reason = poll_fn(|cx| self.poll_read_loop(cx)).await;
            self.waiting = Waiting::Nothing;
            if self.session.outbox.is_broken() {
                let wire = self.session.outbox.wire();
                reason = self.input.quit_left_behind(wire).unwrap_or(reason);
            }
            let account = self.leave(&reason);
            // The peer's address is in the "connected" line with the same id.
            info!(client = self.session.id, reason, "disconnected");
            account
        };
        // Boxed: it cannot share room with the read loop's state, and
        // every idle connection would carry both.
        let (outbox, server) = (&self.session.outbox, &self.server);
        Box::pin(async move {
            outbox.finish().await;
            // Awaited on this task, which a shutdown waits for, so that it
            // is not lost.
            if let Some(account) = account {
                commands::remember_departure(server, account).await;
            }
        })
        .await;
    }

    /// Takes the client out of the network. Returns its account (folded),
    /// whose departure is to be remembered, if it was logged in.
    fn leave(&mut self, reason: &str) -> Option<String> {
        self.left = true;
        // The QUIT fan-out is written after the state lock is released.
        let _batch = FlushScope::enter_with(Some(&self.server.delayed_writes));
        let account = {
            let mut world = self.server.world();
            let account = world
                .clients
                .get(&self.session.id)
                .filter(|client| client.registered)
                .and_then(|client| client.account())
                .map(|account| world.fold(account));
            world.remove_client(self.session.id, reason);
            account
        };
        // Given back now, not when the socket finally closes, so a peer
        // that never reads its last lines holds no place new clients need.
        self.slot.release();
        account
    }
}

/// A connection whose task unwinds from a panic (or is dropped by a
/// runtime shutting down) still leaves the network, as an internal error:
/// a bug in one handler can never leave a ghost behind.
impl Drop for Connection {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let panicking = std::thread::panicking();
        if panicking {
            tracing::error!(client = self.session.id, "connection task panicked");
        }
        if let Some(account) = self.leave("Internal error") {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(commands::remember_departure(&self.server, account));
            }
        }
        if panicking {
            // The task that would have flushed the last lines is unwinding:
            // hand them to a new one so the client still gets its ERROR.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let outbox = self.session.outbox.clone();
                runtime.spawn(async move { outbox.finish().await });
            }
        }
    }
}

impl Connection {
    /// Serves the client until its connection must end; resolves with the
    /// reason. A poll by hand over [`Connection::waiting`] rather than an
    /// `async fn`: the state an `async` loop keeps across its waits made
    /// every idle connection's task 128 bytes bigger.
    fn poll_read_loop(&mut self, cx: &mut Context<'_>) -> Poll<String> {
        let (server, session, input) = (&self.server, &mut self.session, &mut self.input);
        loop {
            if !matches!(self.waiting, Waiting::Nothing) {
                // Whatever it waits for, a connection that must end (KILL,
                // sendq, a write error, a shutdown) ends now, and a socket
                // that drains gets what was held back.
                if let Poll::Ready(reason) = session.outbox.poll_serve_until_ended(cx) {
                    return Poll::Ready(reason);
                }
            }
            match &mut self.waiting {
                Waiting::Nothing => {
                    let pause = match input.handle_buffered(server, session) {
                        Ok(pause) => pause,
                        Err(e) => return Poll::Ready(format!("Read error: {e}")),
                    };
                    self.waiting = match pause {
                        Pause::NeedInput => {
                            if input.at_eof {
                                return Poll::Ready("Remote host closed the connection".to_owned());
                            }
                            // An idle client keeps no read buffer; a partial
                            // line keeps its own.
                            if input.buffer.is_empty() {
                                input.buffer = BytesMut::new();
                            }
                            // Keepalive and registration deadlines are the
                            // sweep's job (`keepalive.rs`): it ends the
                            // connection through the outbox.
                            Waiting::Input
                        }
                        Pause::Quit(reason) => return Poll::Ready(reason),
                        Pause::Throttled(frame, wait) => {
                            input.held_line = Some(Box::new(frame));
                            // Boxed: only a flooding client needs a timer.
                            Waiting::Flood(Box::pin(tokio::time::sleep(wait)))
                        }
                        Pause::Wait(work) => Waiting::Work(work),
                    };
                }
                Waiting::Input => {
                    if let Err(e) = ready!(session.outbox.wire().poll_read_ready(cx)) {
                        return Poll::Ready(format!("Read error: {e}"));
                    }
                    let read = session.outbox.wire().read_available(&mut input.buffer);
                    session.outbox.flush_wire();
                    match read {
                        Ok(0) => input.at_eof = true,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Poll::Ready(format!("Read error: {e}")),
                    }
                    session.mark_input();
                    session.outbox.liveness().record_read(session.now);
                    self.waiting = Waiting::Nothing;
                }
                Waiting::Flood(timer) => {
                    ready!(timer.as_mut().poll(cx));
                    // Nothing is read while input waits, yet the client is
                    // alive: it must not be taken for a silent one.
                    session.mark_input();
                    session.outbox.liveness().record_read(session.now);
                    self.waiting = Waiting::Nothing;
                }
                Waiting::Work(work) => {
                    if let Some(update) = ready!(work.as_mut().poll(cx)) {
                        update(session);
                    }
                    session.mark_input();
                    self.waiting = Waiting::Nothing;
                    // Work that ended the connection (a refused WEBIRC)
                    // ends it before the lines sent after it run.
                    if let Poll::Ready(reason) = session.outbox.poll_serve_until_ended(cx) {
                        return Poll::Ready(reason);
                    }
                }
            }
        }
    }
}

/// What a connection's task waits for while it serves the client.
enum Waiting {
    /// Nothing: the buffered input is handled next.
    Nothing,
    /// The socket, for more input.
    Input,
    /// Flood control's timer, before the held-back line.
    Flood(Pin<Box<tokio::time::Sleep>>),
    /// A command's slow work, before the next line.
    Work(Pin<Box<dyn Future<Output = Option<SessionUpdate>> + Send>>),
}

/// The reply to collect if `message` is labeled and its sender enabled
/// labeled-response (which needs batch: "the batch capability MUST be
/// negotiated to use labeled responses").
fn labeled_reply(
    server: &Server,
    session: &Session,
    message: &Message<'_>,
) -> Option<LabeledReply> {
    let label = message.tag("label").filter(|label| !label.is_empty())?;
    let caps = server.world().clients.get(&session.id)?.caps;
    (caps.has(Cap::LabeledResponse) && caps.has(Cap::Batch))
        .then(|| LabeledReply::new(session.outbox.clone(), &server.name, label))
}

/// Tag data (between `@` and the space) a client may send, from the
/// message-tags specification.
const MAX_CLIENT_TAG_DATA: usize = 4094;

fn handle_frame(server: &Arc<Server>, session: &mut Session, frame: Frame) -> Flow {
    let line = match frame {
        Frame::TooLong => {
            commands::reply_numeric(server, session, Extra::ERR_INPUTTOOLONG, |b| {
                b.trailing("Input line was too long")
            });
            return Flow::Continue;
        }
        Frame::Line(line) => line,
    };
    if line.first() == Some(&b'@') {
        // The codec bounds tags at 8191 bytes, the room the server has;
        // a client gets half of it, so the server's own tags still fit.
        let tag_data = memchr::memchr(b' ', &line).unwrap_or(line.len()) - 1;
        if tag_data > MAX_CLIENT_TAG_DATA {
            commands::reply_numeric(server, session, Extra::ERR_INPUTTOOLONG, |b| {
                b.trailing("Input line was too long")
            });
            return Flow::Continue;
        }
    }
    let text = match std::str::from_utf8(&line) {
        Ok(text) => text,
        Err(_) => {
            // UTF8ONLY: the line is refused as a whole rather than passed on
            // mangled, and the client is told which command it was.
            let lossy = String::from_utf8_lossy(&line);
            let command = parse_message(&lossy)
                .map(|m| m.command.to_ascii_uppercase())
                .unwrap_or_else(|_| "*".to_owned());
            let reply = LineBuilder::new(Some(&server.name), "FAIL")
                .param(&command)
                .param("INVALID_UTF8")
                .trailing(
                    "Message rejected, your IRC software MUST use UTF-8 encoding on this network",
                );
            session.outbox.send(&reply);
            return Flow::Continue;
        }
    };
    let flow = match parse_message(text) {
        Ok(message) => {
            debug!(
                client = session.id,
                command = message.command,
                params = message.params.len(),
                "received"
            );
            match labeled_reply(server, session, &message) {
                Some(mut reply) => {
                    match reply.run(|| commands::dispatch(server, session, &message)) {
                        Flow::Wait(work) => Flow::Wait(Box::pin(reply.around(work))),
                        flow => {
                            reply.finish();
                            flow
                        }
                    }
                }
                None => commands::dispatch(server, session, &message),
            }
        }
        Err(ParseError::Empty) => Flow::Continue,
        Err(error) => {
            let text = format!("Could not parse the message: {error}");
            let (nick, standard_replies) = {
                let world = server.world();
                let me = world.clients.get(&session.id);
                (
                    me.map_or_else(|| "*".to_owned(), |me| me.nick.to_string()),
                    me.is_some_and(|me| me.caps.has(Cap::StandardReplies)),
                )
            };
            // standard-replies: a FAIL for those who said they take any;
            // the generic numeric for the others.
            let reply = if standard_replies {
                LineBuilder::new(Some(&server.name), "FAIL")
                    .param("*")
                    .param("INVALID_MESSAGE")
                    .trailing(&text)
            } else {
                LineBuilder::numeric(&server.name, Response::ERR_UNKNOWNERROR, &nick)
                    .param("*")
                    .trailing(&text)
            };
            session.outbox.send(&reply);
            Flow::Continue
        }
    };
    flow
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    /// Every idle client holds one of these futures, so its size is a
    /// large part of what an idle client costs: 1,128 bytes with `select!`
    /// over wait futures, 480 with the waits polled by hand, 400 with a
    /// smaller connection, 264 with the read loop a poll by hand. tokio
    /// adds 104 bytes of its own and rounds a task up to 128 (on x86_64):
    /// up to 280 bytes a connection's task takes 384 bytes, not 512.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let data_dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(data_dir.path()).await.unwrap();
        let server = Arc::new(Server::new(crate::Config::embedded(), store).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let (slot, _) = ConnectionSlot::take(&server);
        let Ok(connection) = Connection::admit(&server, Wire::plain(stream), peer, slot) else {
            panic!("the connection was refused");
        };
        let size = std::mem::size_of_val(&connection.into_task());
        assert!(size <= 280, "the connection future takes {size} bytes");
    }

    /// `limits.max_clients_per_ip` counts an IPv6 /64 as one address. The
    /// sockets are real loopback ones; the peer addresses they are admitted
    /// under are not, since only `::1` can connect here.
    #[tokio::test]
    async fn addresses_of_one_ipv6_prefix_share_the_per_address_limit() {
        let data_dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(data_dir.path()).await.unwrap();
        let config = crate::Config::from_toml_str(
            "[limits]\nmax_clients_per_ip = 2\nipv6_prefix_len = 64\n",
            "test",
        )
        .unwrap();
        let server = Arc::new(Server::new(config, store).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Every socket and admitted connection is kept to the end: a
        // connection dropped leaves, and its count goes with it.
        let (mut clients, mut admitted) = (Vec::new(), Vec::new());
        let mut admit = async |peer: &str| {
            clients.push(
                TcpStream::connect(listener.local_addr().unwrap())
                    .await
                    .unwrap(),
            );
            let (stream, _) = listener.accept().await.unwrap();
            let (slot, _) = ConnectionSlot::take(&server);
            match Connection::admit(&server, Wire::plain(stream), peer.parse().unwrap(), slot) {
                Ok(connection) => {
                    admitted.push(connection);
                    true
                }
                Err(_) => false,
            }
        };
        assert!(admit("[2001:db8:1:2::1]:1000").await);
        assert!(admit("[2001:db8:1:2:aaaa::7]:1001").await);
        // A third address of the same /64 is one connection too many.
        assert!(!admit("[2001:db8:1:2:ffff:ffff:ffff:ffff]:1002").await);
        // Another /64 is another host; IPv4 addresses count alone.
        assert!(admit("[2001:db8:1:3::1]:1003").await);
        assert!(admit("192.0.2.1:1004").await);
        assert!(admit("192.0.2.2:1005").await);
        assert!(admit("192.0.2.1:1006").await);
        assert!(!admit("192.0.2.1:1007").await);
    }
}
