//! Property tests: what the server writes, its own parser reads back as
//! the same message, and so does `irc-proto`, an independent parser.
//!
//! Messages are generated with tags whose values need every escape (`;`,
//! space, `\`, CR, LF, and a value ending in a backslash), client-only and
//! vendored tag keys, sources that are `nick!user@host` masks or server
//! names, middle parameters, and final parameters that are empty, hold
//! spaces or start with a colon. They are written with `LineBuilder` (the
//! way every reply and relay is built), `serialize_message`, and the tag
//! rewriting that happens per recipient (`tags::prepend`, `tags::view`).

use std::str::FromStr;

use bytes::Bytes;
use parlor::proto::serialize::serialize_message;
use parlor::proto::tags::{self, TagMask};
use parlor::proto::{parse_message, LineBuilder, Message};
use proptest::prelude::*;

/// Cases per property: enough to meet every shape many times, few enough
/// that the file runs in about a second.
const CASES: u32 = 1000;

/// A message as generated, before any line is written.
#[derive(Debug, Clone)]
struct Generated {
    tags: Vec<(String, String)>,
    source: Option<String>,
    command: String,
    middles: Vec<String>,
    last: Last,
}

#[derive(Debug, Clone)]
enum Last {
    None,
    /// Written with `LineBuilder::last`: a colon only where needed.
    Shortest(String),
    /// Written with `LineBuilder::trailing`: always a colon.
    Text(String),
}

impl Generated {
    fn params(&self) -> Vec<&str> {
        let mut params: Vec<&str> = self.middles.iter().map(String::as_str).collect();
        match &self.last {
            Last::None => {}
            Last::Shortest(p) | Last::Text(p) => params.push(p),
        }
        params
    }

    /// The line `LineBuilder` writes for it, CRLF included.
    fn build(&self) -> Bytes {
        let tags = self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let builder = LineBuilder::with_tags(tags, self.source.as_deref(), &self.command)
            .params(self.middles.iter().map(String::as_str));
        match &self.last {
            Last::None => builder.finish(),
            Last::Shortest(p) => builder.last(p),
            Last::Text(text) => builder.trailing(text),
        }
    }

    /// Whether `message` is this message, tags in the same order.
    fn assert_is(&self, message: &Message<'_>, line: &str) {
        let tags: Vec<(&str, &str)> = message
            .tags
            .iter()
            .map(|t| (t.key, t.value.as_ref()))
            .collect();
        let expected: Vec<(&str, &str)> = self
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(tags, expected, "tags of {line:?}");
        assert_eq!(message.source, self.source.as_deref(), "source of {line:?}");
        assert_eq!(message.command, self.command, "command of {line:?}");
        assert_eq!(
            message.params.as_slice(),
            self.params(),
            "params of {line:?}"
        );
    }
}

/// Text built from pieces that need escaping in a tag value, with plain
/// and multi-byte characters between them.
fn tag_value() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a", "Z", "9", "é", "😀", "=", ";", " ", "\\", "\r", "\n", "\\s", ":", "\\:",
    ]);
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// `key`, `+key` (client-only) or `vendor.example/key`.
fn tag_key() -> impl Strategy<Value = String> {
    (
        "\\+?",
        "([a-z][a-z0-9-]{0,6}\\.[a-z]{2,4}/)?",
        "[A-Za-z0-9][A-Za-z0-9-]{0,8}",
    )
        .prop_map(|(client, vendor, name)| format!("{client}{vendor}{name}"))
}

fn source() -> impl Strategy<Value = String> {
    let nick = "[A-Za-z\\[\\]\\\\`_^{|}][A-Za-z0-9\\[\\]\\\\`_^{|}-]{0,15}";
    let user = "~?[a-z][a-z0-9]{0,8}";
    let host = prop_oneof![
        "[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,3}",
        "0::[0-9a-f]{1,4}",
        "(user|guest)/[a-z0-9]{1,8}",
    ];
    prop_oneof![
        (nick, user, host).prop_map(|(n, u, h)| format!("{n}!{u}@{h}")),
        "[a-z][a-z0-9-]{0,7}(\\.[a-z][a-z0-9-]{0,7}){1,3}",
    ]
}

/// Commands `irc-proto` keeps as they are (not BATCH: it uppercases the
/// batch type), numerics, and made-up words
/// (`X…`, which no specification defines).
fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "PRIVMSG", "NOTICE", "TAGMSG", "FAIL", "001", "353", "372", "433", "900",
        ])
        .prop_map(String::from),
        "X[A-Z]{2,8}",
    ]
}

/// A middle parameter: one non-empty word that does not start with `:`.
fn middle() -> impl Strategy<Value = String> {
    "[#&+@A-Za-z0-9é*!,.=\\[\\]-][#&+@A-Za-z0-9é*!,.=:\\[\\]-]{0,11}"
}

fn last() -> impl Strategy<Value = Last> {
    let text = prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9é ,:!#=]{1,30}",
        ":[A-Za-z0-9 :]{0,10}",
        " [a-z ]{0,5}",
    ];
    prop_oneof![
        Just(Last::None),
        text.clone().prop_map(Last::Shortest),
        text.prop_map(Last::Text),
    ]
}

