//! Input read from a client's socket and not yet handled: framing, flood
//! control, and the batch of lines handled between two reads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::handle_frame;
use super::message_run::{After, Gathered};
use crate::commands::{self, Flow, Session, SessionUpdate};
use crate::proto::codec::{Frame, LineCodec};
use crate::proto::parse_message;
use crate::server::flood::FloodControl;
use crate::server::flush::FlushScope;
use crate::server::wire::Wire;
use crate::server::Server;

/// Reads of [`crate::server::wire::READ_CHUNK`] bytes made for a QUIT left behind.
const LEFT_BEHIND_READS: usize = 4;

/// What stopped the handling of buffered input.
pub(super) enum Pause {
    /// Every complete line was handled; more input is needed.
    NeedInput,
    /// The client sent more than flood control allows: this line waits.
    Throttled(Frame, Duration),
    /// A command's slow work must finish before the next line.
    Wait(Pin<Box<dyn Future<Output = Option<SessionUpdate>> + Send>>),
    Quit(String),
}

/// Input read from the socket and not yet handled, with flood control.
pub(super) struct Input {
    pub(super) buffer: BytesMut,
    pub(super) codec: LineCodec,
    /// The peer closed its side: what is left is the last line.
    pub(super) at_eof: bool,
    pub(super) flood: Option<FloodControl>,
    /// A line to handle before the buffered ones, already judged by flood
    /// control: one it held back, or one taken to end a run of messages
    /// while the run's work waits. Boxed: only a flooding client has one
    /// for long, and every idle connection would carry its room.
    pub(super) held_line: Option<Box<Frame>>,
}

impl Input {
    pub(super) fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        if self.at_eof {
            self.codec.decode_eof(&mut self.buffer)
        } else {
            self.codec.decode(&mut self.buffer)
        }
    }

    /// Handles every complete line buffered, as one batch: what they send
    /// is written once per recipient when the batch ends.
    pub(super) fn handle_buffered(
        &mut self,
        server: &Arc<Server>,
        session: &mut Session,
    ) -> std::io::Result<Pause> {
        let _batch = FlushScope::enter_for_input(&server.delayed_writes);
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
        let mut next = self.held_line.take().map(|frame| *frame);
        loop {
            let frame = match next.take() {
                Some(frame) => frame,
                None => match self.next_judged(session)? {
                    Judged::Ready(frame) => frame,
                    Judged::Throttled(frame, wait) => return Ok(Pause::Throttled(frame, wait)),
                    Judged::NoneBuffered => return Ok(Pause::NeedInput),
                },
            };
            let (flow, after) = match self.take_message_run(session, frame)? {
                Gathered::Run(run, after) => (run.relay(server, session), after),
                Gathered::Alone(frame) => (handle_frame(server, session, frame), After::Nothing),
            };
            match (flow, after) {
                (Flow::Continue, After::Nothing) => {}
                (Flow::Continue, After::Line(frame)) => next = Some(frame),
                (Flow::Continue, After::Throttled(frame, wait)) => {
                    return Ok(Pause::Throttled(frame, wait));
                }
                // The connection ends: what is left unhandled goes with it.
                (Flow::Quit(reason), _) => return Ok(Pause::Quit(reason)),
                (Flow::Wait(work), After::Nothing) => return Ok(Pause::Wait(work)),
                // The line taken after the run is handled once the work is
                // done, and no sooner than flood control says.
                (Flow::Wait(work), After::Line(frame)) => {
                    self.held_line = Some(Box::new(frame));
                    return Ok(Pause::Wait(work));
                }
                (Flow::Wait(work), After::Throttled(frame, wait)) => {
                    self.held_line = Some(Box::new(frame));
                    // The wait counts from when the line was judged, not
                    // from the end of the work.
                    let due = tokio::time::Instant::now() + wait;
                    return Ok(Pause::Wait(Box::pin(async move {
                        let update = work.await;
                        tokio::time::sleep_until(due).await;
                        update
                    })));
                }
            }
        }
    }

    /// The reason of a QUIT the client sent that was never handled. A
    /// client may send a command with a long reply and QUIT at once, then
    /// close its connection: the reply meets the closed socket before the
    /// QUIT's turn comes, and the client would be shown leaving with a
    /// write error instead of its reason. So when a write fails, what the
    /// socket still holds is read (the kernel keeps it after a reset) and
    /// the lines not yet handled are searched for a QUIT. The other lines
    /// are dropped, as they always were with a failed socket: their
    /// replies could not be delivered.
    pub(super) fn quit_left_behind(&mut self, wire: &Wire) -> Option<String> {
        // Bounded: at most what a client may send in a few reads.
        for _ in 0..LEFT_BEHIND_READS {
            if !matches!(wire.read_available(&mut self.buffer), Ok(1..)) {
                break;
            }
        }
        self.at_eof = true;
        let mut next = self.held_line.take().map(|frame| *frame);
        loop {
            let frame = match next.take() {
                Some(frame) => frame,
                None => self.next_frame().ok()??,
            };
            let Frame::Line(line) = frame else {
                continue;
            };
            let Ok(Ok(message)) = std::str::from_utf8(&line).map(parse_message) else {
                continue;
            };
            if message.command.eq_ignore_ascii_case("QUIT") {
                return Some(commands::quit_reason(&message));
            }
        }
    }

    /// The next buffered line, judged by flood control.
    pub(super) fn next_judged(&mut self, session: &Session) -> std::io::Result<Judged> {
        let Some(frame) = self.next_frame()? else {
            return Ok(Judged::NoneBuffered);
        };
        // Each line is judged at the time it is handled, so the time spent
        // waiting for earlier lines is credited.
        let wait = self
            .flood
            .as_mut()
            .map_or(Duration::ZERO, |f| f.delay(session.now));
        if wait.is_zero() {
            Ok(Judged::Ready(frame))
        } else {
            Ok(Judged::Throttled(frame, wait))
        }
    }
}

/// A buffered line as flood control judged it.
pub(super) enum Judged {
    /// It may be handled now.
    Ready(Frame),
    /// It must wait this long.
    Throttled(Frame, Duration),
    /// No complete line is buffered.
    NoneBuffered,
}
