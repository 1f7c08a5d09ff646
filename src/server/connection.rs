//! One client connection: the reader loop with its timers, and the writer
//! task draining the client's outbox.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, info};

use super::flood::FloodControl;
use super::outbox::Outbox;
use super::world::{Client, ClientId};
use super::{unix_now, ConnectionSlot, Server};
use crate::commands::{self, Flow, Session};
use crate::proto::codec::{Frame, LineCodec};
use crate::proto::numeric::Extra;
use crate::proto::{parse_message, LineBuilder, ParseError};

/// Read buffer a connection starts with; it grows for long lines only.
const INITIAL_READ_BUFFER: usize = 512;

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
    let outbox = Outbox::new(server.config.limits.sendq_bytes);
    let admitted = {
        let mut world = server.world();
        let per_ip = server.config.limits.max_clients_per_ip;
        let from_ip = world
            .connections_per_ip
            .get(&peer.ip().to_canonical())
            .copied()
            .unwrap_or(0);
        let admitted = per_ip == 0 || from_ip < per_ip;
        if admitted {
            world.add_client(Client::new(id, peer.ip(), outbox.clone(), unix_now()));
        }
        admitted
    };
    if !admitted {
        refuse(stream, "Too many connections from your address").await;
        return;
    }
    info!(client = id, %peer, "connected");

    let (reader, writer) = stream.into_split();
    let writer_task = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_writer(writer).await }
    });
    let mut session = Session::new(id, outbox.clone());
    let mut leave = LeaveOnDrop {
        server: &server,
        id,
        reason: None,
    };
    let reason = read_loop(&server, &mut session, reader).await;
    leave.reason = Some(reason.clone());
    drop(leave);
    drop(slot);
    info!(client = id, %peer, reason, "disconnected");
    let _ = writer_task.await;
}

/// Takes the client out of the network when the connection ends: with
/// the reason the reader gave, or, if its task unwinds from a panic, as an
/// internal error, so a bug in one handler can never leave a ghost behind.
struct LeaveOnDrop<'a> {
    server: &'a Server,
    id: ClientId,
    reason: Option<String>,
}

impl Drop for LeaveOnDrop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(client = self.id, "connection task panicked");
        }
        let reason = self.reason.as_deref().unwrap_or("Internal error");
        self.server.world().remove_client(self.id, reason);
    }
}

/// Resolves, with the reason to leave, when the connection must stop
/// reading: it was ended (KILL, sendq, a write error) or the server stops.
async fn stop_reading(server: &Server, outbox: &Outbox) -> String {
    tokio::select! {
        biased;
        () = outbox.ended() => outbox.end_reason(),
        () = server.shutdown.cancelled() => "Server shutting down".to_owned(),
    }
}

async fn read_loop(server: &Arc<Server>, session: &mut Session, reader: OwnedReadHalf) -> String {
    let limits = &server.config.limits;
    let ping_interval = Duration::from_secs(limits.ping_interval_secs);
    let ping_timeout = Duration::from_secs(limits.ping_timeout_secs);
    let registration_deadline =
        Instant::now() + Duration::from_secs(limits.registration_timeout_secs);
    let mut frames = FramedRead::with_capacity(reader, LineCodec::default(), INITIAL_READ_BUFFER);
    let mut last_read = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let outbox = session.outbox.clone();
    let mut flood = FloodControl::new(
        limits.flood_burst,
        limits.flood_lines_per_sec,
        last_read.into_std(),
    );

    loop {
        let deadline = match (session.registered, ping_sent) {
            (false, _) => registration_deadline,
            (true, Some(sent)) => sent + ping_timeout,
            (true, None) => last_read + ping_interval,
        };
        let next = tokio::select! {
            biased;
            reason = stop_reading(server, &outbox) => return reason,
            next = tokio::time::timeout_at(deadline, frames.next()) => next,
        };
        let frame = match next {
            Err(_) if !session.registered => return "Registration timed out".to_owned(),
            Err(_) if ping_sent.is_some() => {
                let silent = last_read.elapsed().as_secs();
                return format!("Ping timeout: {silent} seconds");
            }
            Err(_) => {
                ping_sent = Some(Instant::now());
                outbox.send(&LineBuilder::new(None, "PING").last(&server.name));
                continue;
            }
            Ok(None) => return "Remote host closed the connection".to_owned(),
            Ok(Some(Err(e))) => return format!("Read error: {e}"),
            Ok(Some(Ok(frame))) => frame,
        };
        last_read = Instant::now();
        ping_sent = None;
        let wait = flood
            .as_mut()
            .map_or(Duration::ZERO, |f| f.delay(last_read.into_std()));
        if !wait.is_zero() {
            tokio::select! {
                biased;
                reason = stop_reading(server, &outbox) => return reason,
                () = tokio::time::sleep(wait) => {}
            }
        }
        match handle_frame(server, session, frame) {
            Flow::Continue => {}
            Flow::Quit(reason) => return reason,
            Flow::Wait(work) => work.await,
        }
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
