//! Runs the public IRC parser test vectors (`irc-parser-tests` 0.0.4, CC0;
//! copied unchanged into `compliance/parser-tests/`) against Parlor's message
//! parser, serializer, source splitter and wildcard matcher.
//!
//! Every test collects all failing cases before asserting, so one run shows
//! the whole picture, and refuses to pass if it ran no cases at all.

use std::borrow::Cow;
use std::collections::BTreeMap;

use parlor::casemap::CaseMapping;
use parlor::proto::mask::wildcard_match;
use parlor::proto::serialize::serialize_message;
use parlor::proto::{parse_message, Message, Source, Tag};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_norway::Value;

const MSG_SPLIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/compliance/parser-tests/msg-split.yaml"
);
const MSG_JOIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/compliance/parser-tests/msg-join.yaml"
);
const USERHOST_SPLIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/compliance/parser-tests/userhost-split.yaml"
);
const MASK_MATCH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/compliance/parser-tests/mask-match.yaml"
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors<T> {
    tests: Vec<T>,
}

/// Reads the `tests` list of one vector file.
fn load<T: DeserializeOwned>(path: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_norway::from_str::<Vectors<T>>(&text)
        .unwrap_or_else(|e| panic!("parsing {path}: {e}"))
        .tests
}

/// Fails the test if no case ran or if any case failed, listing them all.
fn finish(name: &str, ran: usize, failures: &[String]) {
    assert!(ran > 0, "{name}: no test cases were run");
    assert!(
        failures.is_empty(),
        "{name}: {} of {ran} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    println!("{name}: all {ran} cases passed");
}

/// The `atoms` of msg-split and msg-join. Tags keep their file order so that
/// the serializer is fed them in the order the expected strings use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MsgAtoms {
    #[serde(default, deserialize_with = "ordered_tags")]
    tags: Vec<(String, String)>,
    source: Option<String>,
    verb: String,
    #[serde(default)]
    params: Vec<String>,
}

fn ordered_tags<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<(String, String)>, D::Error> {
    serde_norway::Mapping::deserialize(de)?
        .into_iter()
        .map(|pair| match pair {
            (Value::String(key), Value::String(value)) => Ok((key, value)),
            (key, value) => Err(D::Error::custom(format!(
                "tag {key:?}: {value:?} is not a pair of strings"
            ))),
        })
        .collect()
}

/// A message reduced to what the vectors compare: tags as key → value with
/// the last occurrence of a repeated key winning.
#[derive(Debug, PartialEq, Eq)]
struct Atoms {
    tags: BTreeMap<String, String>,
    source: Option<String>,
    verb: String,
    params: Vec<String>,
}

impl Atoms {
    fn expected(atoms: &MsgAtoms) -> Atoms {
        Atoms {
            tags: atoms.tags.iter().cloned().collect(),
            source: atoms.source.clone(),
            verb: atoms.verb.clone(),
            params: atoms.params.clone(),
        }
    }

