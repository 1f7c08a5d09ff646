//! Runs of messages: PRIVMSGs (or NOTICEs) that a client sent one after
//! another to one channel or nick, found in one batch of its input and
//! relayed together (see `commands::relay_run`). Each recipient then gets a
//! run queued as one piece, which is what makes a busy channel cheap: the
//! cost per recipient and line (a lock, a shared handle, a slot in the
//! write) is paid once per run instead.

use bytes::BytesMut;
use smallvec::{smallvec, SmallVec};
use tracing::debug;

use std::time::Duration;

use super::{Input, Judged};
use crate::commands::{self, Flow, Session};
use crate::proto::codec::Frame;
use crate::proto::{parse_message, Message};
use crate::server::Server;

/// Lines one run takes at most. It bounds how long one client's run holds
/// the state lock (each line costs what it would cost alone, less the
/// queueing) and keeps a run's messages on the stack most of the time.
const MAX_RUN_LINES: usize = 32;

/// Lines that make a run: each one a message `commands::may_run` takes,
/// of the same command to the same target.
pub(super) struct MessageRun {
    lines: SmallVec<[BytesMut; 8]>,
}

/// What [`Input::take_message_run`] found.
// Only ever on the stack, for the handling of one line or run: boxing the
// run would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Gathered {
    /// A run, and what came after it.
    Run(MessageRun, After),
    /// A line that does not start a run, to be handled alone.
    Alone(Frame),
}

/// What ended a run, besides its size or the end of the buffered lines.
pub(super) enum After {
    Nothing,
    /// A line that does not belong to the run, already judged by flood
    /// control: it is handled next.
    Line(Frame),
    /// A line flood control holds back this long.
    Throttled(Frame, Duration),
}

impl Input {
    /// Starts a run with `first` when the input buffered after it goes on
    /// with the same command to the same target, and takes every line of
    /// the run that is buffered.
    pub(super) fn take_message_run(
        &mut self,
        session: &Session,
        first: Frame,
    ) -> std::io::Result<Gathered> {
        let Frame::Line(first) = first else {
            return Ok(Gathered::Alone(first));
        };
        // Most lines are told apart by their first bytes, before anything
        // is parsed: a lone message is never parsed twice.
        let prefix_len = match run_prefix(&first) {
            Some(len) if session.registered && self.buffer.starts_with(&first[..len]) => len,
            _ => return Ok(Gathered::Alone(Frame::Line(first))),
        };
        if parse_member(&first).is_none() {
            return Ok(Gathered::Alone(Frame::Line(first)));
        }
        let mut lines: SmallVec<[BytesMut; 8]> = smallvec![first];
        let mut after = After::Nothing;
        while lines.len() < MAX_RUN_LINES && self.buffer.starts_with(&lines[0][..prefix_len]) {
            match self.next_judged(session)? {
                Judged::Ready(Frame::Line(line))
                    if line.starts_with(&lines[0][..prefix_len])
                        && parse_member(&line).is_some() =>
                {
                    lines.push(line);
                }
                Judged::Ready(frame) => {
                    after = After::Line(frame);
                    break;
                }
                Judged::Throttled(frame, wait) => {
                    after = After::Throttled(frame, wait);
                    break;
                }
                Judged::NoneBuffered => break,
            }
        }
        Ok(Gathered::Run(MessageRun { lines }, after))
    }
}

impl MessageRun {
    pub(super) fn relay(&self, server: &std::sync::Arc<Server>, session: &mut Session) -> Flow {
        // Every line parsed as a member of the run when it was taken, and
        // parsing the same bytes again gives the same message.
        let messages: SmallVec<[Message<'_>; 8]> = self
            .lines
            .iter()
            .filter_map(|line| parse_member(line))
            .collect();
        debug_assert_eq!(messages.len(), self.lines.len());
        for message in &messages {
            debug!(
                client = session.id,
                command = message.command,
                params = message.params.len(),
                "received"
            );
        }
        commands::relay_run(server, session, &messages)
    }
}

/// The length of `line`'s `PRIVMSG #channel ` (or `NOTICE #channel `), the
/// start every line of its run repeats byte for byte; `None` if it cannot
/// start a run.
fn run_prefix(line: &[u8]) -> Option<usize> {
    let target_start = if line.starts_with(b"PRIVMSG ") {
        8
    } else if line.starts_with(b"NOTICE ") {
        7
    } else {
        return None;
    };
    let target_len = memchr::memchr(b' ', &line[target_start..])?;
    Some(target_start + target_len + 1)
}

/// `line` as a message of a run, if it can be one.
fn parse_member(line: &[u8]) -> Option<Message<'_>> {
    let message = parse_message(std::str::from_utf8(line).ok()?).ok()?;
    commands::may_run(&message).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_starts_with_the_command_and_its_target() {
        assert_eq!(run_prefix(b"PRIVMSG #c :hi"), Some(11));
        assert_eq!(run_prefix(b"NOTICE #c :hi"), Some(10));
        assert_eq!(run_prefix(b"PRIVMSG #c"), None);
        assert_eq!(run_prefix(b"privmsg #c :hi"), None);
        assert_eq!(run_prefix(b"TAGMSG #c"), None);
        assert_eq!(run_prefix(b"PRIVMSG nick :hi"), Some(13));
    }

    #[test]
    fn only_plain_messages_to_one_channel_join_a_run() {
        assert!(parse_member(b"PRIVMSG #c :hi there").is_some());
        assert!(parse_member(b"NOTICE #c hi").is_some());
        assert!(parse_member(b"PRIVMSG nick :hi").is_some());
        assert!(parse_member(b"PRIVMSG NickServ :IDENTIFY pw").is_none());
        assert!(parse_member(b"PRIVMSG #a,#b :hi").is_none());
        assert!(parse_member(b"PRIVMSG @#c :hi").is_none());
        assert!(parse_member(b"PRIVMSG #c :").is_none());
        assert!(parse_member(b"PRIVMSG #c a b").is_none());
        assert!(parse_member(b"@+typing=active PRIVMSG #c :hi").is_none());
        assert!(parse_member(b"PRIVMSG #c :\xff").is_none());
    }
}
