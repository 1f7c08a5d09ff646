//! Arbitrary bytes through the codec and the parser, as a client's socket
//! would deliver them.
//!
//! Beyond "no panic", it checks what the rest of the server relies on:
//! - framing does not depend on how the bytes were cut into reads (the
//!   first input byte picks the read size), so a client cannot change what
//!   a line means by timing its writes;
//! - every line the codec hands on is within the limits and holds no line
//!   ending;
//! - a parsed message has the shape handlers assume (a command that is
//!   one printable word, middle parameters that are single non-empty
//!   words), and
//!   what the serializer writes for it parses back to the same message;
//! - the parameter parsers that read client text (timestamps, msgids,
//!   masks) never panic, and a timestamp or msgid read back from what the
//!   server writes is the same value.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use parlor::casemap::CaseMapping;
use parlor::proto::codec::{Frame, LineCodec, MAX_BODY_BYTES, MAX_TAG_BYTES};
use parlor::proto::mask::{normalize_ban_mask, wildcard_match};
use parlor::proto::serialize::serialize_message;
use parlor::proto::tags::{format_time, parse_time, MessageId};
use parlor::proto::{parse_message, Message, Source};
use tokio_util::codec::Decoder;

/// The first millisecond of the year 10000: `format_time` writes four-digit
/// years, so only times before it can be written and read back.
const YEAR_10000_MS: u64 = 253_402_300_800_000;

fuzz_target!(|data: &[u8]| {
    let Some((&read_size, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, input.len().max(1));
    let in_reads = decode(input, usize::from(read_size) + 1);
    assert_eq!(whole, in_reads, "framing changed with the read size");
    for frame in &whole {
        if let Frame::Line(line) = frame {
            check_line(line);
        }
    }
});

/// Frames `input` delivered `read_size` bytes at a time, then at EOF, the
/// way a connection calls the codec.
fn decode(input: &[u8], read_size: usize) -> Vec<Frame> {
    let mut codec = LineCodec::default();
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for read in input.chunks(read_size) {
        buffer.extend_from_slice(read);
        while let Some(frame) = codec.decode(&mut buffer).expect("decoding never fails") {
            frames.push(frame);
        }
    }
    while let Some(frame) = codec.decode_eof(&mut buffer).expect("decoding never fails") {
        frames.push(frame);
    }
    frames
}

fn check_line(line: &[u8]) {
    assert!(!line.contains(&b'\n'), "a line holds its newline");
    assert!(
        !line.iter().all(|&b| b == b' '),
        "a blank line was handed on"
    );
    let (tags, body) = match (line.first(), line.iter().position(|&b| b == b' ')) {
        (Some(b'@'), Some(space)) => (space + 1, line.len() - space - 1),
        (Some(b'@'), None) => (line.len(), 0),
        _ => (0, line.len()),
    };
    assert!(
        tags <= MAX_TAG_BYTES && body + 2 <= MAX_BODY_BYTES,
        "overlong line"
    );

    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let Ok(message) = parse_message(text) else {
        return;
    };
    check_shape(&message);
    check_round_trip(&message, text);
    check_parameter_parsers(&message);
}

/// What the serializer writes for `message` parses back to it.
fn check_round_trip(message: &Message<'_>, text: &str) {
    let written = serialize_message(message);
    let reparsed = parse_message(&written)
        .unwrap_or_else(|e| panic!("{written:?}, written for {message:?}, does not parse: {e}"));
    assert_eq!(
        parts(&reparsed),
        parts(message),
        "{text:?} was written as {written:?}"
    );
}

type Parts<'m> = (
    Vec<(&'m str, &'m str)>,
    Option<&'m str>,
    &'m str,
    Vec<&'m str>,
);

/// A message as plain slices, so that two messages borrowing from
/// different lines compare (`Message` itself only compares with a message
/// of the same lifetime).
fn parts<'m>(message: &'m Message<'_>) -> Parts<'m> {
    let tags = message
        .tags
        .iter()
        .map(|t| (t.key, t.value.as_ref()))
        .collect();
    let params = message.params.to_vec();
    (tags, message.source, message.command, params)
}

fn check_shape(message: &Message<'_>) {
    // Any printable word is a command (unknown ones get 421), but never
    // one that would read as a source, or hold a space or control.
    let command = message.command;
    assert!(!command.is_empty() && !command.starts_with(':'));
    assert!(!command.contains(' ') && !command.chars().any(char::is_control));
    if let Some(source) = message.source {
        assert!(!source.is_empty() && !source.contains(' '));
        let _ = Source::parse(source);
    }
    if let Some((_, middle)) = message.params.split_last() {
        for param in middle {
            assert!(!param.is_empty() && !param.contains(' ') && !param.starts_with(':'));
        }
    }
    for tag in &message.tags {
        assert!(!tag.key.contains([';', ' ', '=']), "tag key {:?}", tag.key);
    }
}

fn check_parameter_parsers(message: &Message<'_>) {
    for param in &message.params {
        // CHATHISTORY bounds: `timestamp=…` and `msgid=…`.
        let value = param.split_once('=').map_or(*param, |(_, value)| value);
        if let Some(time_ms) = parse_time(value) {
            if time_ms < YEAR_10000_MS {
                let written = format_time(time_ms);
                let written = std::str::from_utf8(&written).expect("time is ASCII");
                assert_eq!(parse_time(written), Some(time_ms), "{value:?} -> {written}");
            }
        }
        if let Some(id) = MessageId::decode(value) {
            let written = id.encode();
            let written = std::str::from_utf8(&written).expect("ids are ASCII");
            assert_eq!(MessageId::decode(written).map(|d| d.0), Some(id.0));
        }
    }
    // Bans, WHO and LIST match client masks against client text, folded.
    if let [mask, text, ..] = message.params.as_slice() {
        for casemapping in [CaseMapping::Rfc1459, CaseMapping::Ascii] {
            let mask = casemapping.fold(&normalize_ban_mask(mask));
            let text = casemapping.fold(text);
            let _ = wildcard_match(&mask, &text);
            assert!(wildcard_match("*", &text));
            assert!(wildcard_match(&text.replace(['*', '?'], "?"), &text));
        }
    }
}