fn message() -> impl Strategy<Value = Generated> {
    (
        prop::collection::vec((tag_key(), tag_value()), 0..4),
        prop::option::of(source()),
        command(),
        prop::collection::vec(middle(), 0..6),
        last(),
    )
        .prop_map(|(tags, source, command, middles, last)| Generated {
            tags,
            source,
            command,
            middles,
            last,
        })
}

/// The line without its CRLF, which it must have.
fn text_of(line: &Bytes) -> &str {
    let text = std::str::from_utf8(line).expect("lines are UTF-8");
    text.strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("{text:?} does not end in CRLF"))
}

/// What `irc-proto` reads in `line`, as our parser would see it again:
/// its tags and source, and its own rewrite of the line, parsed by us.
fn check_with_irc_proto(generated: &Generated, line: &str) {
    let theirs = irc_proto::Message::from_str(line)
        .unwrap_or_else(|e| panic!("irc-proto cannot parse {line:?}: {e}"));
    let their_tags: Vec<(String, String)> = theirs
        .tags
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|irc_proto::message::Tag(key, value)| (key, value.unwrap_or_default()))
        .collect();
    assert_eq!(their_tags, generated.tags, "irc-proto's tags of {line:?}");
    assert_eq!(
        theirs.prefix.as_ref().map(ToString::to_string),
        generated.source,
        "irc-proto's source of {line:?}"
    );
    let rewritten = Bytes::from(theirs.to_string());
    let rewritten = text_of(&rewritten);
    let reparsed = parse_message(rewritten)
        .unwrap_or_else(|e| panic!("irc-proto wrote {rewritten:?} for {line:?}: {e}"));
    generated.assert_is(&reparsed, rewritten);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn what_line_builder_writes_parses_back(generated in message()) {
        let line = generated.build();
        let text = text_of(&line);
        let parsed = parse_message(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        generated.assert_is(&parsed, text);

        let written = serialize_message(&parsed);
        let reparsed = parse_message(&written).unwrap_or_else(|e| panic!("{written:?}: {e}"));
        generated.assert_is(&reparsed, &written);

        check_with_irc_proto(&generated, text);
    }

    #[test]
    fn tags_added_for_one_recipient_go_first(
        generated in message(),
        added in prop::collection::vec((tag_key(), tag_value()), 1..3),
    ) {
        let added_refs: Vec<(&str, &str)> = added.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let line = tags::prepend(&generated.build(), &added_refs);
        let text = text_of(&line);
        let mut expected = generated.clone();
        expected.tags = added.iter().cloned().chain(generated.tags.iter().cloned()).collect();
        expected.assert_is(&parse_message(text).unwrap(), text);
        check_with_irc_proto(&expected, text);
    }

    #[test]
    fn each_recipient_sees_the_tags_of_its_capabilities(
        generated in message(),
        server_tags in prop::collection::vec(
            (prop::sample::select(vec!["time", "account", "msgid"]), tag_value()),
            0..3,
        ),
        bits in 0u8..8,
    ) {
        let mut full = generated.clone();
        full.tags.extend(server_tags.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mask = TagMask::from_bits(bits);
        let line = tags::view(&full.build(), mask);
        let text = text_of(&line);
        let mut expected = full.clone();
        expected.tags.retain(|(key, _)| {
            let needs = match key.as_str() {
                "time" => TagMask::TIME,
                "account" => TagMask::ACCOUNT,
                _ => TagMask::MESSAGE_TAGS,
            };
            mask.contains(needs)
        });
        expected.assert_is(&parse_message(text).unwrap(), text);
    }

    /// Escaped values as a client may send them, unknown escapes and a
    /// lone trailing backslash included, read as the message-tags
    /// specification says, by both parsers.
    #[test]
    fn escaped_tag_values_are_read_as_the_specification_says(
        pieces in prop::collection::vec(
            prop::sample::select(vec![
                ("a", "a"), ("é", "é"), ("=", "="), ("\\:", ";"), ("\\s", " "),
                ("\\\\", "\\"), ("\\r", "\r"), ("\\n", "\n"), ("\\x", "x"), ("\\b", "b"),
            ]),
            0..8,
        ),
        lone_backslash in any::<bool>(),
    ) {
        let mut wire: String = pieces.iter().map(|(wire, _)| *wire).collect();
        let value: String = pieces.iter().map(|(_, value)| *value).collect();
        if lone_backslash {
            wire.push('\\');
        }
        let line = format!("@k={wire};z PING x");
        let message = parse_message(&line).unwrap();
        prop_assert_eq!(message.tag("k"), Some(value.as_str()));
        prop_assert_eq!(message.tag("z"), Some(""));
        let theirs = irc_proto::Message::from_str(&line).unwrap();
        let their_value = theirs.tags.unwrap_or_default().into_iter().find(|t| t.0 == "k").and_then(|t| t.1);
        prop_assert_eq!(their_value.as_deref(), Some(value.as_str()));
    }
}
