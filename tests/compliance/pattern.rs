//! Expected lines of the corpus: literal text with `{*}`, `{any:A|B}`,
//! `{=name}` (any run, remembered as `name`) and `{$name}` (what `name`
//! remembered), and the `\xHH` escapes of sent and expected text.

use std::collections::HashMap;

/// What `{=name}` steps remembered in one scenario.
pub type Values = HashMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    /// `{*}`: any run of characters, possibly empty.
    Star,
    /// `{any:A|B|...}`: exactly one of the alternatives.
    Any(Vec<String>),
    /// `{=name}`: any run of characters, remembered as `name`.
    Capture(String),
    /// `{$name}`: exactly what `name` remembered.
    Value(String),
}

#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    tokens: Vec<Token>,
}

/// A value's name: letters, digits and `_`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `{=name}` or `{$name}` at the start of `rest`: the token and what
/// follows it.
fn named_token(rest: &str) -> Option<(Token, &str)> {
    let make: fn(String) -> Token = if rest.starts_with("{=") {
        Token::Capture
    } else if rest.starts_with("{$") {
        Token::Value
    } else {
        return None;
    };
    let end = rest.find('}')?;
    let name = &rest[2..end];
    is_name(name).then(|| (make(name.to_owned()), &rest[end + 1..]))
}

impl Pattern {
    pub fn parse(source: &str) -> Pattern {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{*}") {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
                tokens.push(Token::Star);
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("{any:") {
                if let Some(end) = after.find('}') {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    tokens.push(Token::Any(
                        after[..end].split('|').map(str::to_owned).collect(),
                    ));
                    rest = &after[end + 1..];
                    continue;
                }
            }
            if let Some((token, after)) = named_token(rest) {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
                tokens.push(token);
                rest = after;
                continue;
            }
            let c = rest.chars().next().expect("not empty");
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
        tokens.push(Token::Literal(literal));
        tokens.retain(|t| !matches!(t, Token::Literal(l) if l.is_empty()));
        Pattern {
            source: source.to_owned(),
            tokens,
        }
    }

    /// The `{$name}` values the pattern uses that `values` does not hold.
    pub fn missing_values(&self, values: &Values) -> Vec<String> {
        self.tokens
            .iter()
            .filter_map(|t| match t {
                Token::Value(name) if !values.contains_key(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether `text` matches, with no remembered values.
    pub fn matches(&self, text: &str) -> bool {
        self.captures(text, &Values::new()).is_some()
    }

    /// What the `{=name}` tokens took if `text` matches; `None` if not.
    pub fn captures(&self, text: &str, values: &Values) -> Option<Vec<(String, String)>> {
        /// Each place `text` can be cut, shortest first.
        fn cuts(text: &str) -> impl Iterator<Item = usize> + '_ {
            text.char_indices().map(|(i, _)| i).chain([text.len()])
        }
        fn go(tokens: &[Token], text: &str, values: &Values) -> Option<Vec<(String, String)>> {
            let Some((first, rest)) = tokens.split_first() else {
                return text.is_empty().then(Vec::new);
            };
            match first {
                Token::Literal(l) => go(rest, text.strip_prefix(l.as_str())?, values),
                Token::Star => cuts(text).find_map(|i| go(rest, &text[i..], values)),
                Token::Capture(name) => cuts(text).find_map(|i| {
                    let mut taken = go(rest, &text[i..], values)?;
                    taken.push((name.clone(), text[..i].to_owned()));
                    Some(taken)
                }),
                Token::Value(name) => {
                    let value = values.get(name)?;
                    go(rest, text.strip_prefix(value.as_str())?, values)
                }
                Token::Any(options) => options
                    .iter()
                    .find_map(|o| go(rest, text.strip_prefix(o.as_str())?, values)),
            }
        }
        go(&self.tokens, text, values)
    }
}

/// `text` with each `{$name}` replaced by its value; an error names a
/// value nothing remembered.
pub fn substitute(text: &str, values: &Values) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{$") {
        out.push_str(&rest[..start]);
        match named_token(&rest[start..]) {
            Some((Token::Value(name), after)) => {
                let value = values.get(&name).ok_or_else(|| {
                    format!("no value named {name:?} was remembered ({{={name}}})")
                })?;
                out.push_str(value);
                rest = after;
            }
            _ => {
                out.push_str("{$");
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Decodes `\xHH` escapes; any other backslash is literal.
pub fn unescape(text: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = text.get(i + 2..i + 4).ok_or("`\\x` needs two hex digits")?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape `\\x{hex}`"))?;
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escapes must form UTF-8".to_owned())
}

#[test]
fn patterns_match_as_documented() {
    let p = Pattern::parse(":irc.test 333 a #c a!~a@127.0.0.1 {*}");
    assert!(p.matches(":irc.test 333 a #c a!~a@127.0.0.1 1700000000"));
    assert!(!p.matches(":irc.test 333 a #d a!~a@127.0.0.1 1700000000"));
    let p = Pattern::parse(":irc.test 353 a = #c :{any:@a b|b @a}");
    assert!(p.matches(":irc.test 353 a = #c :b @a"));
    assert!(p.matches(":irc.test 353 a = #c :@a b"));
    assert!(!p.matches(":irc.test 353 a = #c :@a"));
    let p = Pattern::parse("x{*}y{*}z");
    assert!(p.matches("xyz") && p.matches("x1y2z") && !p.matches("x1z"));
    assert!(Pattern::parse("NICK al{ce").matches("NICK al{ce"));
    assert!(Pattern::parse("a {=} {$ b}").matches("a {=} {$ b}"));
    assert_eq!(unescape(r"a\x01b\x20").unwrap(), "a\u{1}b ");
    assert_eq!(unescape(r"back\slash").unwrap(), r"back\slash");
}

#[test]
fn values_are_remembered_and_used() {
    let p = Pattern::parse("@time={=t1};msgid={*} :a PRIVMSG #c :{=text}");
    let taken = p
        .captures(
            "@time=2026-01-01T00:00:00.000Z;msgid=ab :a PRIVMSG #c :hi there",
            &Values::new(),
        )
        .unwrap();
    let values: Values = taken.into_iter().collect();
    assert_eq!(values["t1"], "2026-01-01T00:00:00.000Z");
    assert_eq!(values["text"], "hi there");
    let p = Pattern::parse("TARGETS #c {$t1}");
    assert!(p
        .captures("TARGETS #c 2026-01-01T00:00:00.000Z", &values)
        .is_some());
    assert!(p
        .captures("TARGETS #c 2026-01-01T00:00:00.001Z", &values)
        .is_none());
    assert!(p.missing_values(&values).is_empty());
    assert_eq!(p.missing_values(&Values::new()), ["t1"]);
    assert_eq!(
        substitute("X timestamp={$t1} {$ {$t1}", &values).unwrap(),
        "X timestamp=2026-01-01T00:00:00.000Z {$ 2026-01-01T00:00:00.000Z"
    );
    assert!(substitute("{$nope}", &values).is_err());
}
