//! One client connection, served by one task: it reads and handles lines in
//! batches, applies flood control, and writes what the client's full socket
//! held back (see [`Outbox`]). Keepalive is the sweep's (`keepalive.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;
use tracing::{debug, info};

use super::flood::FloodControl;
use super::flush::FlushScope;
use super::outbox::Outbox;
use super::world::{Client, ClientId};
use super::{unix_now, ConnectionSlot, Server};
use crate::commands::{self, Flow, Session};
use crate::proto::codec::{Frame, LineCodec};
use crate::proto::numeric::Extra;
use crate::proto::{parse_message, LineBuilder, ParseError};

/// Room made in the read buffer before each read. Lines cut at its end wait
/// in the buffer for the rest; a burst fills several reads.
const READ_CHUNK: usize = 4096;

/// Tells a connection it cannot be served, then closes it.
pub(super) async fn refuse(mut stream: TcpStream, reason: &str) {
    info!(reason, "connection refused");
    let line = format!("ERROR :{reason}\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(line.as_bytes())).await;
    let _ = stream.shutdown().await;
}

pub(super) async fn serve(
    server: Arc<Server>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
) {
    let id = server.next_client_id.fetch_add(1, Ordering::Relaxed);
    let admitted = {
        let mut world = server.world();
        let per_ip = server.config.limits.max_clients_per_ip;
        let from_ip = world
            .connections_per_ip
            .get(&peer.ip().to_canonical())
            .copied()
            .unwrap_or(0);
        if per_ip == 0 || from_ip < per_ip {
            let outbox = Outbox::new(server.config.limits.sendq_bytes, stream);
            world.add_client(Client::new(id, peer.ip(), outbox.clone(), unix_now()));
            Ok(outbox)
        } else {
            Err(stream)
        }
    };
    let outbox = match admitted {
        Ok(outbox) => outbox,
        Err(stream) => {
            refuse(stream, "Too many connections from your address").await;
            return;
        }
    };
    info!(client = id, %peer, "connected");

    let mut session = Session::new(id, outbox.clone());
    let mut leave = LeaveOnDrop {
        server: &server,
        outbox: &outbox,
        id,
        reason: None,
    };
    let reason = read_loop(&server, &mut session).await;
    leave.reason = Some(reason.clone());
    drop(leave);
    drop(slot);
    info!(client = id, %peer, reason, "disconnected");
    outbox.finish().await;
}

/// Takes the client out of the network when the connection ends: with
/// the reason the reader gave, or, if its task unwinds from a panic, as an
/// internal error, so a bug in one handler can never leave a ghost behind.
struct LeaveOnDrop<'a> {
    server: &'a Server,
    outbox: &'a Outbox,
    id: ClientId,
    reason: Option<String>,
}

impl Drop for LeaveOnDrop<'_> {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            tracing::error!(client = self.id, "connection task panicked");
        }
        let reason = self.reason.as_deref().unwrap_or("Internal error");
        // The QUIT fan-out is written after the state lock is released.
        let _batch = FlushScope::enter_with(Some(&self.server.delayed_writes));
        self.server.world().remove_client(self.id, reason);
        if panicking {
            // The task that would have flushed the last lines is unwinding:
            // hand them to a new one so the client still gets its ERROR.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let outbox = self.outbox.clone();
                runtime.spawn(async move { outbox.finish().await });
            }
        }
    }
}

/// Resolves, with the reason to leave, when the connection must stop
/// reading: it was ended (KILL, sendq, a write error) or the server stops.
/// Until then it writes what the client's full socket held back.
async fn stop_reading(server: &Server, outbox: &Outbox) -> String {
    tokio::select! {
        biased;
        reason = outbox.serve_until_ended() => reason,
        () = server.shutdown.cancelled() => "Server shutting down".to_owned(),
    }
}

/// What stopped the handling of buffered input.
enum Pause {
    /// Every complete line was handled; more input is needed.
    NeedInput,
    /// The client sent more than flood control allows: this line waits.
    Throttled(Frame, Duration),
    /// A command's slow work must finish before the next line.
    Wait(Pin<Box<dyn Future<Output = ()> + Send>>),
    Quit(String),
}

/// Input read from the socket and not yet handled, with flood control.
struct Input {
    buffer: BytesMut,
    codec: LineCodec,
    /// The peer closed its side: what is left is the last line.
    at_eof: bool,
    flood: Option<FloodControl>,
    /// A line held back by flood control.
    throttled: Option<Frame>,
}

