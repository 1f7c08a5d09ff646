//! `parlor logs export`: a channel's (or a conversation's) history from the
//! database, as readable text or as one JSON object per line, whether the
//! server is running or not.

use std::io::Write;

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::proto::tags::{self, MessageId};
use crate::proto::{parse_message, Message};
use crate::server::history::direct_key;
use crate::store::{Kinds, Store, StoredMessage};

/// Rows read per query.
const PAGE: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Jsonl,
}

/// What to export: `target` is a channel name, or two account names
/// joined by `+` for their direct messages (`alice+bob`).
pub struct Export {
    pub target: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub format: Format,
}

/// Writes the export to `out`; returns how many lines were written.
/// Errors are messages for the admin.
pub async fn run(config: &Config, export: Export, out: &mut impl Write) -> Result<u64, String> {
    let since = export.since.as_deref().map(parse_bound).transpose()?;
    let until = export.until.as_deref().map(parse_bound).transpose()?;
    let fold = |name: &str| config.server.casemapping.fold(name);
    let target = match export.target.split_once('+') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => direct_key(&fold(a), &fold(b)),
        _ if export.target.starts_with(['#', '&']) => fold(&export.target),
        _ => {
            return Err(format!(
                "{:?} is not a channel (#name) or two accounts (alice+bob)",
                export.target
            ))
        }
    };
    let store = Store::open(&config.server.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    let result = write_all(&store, &target, since, until, export.format, out).await;
    store.close().await;
    result
}

async fn write_all(
    store: &Store,
    target: &str,
    since: Option<u64>,
    until: Option<u64>,
    format: Format,
    out: &mut impl Write,
) -> Result<u64, String> {
    // Ids are times shifted left by 16 bits (see `MessageId`).
    let mut after = since.map_or(0, |ms| (ms << 16).saturating_sub(1));
    let before = until.map_or(u64::MAX, |ms| ms << 16);
    let mut written = 0;
    loop {
        let rows = store
            .history_range(target, after, before, PAGE, false, Kinds::Everything)
            .await
            .map_err(|e| e.to_string())?;
        for row in &rows {
            let line = match format {
                Format::Text => text_line(row),
                Format::Jsonl => json_line(row),
            };
            if let Some(line) = line {
                writeln!(out, "{line}").map_err(|e| format!("cannot write: {e}"))?;
                written += 1;
            }
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => after = last.msgid,
            _ => return Ok(written),
        }
    }
}

/// `2026-11-23`, or a full `2026-11-23T16:20:00.000Z`, in milliseconds.
fn parse_bound(text: &str) -> Result<u64, String> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00.000Z")
    } else {
        text.to_owned()
    };
    tags::parse_time(&full).ok_or_else(|| {
        format!("{text:?} is not a date (2026-11-23) or a time (2026-11-23T16:20:00Z)")
    })
}

fn nick_of<'a>(message: &Message<'a>) -> &'a str {
    let source = message.source.unwrap_or("*");
    source.split('!').next().unwrap_or(source)
}

/// `[2026-11-23 16:20:00] <alice> hello`, as a log reader expects.
fn text_line(row: &StoredMessage) -> Option<String> {
    let message = parse_message(&row.line).ok()?;
    let time = tags::format_time(row.time_ms);
    let time = std::str::from_utf8(&time[..19]).ok()?.replace('T', " ");
    let nick = nick_of(&message);
    let param = |index: usize| message.param(index).unwrap_or_default();
    let text = match message.command {
        "PRIVMSG" => match param(1).strip_prefix("\u{1}ACTION ") {
            Some(action) => format!("* {nick} {}", action.trim_end_matches('\u{1}')),
            None => format!("<{nick}> {}", param(1)),
        },
        "NOTICE" => format!("-{nick}- {}", param(1)),
        "TAGMSG" => return None,
        "JOIN" => format!("*** {nick} joined {}", param(0)),
        "PART" => format!("*** {nick} left {} ({})", param(0), param(1)),
        "QUIT" => format!("*** {nick} quit ({})", param(0)),
        "KICK" => format!("*** {nick} kicked {} ({})", param(1), param(2)),
        "NICK" => format!("*** {nick} is now known as {}", param(0)),
        "TOPIC" => format!("*** {nick} set the topic to: {}", param(1)),
        "MODE" => format!("*** {nick} set mode {}", message.params[1..].join(" ")),
        other => format!("*** {nick} {other} {}", message.params.join(" ")),
    };
    Some(format!("[{time}] {text}"))
}

/// One JSON object: msgid, time, command, source, account, params and the
/// client-only tags.
fn json_line(row: &StoredMessage) -> Option<String> {
    let message = parse_message(&row.line).ok()?;
    let time = tags::format_time(row.time_ms);
    let client_tags: Map<String, Value> = message
        .tags
        .iter()
        .filter(|tag| tag.key.starts_with('+'))
        .map(|tag| (tag.key.to_owned(), Value::from(tag.value.as_ref())))
        .collect();
    let value = json!({
        "msgid": String::from_utf8_lossy(&MessageId(row.msgid).encode()),
        "time": String::from_utf8_lossy(&time),
        "command": message.command,
        "source": message.source,
        "account": message.tag("account"),
        "params": message.params.iter().collect::<Vec<_>>(),
        "tags": client_tags,
    });
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str) -> StoredMessage {
        StoredMessage {
            msgid: 1_700_000_000_000 << 16,
            time_ms: 1_700_000_000_000,
            command: String::new(),
            line: line.to_owned(),
        }
    }

    #[test]
    fn text_lines_read_like_a_log() {
        let cases = [
            (":a!u@h PRIVMSG #c :hello there", "<a> hello there"),
            (":a!u@h PRIVMSG #c :\u{1}ACTION waves\u{1}", "* a waves"),
            (":a!u@h NOTICE #c :note", "-a- note"),
            (":a!u@h JOIN #c", "*** a joined #c"),
            (":a!u@h MODE #c +o b", "*** a set mode +o b"),
        ];
        for (line, text) in cases {
            assert_eq!(
                text_line(&row(line)).unwrap(),
                format!("[2023-11-14 22:13:20] {text}")
            );
        }
        assert_eq!(text_line(&row("@+typing=active :a!u@h TAGMSG #c")), None);
    }

    #[test]
    fn json_lines_carry_the_message_and_its_tags() {
        let line = json_line(&row("@account=acc;+react=:) :a!u@h PRIVMSG #c :hi")).unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(value["account"], "acc");
        assert_eq!(value["params"], json!(["#c", "hi"]));
        assert_eq!(value["tags"], json!({"+react": ":)"}));
        assert_eq!(value["msgid"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn bounds_are_dates_or_times() {
        assert_eq!(parse_bound("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_bound("1970-01-01T00:00:01Z").unwrap(), 1_000);
        assert!(parse_bound("yesterday").is_err());
    }
}