    fn actual(msg: &Message<'_>) -> Atoms {
        let tags = msg
            .tags
            .iter()
            .map(|tag| {
                let value = msg.tag(tag.key).expect("a key that is present has a value");
                (tag.key.to_owned(), value.to_owned())
            })
            .collect();
        Atoms {
            tags,
            source: msg.source.map(str::to_owned),
            verb: msg.command.to_owned(),
            params: msg.params.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitCase {
    input: String,
    atoms: MsgAtoms,
}

#[test]
fn msg_split() {
    let cases: Vec<SplitCase> = load(MSG_SPLIT);
    let mut failures = Vec::new();
    for case in &cases {
        let expected = Atoms::expected(&case.atoms);
        match parse_message(&case.input) {
            Ok(msg) => {
                let actual = Atoms::actual(&msg);
                if actual != expected {
                    failures.push(format!(
                        "input:    {:?}\nexpected: {expected:?}\nactual:   {actual:?}",
                        case.input
                    ));
                }
            }
            Err(err) => failures.push(format!(
                "input:    {:?}\nexpected: {expected:?}\nactual:   error {err:?}",
                case.input
            )),
        }
    }
    finish("msg-split", cases.len(), &failures);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinCase {
    desc: Option<String>,
    atoms: MsgAtoms,
    matches: Vec<String>,
}

/// A line's tag items in sorted order and the rest of the line, so that two
/// lines differing only in the order of their tags compare equal.
fn sorted_tags(line: &str) -> Option<(Vec<&str>, &str)> {
    let (tags, rest) = line.strip_prefix('@')?.split_once(' ')?;
    let mut items: Vec<&str> = tags.split(';').collect();
    items.sort_unstable();
    Some((items, rest))
}

#[test]
fn msg_join() {
    let cases: Vec<JoinCase> = load(MSG_JOIN);
    let mut failures = Vec::new();
    for case in &cases {
        let atoms = &case.atoms;
        let msg = Message {
            tags: atoms
                .tags
                .iter()
                .map(|(key, value)| Tag {
                    key,
                    value: Cow::Borrowed(value),
                })
                .collect(),
            source: atoms.source.as_deref(),
            command: &atoms.verb,
            params: atoms.params.iter().map(String::as_str).collect(),
        };
        let line = serialize_message(&msg);
        if case.matches.contains(&line) {
            continue;
        }
        let describe = |problem: String| {
            format!(
                "desc:     {}\natoms:    {atoms:?}\nexpected: one of {:?}\nactual:   {line:?}\n{problem}",
                case.desc.as_deref().unwrap_or("(none)"),
                case.matches,
            )
        };
        if atoms.tags.len() < 2 {
            // Without several tags there is no ordering freedom: the output
            // must be one of the listed lines.
            failures.push(describe("output is not one of the matches".to_owned()));
            continue;
        }
        // Several tags may legitimately come out in another order: the line
        // must then be one of the matches up to the order of its tags, and
        // still mean exactly the same message.
        let sorted = sorted_tags(&line);
        if !case
            .matches
            .iter()
            .any(|m| sorted.is_some() && sorted_tags(m) == sorted)
        {
            failures.push(describe(
                "output is not one of the matches, even ignoring tag order".to_owned(),
            ));
        }
        let expected = Atoms::expected(atoms);
        match parse_message(&line) {
            Ok(reparsed) => {
                let actual = Atoms::actual(&reparsed);
                if actual != expected {
                    failures.push(describe(format!(
                        "output parses back to {actual:?}, not {expected:?}"
                    )));
                }
            }
            Err(err) => failures.push(describe(format!("output does not parse back: {err:?}"))),
        };
    }
    finish("msg-join", cases.len(), &failures);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserhostCase {
    source: String,
    atoms: UserhostAtoms,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserhostAtoms {
    nick: Option<String>,
    user: Option<String>,
    host: Option<String>,
}

#[test]
fn userhost_split() {
    let cases: Vec<UserhostCase> = load(USERHOST_SPLIT);
    let mut failures = Vec::new();
    for case in &cases {
        let expected = Source {
            nick: case.atoms.nick.as_deref(),
            user: case.atoms.user.as_deref(),
            host: case.atoms.host.as_deref(),
        };
        let actual = Source::parse(&case.source);
        if actual != expected {
            failures.push(format!(
                "source:   {:?}\nexpected: {expected:?}\nactual:   {actual:?}",
                case.source
            ));
        }
    }
    finish("userhost-split", cases.len(), &failures);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskCase {
    mask: String,
    #[serde(default)]
    matches: Vec<String>,
    #[serde(default)]
    fails: Vec<String>,
}

#[test]
fn mask_match() {
    let cases: Vec<MaskCase> = load(MASK_MATCH);
    let mut failures = Vec::new();
    let mut checks = 0;
    for case in &cases {
        // `wildcard_match` expects casefolded input. The vectors are lower
        // case except those that test case-insensitivity; fold those the way
        // the server folds names before matching.
        let has_upper = |s: &String| s.chars().any(|c| c.is_ascii_uppercase());
        let tests_case = has_upper(&case.mask)
            || case.matches.iter().any(has_upper)
            || case.fails.iter().any(has_upper);
        let prepare = |s: &str| {
            if tests_case {
                CaseMapping::Rfc1459.fold(s)
            } else {
                s.to_owned()
            }
        };
        let mask = prepare(&case.mask);
        let expectations = case
            .matches
            .iter()
            .map(|text| (text, true))
            .chain(case.fails.iter().map(|text| (text, false)));
        for (text, should_match) in expectations {
            checks += 1;
            let actual = wildcard_match(&mask, &prepare(text));
            if actual != should_match {
                failures.push(format!(
                    "mask:     {:?}\ntext:     {text:?}\nexpected: {}\nactual:   {}",
                    case.mask,
                    if should_match { "match" } else { "no match" },
                    if actual { "match" } else { "no match" },
                ));
            }
        }
    }
    finish("mask-match", checks, &failures);
}
