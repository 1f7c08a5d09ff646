//! A nom parser for one IRC line, following the grammar of the Modern IRC
//! client protocol and the IRCv3 message-tags specification.
//!
//! A parsed [`Message`] borrows from the line it was read from; tag values
//! are only copied when they contain escapes.

use std::borrow::Cow;

use nom::bytes::complete::{take_till, take_till1, take_while, take_while1};
use nom::character::complete::char;
use nom::combinator::opt;
use nom::sequence::{preceded, terminated};
use nom::{IResult, Parser};
use smallvec::SmallVec;

/// One IRCv3 message tag. `value` is already unescaped; a tag sent without
/// a value (or with an empty one) has an empty value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<'a> {
    pub key: &'a str,
    pub value: Cow<'a, str>,
}

/// A parsed IRC message borrowing from its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub tags: SmallVec<[Tag<'a>; 2]>,
    pub source: Option<&'a str>,
    pub command: &'a str,
    pub params: SmallVec<[&'a str; 8]>,
}

impl<'a> Message<'a> {
    /// The value of a tag; when a key repeats, the last occurrence wins, as
    /// the message-tags specification requires.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .rev()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_ref())
    }

    /// Parameter `index`, or `None` when the message has fewer.
    pub fn param(&self, index: usize) -> Option<&'a str> {
        self.params.get(index).copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message has no command")]
    NoCommand,
    #[error("malformed message")]
    Malformed,
    #[error("NUL, CR and LF are not allowed inside a message")]
    ForbiddenCharacter,
}

fn is_space(c: char) -> bool {
    c == ' '
}

fn spaces(input: &str) -> IResult<&str, &str> {
    take_while1(is_space)(input)
}

/// `@tag1=value;tag2 ` — the raw tag section without the `@`.
fn tag_section(input: &str) -> IResult<&str, &str> {
    terminated(preceded(char('@'), take_till1(is_space)), spaces).parse(input)
}

/// `:nick!user@host ` — the source without its colon.
fn source(input: &str) -> IResult<&str, &str> {
    terminated(
        preceded(char(':'), take_till1(is_space)),
        take_while(is_space),
    )
    .parse(input)
}

fn command(input: &str) -> IResult<&str, &str> {
    take_till1(is_space)(input)
}

/// Whether `word` can stand as a command: any token of printable
/// characters. The grammar only has letters and three-digit numerics, but a
/// word such as `FOO_BAR` is a command the server does not know (421), not
/// a line it cannot read; only control characters, or a colon or `@`
/// where the command starts, leave no command to name. (A line that starts
/// with `@` has tags, so a command starting with one could not be written
/// back without a source.)
fn is_command_word(word: &str) -> bool {
    if word.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return true;
    }
    !word.starts_with([':', '@']) && !word.chars().any(char::is_control)
}

fn unescape_tag_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        // A backslash at the very end is dropped; an unknown escape keeps
        // the escaped character (message-tags "Escaping values").
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// A tag without a key (`@=v`) is dropped like an empty item (`@;`): the
/// grammar has no such tag, and kept it would be written back as `@ `,
/// which does not parse.
fn split_tags(raw: &str) -> SmallVec<[Tag<'_>; 2]> {
    raw.split(';')
        .filter_map(|item| {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            (!key.is_empty()).then(|| Tag {
                key,
                value: unescape_tag_value(value),
            })
        })
        .collect()
}