impl Input {
    fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        if self.at_eof {
            self.codec.decode_eof(&mut self.buffer)
        } else {
            self.codec.decode(&mut self.buffer)
        }
    }

    /// Handles every complete line buffered, as one batch: what they send
    /// is written once per recipient when the batch ends.
    fn handle_buffered(
        &mut self,
        server: &Arc<Server>,
        session: &mut Session,
    ) -> std::io::Result<Pause> {
        let _batch = FlushScope::enter_with(Some(&server.delayed_writes));
        let pause = self.handle_batch(server, session);
        // The client's own replies go out first: a client that waits for
        // them before its next command (a bot, a join storm) can send it
        // while the batch's fan-out is still being written, and the next
        // fan-out then shares those writes.
        session.outbox.flush_scheduled();
        pause
    }

    fn handle_batch(
        &mut self,
        server: &Arc<Server>,
        session: &mut Session,
    ) -> std::io::Result<Pause> {
        let mut next = self.throttled.take();
        loop {
            let frame = match next.take() {
                Some(frame) => frame,
                None => {
                    let Some(frame) = self.next_frame()? else {
                        return Ok(Pause::NeedInput);
                    };
                    // Each line is judged at the time it is handled, so the
                    // time spent waiting for earlier lines is credited.
                    let wait = self
                        .flood
                        .as_mut()
                        .map_or(Duration::ZERO, |f| f.delay(Instant::now()));
                    if !wait.is_zero() {
                        return Ok(Pause::Throttled(frame, wait));
                    }
                    frame
                }
            };
            match handle_frame(server, session, frame) {
                Flow::Continue => {}
                Flow::Quit(reason) => return Ok(Pause::Quit(reason)),
                Flow::Wait(work) => return Ok(Pause::Wait(work)),
            }
        }
    }
}

async fn read_loop(server: &Arc<Server>, session: &mut Session) -> String {
    let limits = &server.config.limits;
    let outbox = session.outbox.clone();
    let socket = outbox.socket();
    let mut input = Input {
        buffer: BytesMut::new(),
        codec: LineCodec::default(),
        at_eof: false,
        flood: FloodControl::new(
            limits.flood_burst,
            limits.flood_lines_per_sec,
            Instant::now(),
        ),
        throttled: None,
    };

    loop {
        let pause = match input.handle_buffered(server, session) {
            Ok(pause) => pause,
            Err(e) => return format!("Read error: {e}"),
        };
        match pause {
            Pause::NeedInput => {}
            Pause::Quit(reason) => return reason,
            Pause::Throttled(frame, wait) => {
                input.throttled = Some(frame);
                tokio::select! {
                    biased;
                    reason = stop_reading(server, &outbox) => return reason,
                    () = tokio::time::sleep(wait) => {}
                }
                // Nothing is read while input waits, yet the client is
                // alive: it must not be taken for a silent one.
                outbox.liveness().record_read();
                continue;
            }
            Pause::Wait(work) => {
                tokio::select! {
                    biased;
                    reason = stop_reading(server, &outbox) => return reason,
                    () = work => {}
                }
                continue;
            }
        }
        if input.at_eof {
            return "Remote host closed the connection".to_owned();
        }
        // An idle client keeps no read buffer; a partial line keeps its own.
        if input.buffer.is_empty() {
            input.buffer = BytesMut::new();
        }

        // Keepalive and registration deadlines are the sweep's job
        // (`keepalive.rs`): it ends the connection through the outbox.
        let readable = tokio::select! {
            biased;
            reason = stop_reading(server, &outbox) => return reason,
            readable = socket.readable() => readable,
        };
        if let Err(e) = readable {
            return format!("Read error: {e}");
        }
        input.buffer.reserve(READ_CHUNK);
        match socket.try_read_buf(&mut input.buffer) {
            Ok(0) => input.at_eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return format!("Read error: {e}"),
        }
        outbox.liveness().record_read();
    }
}

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
            commands::dispatch(server, session, &message)
        }
        Err(ParseError::Empty) => Flow::Continue,
        Err(error) => {
            let reply = LineBuilder::new(Some(&server.name), "FAIL")
                .param("*")
                .param("INVALID_MESSAGE")
                .trailing(&format!("Could not parse the message: {error}"));
            session.outbox.send(&reply);
            Flow::Continue
        }
    };
    flow
}
