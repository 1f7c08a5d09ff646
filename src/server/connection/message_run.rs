//! Runs of messages: PRIVMSGs (or NOTICEs) that a client sent one after
//! another to one channel or nick, found in one batch of its input and
//! relayed together (see `commands::relay_run`). Each recipient then gets a
//! run queued as one piece, which is what makes a busy channel cheap: the
//! cost per recipient and line (a lock, a shared handle, a slot in the
//! write) is paid once per run instead.

use std::ops::Range;
use std::time::Duration;

use bytes::BytesMut;
use smallvec::{smallvec, SmallVec};
use tracing::debug;

use super::input::{Input, Judged};
use crate::commands::{self, Flow, Session};
use crate::proto::codec::Frame;
use crate::server::Server;

/// Lines one run takes at most. It bounds how long one client's run holds
/// the state lock (each line costs what it would cost alone, less the
/// queueing) and keeps a run's messages on the stack most of the time.
const MAX_RUN_LINES: usize = 32;

/// Lines that make a run: the same command to the same target, each
/// with text and nothing else (see [`text_start`]).
pub(super) struct MessageRun {
    command: &'static str,
    lines: SmallVec<[BytesMut; 8]>,
    /// Where the target lies in every line.
    target: Range<usize>,
    /// Where each line's text starts.
    text_starts: SmallVec<[usize; 8]>,
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
        // Lines are told apart by their bytes: a lone message is not looked
        // at twice, and the lines of a run are never parsed as a whole.
        let Some((command, target, first_text)) = self.run_start(session, &first) else {
            return Ok(Gathered::Alone(Frame::Line(first)));
        };
        let prefix_len = target.end + 1;
        let mut lines: SmallVec<[BytesMut; 8]> = smallvec![first];
        let mut text_starts: SmallVec<[usize; 8]> = smallvec![first_text];
        let mut after = After::Nothing;
        while lines.len() < MAX_RUN_LINES && self.buffer.starts_with(&lines[0][..prefix_len]) {
            match self.next_judged(session)? {
                Judged::Ready(Frame::Line(line)) => {
                    let start = line
                        .starts_with(&lines[0][..prefix_len])
                        .then(|| text_start(&line, prefix_len))
                        .flatten();
                    let Some(start) = start else {
                        after = After::Line(Frame::Line(line));
                        break;
                    };
                    lines.push(line);
                    text_starts.push(start);
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
        let run = MessageRun {
            command,
            lines,
            target,
            text_starts,
        };
        Ok(Gathered::Run(run, after))
    }

    /// `first`'s command, where its target lies and where its text
    /// starts, if it starts a run: it may be part of one, and the buffered
    /// input goes on with its command and target.
    fn run_start(
        &self,
        session: &Session,
        first: &[u8],
    ) -> Option<(&'static str, Range<usize>, usize)> {
        let (command, target) = run_target(first)?;
        let prefix_len = target.end + 1;
        if !session.registered || !self.buffer.starts_with(&first[..prefix_len]) {
            return None;
        }
        let target_name = std::str::from_utf8(&first[target.clone()]).ok()?;
        if !commands::may_run(command, target_name) {
            return None;
        }
        Some((command, target, text_start(first, prefix_len)?))
    }
}

impl MessageRun {
    pub(super) fn relay(&self, server: &std::sync::Arc<Server>, session: &mut Session) -> Flow {
        let (first, command) = (&self.lines[0], self.command);
        // Checked as UTF-8 when the run was taken (`run_start`,
        // `text_start`): checking the same bytes again cannot fail.
        let target = std::str::from_utf8(&first[self.target.clone()]).unwrap_or_default();
        let texts: SmallVec<[&str; 8]> = self
            .lines
            .iter()
            .zip(&self.text_starts)
            .filter_map(|(line, &start)| std::str::from_utf8(&line[start..]).ok())
            .collect();
        debug_assert_eq!(texts.len(), self.lines.len());
        debug!(
            client = session.id,
            command,
            lines = texts.len(),
            "received a run"
        );
        commands::relay_run(server, session, command, target, &texts)
    }
}

/// The command of `line`'s `PRIVMSG target ` (or `NOTICE target `) and
/// where its target lies: the start every line of its run repeats byte for
/// byte. `None` if it cannot start a run.
fn run_target(line: &[u8]) -> Option<(&'static str, Range<usize>)> {
    let command = ["PRIVMSG", "NOTICE"].into_iter().find(|command| {
        line.starts_with(command.as_bytes()) && line.get(command.len()) == Some(&b' ')
    })?;
    let target_start = command.len() + 1;
    let target_len = memchr::memchr(b' ', &line[target_start..])?;
    Some((command, target_start..target_start + target_len))
}

/// Where the text of `line` starts, after its `prefix_len` bytes of
/// command and target, if it is a message a run can take: one more
/// parameter, not empty, in UTF-8. As the parser reads it, that is a
/// trailing parameter (`:text`) or a middle one without spaces. Stricter
/// than the parser where they differ (`text ` with a space after it goes
/// alone): what a run takes is exactly what the parser makes of it.
fn text_start(line: &[u8], prefix_len: usize) -> Option<usize> {
    let rest = line.get(prefix_len..)?;
    // Refused by the parser anywhere in a line; a run never takes them.
    if memchr::memchr3(b'\0', b'\r', b'\n', line).is_some() || std::str::from_utf8(rest).is_err() {
        return None;
    }
    match rest.strip_prefix(b":") {
        Some(text) if !text.is_empty() => Some(prefix_len + 1),
        Some(_) => None,
        None if !rest.is_empty() && !rest.contains(&b' ') => Some(prefix_len),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::parse_message;

    /// What a run makes of `line` (its target and text), checked against
    /// what the parser makes of it.
    fn as_member(line: &str) -> Option<(String, String)> {
        let (command, target) = run_target(line.as_bytes())?;
        let name = &line[target.clone()];
        if !commands::may_run(command, name) {
            return None;
        }
        let text = &line[text_start(line.as_bytes(), target.end + 1)?..];
        let parsed = parse_message(line).expect("a run's line parses");
        assert_eq!(parsed.command, command, "{line}");
        assert_eq!(parsed.params[..], [name, text], "{line}");
        assert!(parsed.tags.is_empty() && parsed.source.is_none(), "{line}");
        Some((name.to_owned(), text.to_owned()))
    }

    #[test]
    fn a_run_takes_one_text_to_one_target_as_the_parser_reads_it() {
        let member = |target: &str, text: &str| Some((target.to_owned(), text.to_owned()));
        assert_eq!(as_member("PRIVMSG #c :hi there"), member("#c", "hi there"));
        assert_eq!(as_member("NOTICE #c hi"), member("#c", "hi"));
        assert_eq!(as_member("PRIVMSG nick :hi"), member("nick", "hi"));
        assert_eq!(as_member("PRIVMSG #c ::-)"), member("#c", ":-)"));
        assert_eq!(
            as_member("PRIVMSG #c :caf\u{e9}"),
            member("#c", "caf\u{e9}")
        );
    }

    #[test]
    fn a_run_leaves_other_lines_alone() {
        for line in [
            "PRIVMSG #c",
            "PRIVMSG #c :",
            "PRIVMSG #c ",
            "PRIVMSG #c a b",
            "PRIVMSG #c hi ",
            "PRIVMSG  #c :hi",
            "PRIVMSG #a,#b :hi",
            "PRIVMSG @#c :hi",
            "PRIVMSG NickServ :IDENTIFY pw",
            "PRIVMSG :x :y",
            "PRIVMSG :x y",
            "privmsg #c :hi",
            "TAGMSG #c",
            "@+typing=active PRIVMSG #c :hi",
            ":src PRIVMSG #c :hi",
            "PRIVMSG #c :a\rb",
            "PRIVMSG #c :a\0b",
        ] {
            assert_eq!(as_member(line), None, "{line:?}");
        }
        let invalid_utf8 = b"PRIVMSG #c :\xff";
        assert_eq!(text_start(invalid_utf8, 11), None);
    }
}