/// Parses one line (without its line ending).
pub fn parse_message(line: &str) -> Result<Message<'_>, ParseError> {
    // Relayed as they are, these would let a sender end a line early and
    // forge the next one in other people's clients.
    // Bytes, not chars: the check runs on every line, and decoding UTF-8
    // char by char made it the costliest part of parsing.
    if memchr::memchr3(b'\0', b'\r', b'\n', line.as_bytes()).is_some() {
        return Err(ParseError::ForbiddenCharacter);
    }
    let line = line.trim_start_matches(' ');
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (rest, raw_tags) = if line.starts_with('@') {
        let (rest, raw) = tag_section(line).map_err(|_| ParseError::Malformed)?;
        (rest, Some(raw))
    } else {
        (line, None)
    };
    let (rest, source) = opt(source).parse(rest).map_err(|_| ParseError::Malformed)?;
    let (mut rest, command) = command(rest).map_err(|_| ParseError::NoCommand)?;
    if !is_command_word(command) {
        return Err(ParseError::Malformed);
    }

    let mut params = SmallVec::new();
    while let Ok((after_spaces, _)) = spaces(rest) {
        if let Some(trailing) = after_spaces.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        let (after_param, middle) =
            take_till::<_, _, nom::error::Error<&str>>(is_space)(after_spaces)
                .unwrap_or(("", after_spaces));
        if middle.is_empty() {
            // Only spaces were left: trailing whitespace is not a parameter.
            break;
        }
        params.push(middle);
        rest = after_param;
    }

    Ok(Message {
        tags: raw_tags.map(split_tags).unwrap_or_default(),
        source,
        command,
        params,
    })
}

/// The parts of a `nick!user@host` source. Missing parts are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub nick: Option<&'a str>,
    pub user: Option<&'a str>,
    pub host: Option<&'a str>,
}

impl<'a> Source<'a> {
    pub fn parse(source: &'a str) -> Source<'a> {
        let non_empty = |s: &'a str| (!s.is_empty()).then_some(s);
        let (rest, host) = match source.split_once('@') {
            Some((rest, host)) => (rest, non_empty(host)),
            None => (source, None),
        };
        let (nick, user) = match rest.split_once('!') {
            Some((nick, user)) => (nick, non_empty(user)),
            None => (rest, None),
        };
        Source {
            nick: non_empty(nick),
            user,
            host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_source_command_and_trailing() {
        let msg = parse_message("@a=b\\sc;d :n!u@h PRIVMSG #chan :hello world").unwrap();
        assert_eq!(msg.tag("a"), Some("b c"));
        assert_eq!(msg.tag("d"), Some(""));
        assert_eq!(msg.source, Some("n!u@h"));
        assert_eq!(msg.command, "PRIVMSG");
        assert_eq!(msg.params.as_slice(), ["#chan", "hello world"]);
    }

    #[test]
    fn tolerates_leading_and_repeated_spaces() {
        let msg = parse_message("  JOIN   #a  ").unwrap();
        assert_eq!(msg.command, "JOIN");
        assert_eq!(msg.params.as_slice(), ["#a"]);
    }

    #[test]
    fn any_printable_word_is_a_command() {
        for word in ["FOO_BAR", "X-Y", "PRIV#MSG", "caf\u{e9}", "x@", "001"] {
            let line = format!(":n!u@h {word} a :b c");
            let msg = parse_message(&line).unwrap();
            assert_eq!(
                (msg.command, msg.params.as_slice()),
                (word, &["a", "b c"][..])
            );
        }
    }

    #[test]
    fn rejects_lines_without_a_command() {
        assert_eq!(parse_message(""), Err(ParseError::Empty));
        assert_eq!(parse_message(":source"), Err(ParseError::NoCommand));
        assert_eq!(parse_message("@tags"), Err(ParseError::Malformed));
        assert_eq!(parse_message("PRIV\x01MSG x"), Err(ParseError::Malformed));
        assert_eq!(parse_message("PRIV\u{85}MSG x"), Err(ParseError::Malformed));
        assert_eq!(parse_message(":src :PRIVMSG x"), Err(ParseError::Malformed));
        assert_eq!(parse_message(":src @x y"), Err(ParseError::Malformed));
        assert_eq!(
            parse_message("PRIVMSG #x :hi\r:evil PRIVMSG #x :forged"),
            Err(ParseError::ForbiddenCharacter)
        );
        assert_eq!(
            parse_message("PRIVMSG #x :a\0b"),
            Err(ParseError::ForbiddenCharacter)
        );
    }
}
