//! Inputs the fuzz targets (`fuzz/`) found to break an invariant, kept as
//! tests so that the bug stays fixed. Each test names its target; the input
//! itself is also in that target's seed corpus (`fuzz/seeds/TARGET/crash-…`).

use parlor::proto::parse_message;
use parlor::proto::serialize::serialize_message;
use parlor::Config;

/// codec_parser: `@;=; cd` parsed to a tag with an empty key, which the
/// serializer wrote as `@ cd`, a line that does not parse.
#[test]
fn a_tag_with_an_empty_key_survives_a_round_trip() {
    for line in ["@;=; cd", "@= PING x", "@=v;a=b PING x"] {
        let message = parse_message(line).unwrap();
        assert!(
            message.tags.iter().all(|tag| !tag.key.is_empty()),
            "{line:?} gave {message:?}"
        );
        let written = serialize_message(&message);
        let reparsed = parse_message(&written).map(|m| format!("{m:?}"));
        assert_eq!(
            reparsed,
            Ok(format!("{message:?}")),
            "{line:?} -> {written:?}"
        );
    }
}

/// config: an Argon2 parallelism near `u32::MAX` overflowed inside
/// `argon2::Params::new` during validation (a panic wherever overflow is
/// checked) instead of being refused with the key's name.
#[test]
fn a_huge_argon2_parallelism_is_refused_by_name() {
    for parallelism in [u32::MAX, 1 << 29, 1 << 24] {
        let text = format!("[accounts]\nargon2_parallelism = {parallelism}\n");
        let error = Config::from_toml_str(&text, "test.toml").unwrap_err();
        assert!(
            error.to_string().contains("accounts.argon2_parallelism"),
            "{error}"
        );
    }
}

/// config: a MOTD holding NUL was accepted, and each of its lines is sent
/// to clients, where NUL or a bare CR breaks the line. The same holds for
/// the other texts clients are shown.
#[test]
fn texts_shown_to_clients_cannot_break_a_line() {
    let cases = [
        ("server.motd", "[server]\nmotd = \"a\\u0000b\"\n"),
        ("server.motd", "[server]\nmotd = \"a\\rb\"\n"),
        ("server.description", "[server]\ndescription = \"a\\nb\"\n"),
        ("server.network", "[server]\nnetwork = \"Net\\r\\nwork\"\n"),
        ("admin.location", "[admin]\nlocation = \"a\\u0000\"\n"),
        ("admin.contact", "[admin]\ncontact = \"a\\rb\"\n"),
    ];
    for (key, text) in cases {
        let error = Config::from_toml_str(text, "test.toml").unwrap_err();
        assert!(error.to_string().contains(key), "{text:?}: {error}");
    }
    // A MOTD's lines may end in CRLF.
    let config = Config::from_toml_str("[server]\nmotd = \"a\\r\\nb\\n\"\n", "t").unwrap();
    assert_eq!(config.motd_lines().unwrap(), ["a", "b"]);
}

/// codec_parser: once any printable word could be a command, `@;=Bo @ x`
/// (tags that all drop, then the word `@`) parsed to a message whose line,
/// written back, starts with `@` and so reads as a tag section.
#[test]
fn a_command_word_cannot_start_like_a_tag_section() {
    for line in ["@;=Bo @ ;-oo", "@; @x a", ":n!u@h @x a"] {
        if let Ok(message) = parse_message(line) {
            let written = serialize_message(&message);
            let reparsed = parse_message(&written).map(|m| format!("{m:?}"));
            assert_eq!(
                reparsed,
                Ok(format!("{message:?}")),
                "{line:?} -> {written:?}"
            );
            assert!(!message.command.starts_with('@'), "{line:?}: {message:?}");
        }
    }
}
