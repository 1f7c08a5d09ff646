//! The config loader, `Config::from_toml_str`, as `parlor check-config`,
//! the start and a REHASH use it: any text must give a config or an error
//! naming the key, never a panic.
//!
//! An input whose first byte is even is TOML text as it stands. Random
//! text is rarely TOML that reaches validation, so an odd first byte makes
//! the rest a list of (key, value) records laid into a table with the
//! schema's own keys and then written as TOML: every key gets values of
//! every type and size.
//!
//! A config that is accepted must keep the promises the server builds on:
//! listen addresses that parse, usable Argon2 parameters (the accounts
//! module `expect`s them), a runtime with at least one thread, and ISUPPORT
//! tokens and texts shown to clients that cannot break a line.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parlor::config::DEFAULT_CONFIG;
use parlor::Config;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        match structured(rest) {
            Some(text) => text,
            None => return,
        }
    };
    match Config::from_toml_str(&text, "fuzz.toml") {
        Ok(config) => check_accepted(&config),
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with("fuzz.toml: "), "{message}");
        }
    }
});

fn check_accepted(config: &Config) {
    assert_eq!(
        config.listen_addrs().len(),
        config.server.listen.len(),
        "an accepted listen address does not parse"
    );
    for cores in 0..4 {
        assert!(config.server.runtime_threads(cores) >= 1);
    }
    let a = &config.accounts;
    assert!(
        argon2::Params::new(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
            None
        )
        .is_ok(),
        "accepted Argon2 parameters are unusable"
    );
    for token in parlor::server::isupport::tokens(config) {
        assert!(
            !token.is_empty()
                && !token.starts_with(':')
                && is_line_safe(&token)
                && !token.contains(' '),
            "ISUPPORT token {token:?}"
        );
    }
    let shown = [
        ("server.description", &config.server.description),
        ("admin.location", &config.admin.location),
        ("admin.contact", &config.admin.contact),
    ];
    for (key, text) in shown {
        assert!(is_line_safe(text), "{key} = {text:?} was accepted");
    }
    if config.server.motd_file.is_empty() {
        for line in config.motd_lines().expect("an inline MOTD needs no file") {
            assert!(is_line_safe(&line), "MOTD line {line:?} was accepted");
        }
    }
}

/// Text that can stand inside one IRC line.
fn is_line_safe(text: &str) -> bool {
    !text.contains(['\0', '\r', '\n'])
}

/// Every key of the schema, dotted, from the embedded defaults, plus a few
/// the schema does not have.
fn keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let defaults: toml::Table = DEFAULT_CONFIG.parse().expect("defaults are TOML");
        let mut keys = Vec::new();
        for (section, table) in &defaults {
            keys.push(section.clone());
            if let Some(table) = table.as_table() {
                keys.extend(table.keys().map(|key| format!("{section}.{key}")));
            }
        }
        keys.extend(
            [
                "oper",
                "history.join_replay_overrides.#parlor",
                "history.join_replay_overrides.parlor",
                "limits.nick_lenght",
                "unknown",
            ]
            .map(String::from),
        );
        keys
    })
}

/// Reads records `[key] [kind] [length] [value bytes…]` into a TOML table.
fn structured(mut input: &[u8]) -> Option<String> {
    let mut table = toml::Table::new();
    while let [key, kind, length, rest @ ..] = input {
        let length = usize::from(*length).min(rest.len());
        let (bytes, after) = rest.split_at(length);
        input = after;
        let key = &keys()[usize::from(*key) % keys().len()];
        insert(&mut table, key, value(*kind, bytes));
    }
    toml::to_string(&table).ok()
}

fn value(kind: u8, bytes: &[u8]) -> toml::Value {
    let text = || String::from_utf8_lossy(bytes).into_owned();
    let integer = || {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        i64::from_le_bytes(word)
    };
    const EDGES: [i64; 12] = [
        0,
        1,
        -1,
        7,
        8,
        4095,
        4096,
        1 << 30,
        u32::MAX as i64,
        u32::MAX as i64 + 1,
        i64::MAX,
        i64::MIN,
    ];
    match kind % 8 {
        0 => toml::Value::Integer(integer()),
        1 => {
            toml::Value::Integer(EDGES[bytes.first().map_or(0, |&b| usize::from(b)) % EDGES.len()])
        }
        2 => toml::Value::String(text()),
        3 => toml::Value::Boolean(bytes.first().is_some_and(|b| b % 2 == 1)),
        4 => toml::Value::Array(
            text()
                .split(',')
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        5 => toml::Value::Float(f64::from_le_bytes({
            let mut word = [0u8; 8];
            let n = bytes.len().min(8);
            word[..n].copy_from_slice(&bytes[..n]);
            word
        })),
        6 => {
            // An [[oper]] entry: a name and a PHC string.
            let text = text();
            let (name, hash) = text.split_once('\0').unwrap_or((&text, ""));
            let mut oper = toml::Table::new();
            oper.insert("name".into(), name.into());
            oper.insert("password_hash".into(), hash.into());
            toml::Value::Array(vec![toml::Value::Table(oper)])
        }
        _ => toml::Value::Table(toml::Table::new()),
    }
}

/// Sets the dotted `key`, making tables on the way (and replacing values
/// that stand where a table is needed).
fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
        }
        Some((first, rest)) => {
            let inner = table
                .entry(first)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !inner.is_table() {
                *inner = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = inner {
                insert(inner, rest, value);
            }
        }
    }
}
