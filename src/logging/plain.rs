//! The format of log lines written to a file or a pipe: the stock
//! `tracing_subscriber` line without colour, made for less. Two things
//! differ: the time has milliseconds, not microseconds, and spans are not
//! shown (the server opens none).
//!
//! The stock formatter costs about 7,500 instructions a line (callgrind):
//! it formats the date from scratch, and paints every field name and value
//! through `nu_ansi_term` even with colour off. A client logs three lines
//! (connected, registered, disconnected), and they came to 30% of the
//! server's own instructions in `parlor-bench connect`. This one formats the
//! date once a second per thread (`tags::format_time`) and writes fields
//! straight through: half the instructions per line.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::proto::tags::format_time;

/// `2026-11-24T05:20:00.123Z  INFO parlor::server::connection: connected
/// client=5 peer=127.0.0.1:40000`: time (UTC, milliseconds), level, target,
/// the message, then each field as `name=value`, strings quoted.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainLines;

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let time = format_time(now_ms);
        // Only ASCII digits and punctuation are ever put in it.
        writer.write_str(std::str::from_utf8(&time).map_err(|_| fmt::Error)?)?;
        // A record from the `log` crate (sqlx's, rustls's) carries its real
        // target in fields of its own; the stock formatter shows it so too.
        let from_log = event.normalized_metadata();
        let metadata = from_log.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str(level_column(metadata.level()))?;
        writer.write_str(metadata.target())?;
        writer.write_char(':')?;
        let mut fields = PlainFields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The level right-aligned in five columns, between single spaces.
fn level_column(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

struct PlainFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl PlainFields<'_, '_> {
    fn put(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_ok() && !field.name().starts_with("log.") {
            let mut escaping = Escaping(&mut *self.writer);
            self.result = match field.name() {
                "message" => write!(escaping, " {value}"),
                name => write!(escaping, " {}={value}", name.trim_start_matches("r#")),
            };
        }
    }
}

/// Writes control characters as `\u{1b}`, as `{:?}` does: a value a client
/// chose (a quit reason, a message text) can then neither start a line of
/// its own in the log nor send escape sequences to a terminal reading it.
struct Escaping<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(|c: char| c.is_control()) {
            self.0.write_str(&rest[..at])?;
            let control = rest[at..].chars().next().unwrap_or_default();
            write!(self.0, "\\u{{{:x}}}", control as u32)?;
            rest = &rest[at + control.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

impl Visit for PlainFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.put(field, format_args!("{value}"));
        } else {
            self.put(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::tests::Shelf;

    fn logged(event: impl FnOnce()) -> String {
        let shelf = Shelf::default();
        let writer = shelf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .event_format(PlainLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        shelf.text()
    }

    /// The line without its time, which is checked on its own.
    fn after_time(line: &str) -> &str {
        &line["2026-11-24T05:20:00.123Z".len()..]
    }

    #[test]
    fn a_line_has_the_time_level_target_message_and_fields() {
        let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let before = SystemTime::now();
        let text = logged(|| tracing::info!(client = 5u64, %peer, "connected"));
        let after = SystemTime::now();
        assert_eq!(
            after_time(&text),
            "  INFO parlor::logging::plain::tests: connected client=5 peer=127.0.0.1:40000\n"
        );
        let stamp = crate::proto::tags::parse_time(&text[..24]).expect("a time tag's format");
        let ms = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(ms(before) <= stamp && stamp <= ms(after), "{text}");
    }

    #[test]
    fn control_characters_from_any_value_are_escaped() {
        let reason = "bye\r\n2026-01-01T00:00:00.000Z  INFO fake: line\x1b[2J";
        let nick = "ni\x07ck";
        let text = logged(|| tracing::info!(%nick, reason, "left: {reason}"));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
        assert_eq!(
            after_time(&text),
            "  INFO parlor::logging::plain::tests: left: bye\\u{d}\\u{a}2026-01-01T00:00:00.000Z  \
             INFO fake: line\\u{1b}[2J nick=ni\\u{7}ck reason=\"bye\\r\\n2026-01-01T00:00:00.000Z  \
             INFO fake: line\\u{1b}[2J\"\n"
        );
    }

    #[test]
    fn a_record_from_the_log_crate_shows_its_own_target() {
        let record = log::Record::builder()
            .level(log::Level::Warn)
            .target("sqlx::pool")
            .args(format_args!("slow acquire"))
            .build();
        let text = logged(|| tracing_log::format_trace(&record).unwrap());
        assert_eq!(after_time(&text), "  WARN sqlx::pool: slow acquire\n");
    }

    #[test]
    fn strings_are_quoted_and_every_level_lines_up() {
        let reason = "Ping timeout: 120 seconds";
        let text = logged(|| {
            tracing::warn!(reason, "disconnected");
            tracing::error!(r#type = "disk", "cannot write");
            tracing::debug!(lines = 3, ready = true);
            tracing::trace!("done");
        });
        let lines: Vec<&str> = text.lines().map(after_time).collect();
        assert_eq!(
            lines,
            [
                "  WARN parlor::logging::plain::tests: disconnected reason=\"Ping timeout: 120 seconds\"",
                " ERROR parlor::logging::plain::tests: cannot write type=\"disk\"",
                " DEBUG parlor::logging::plain::tests: lines=3 ready=true",
                " TRACE parlor::logging::plain::tests: done",
            ]
        );
    }
}
