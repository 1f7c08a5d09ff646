//! The protocol conformance corpus: runs every `compliance/scenarios/*.irc`
//! file, each scenario on a fresh server. The file format is described in
//! `compliance/README.md`.
//!
//! All scenarios run (a few at a time); the test fails at the end with one
//! report per failed scenario naming the file, the scenario, the line, what
//! was expected and what was received. `COMPLIANCE_FILTER=text` runs only
//! the scenarios whose `file/scenario` contains `text`.

mod common;
use common::*;

#[path = "compliance/pattern.rs"]
mod pattern;
use pattern::{substitute, unescape, Pattern, Values};

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the runner waits for one line before calling it missing;
/// shorter than the harness's own limit so the runner reports it.
const LINE_WAIT: Duration = Duration::from_secs(8);
/// Scenarios running at once.
const PARALLEL: usize = 4;

// ---------------------------------------------------------------------------
// Scenario files.

#[derive(Debug, Clone)]
enum Action {
    /// Connect and register with this nick, welcome burst consumed.
    Register(String),
    /// Connect without registering.
    Connect,
    Send(String),
    Expect(Pattern),
    /// Consecutive `<~` lines: the next lines, in any order.
    ExpectUnordered(Vec<(usize, Pattern)>),
    SkipUntil(Pattern),
    Nothing,
    Closed,
}

#[derive(Debug, Clone)]
struct Step {
    line: usize,
    text: String,
    client: String,
    action: Action,
}

#[derive(Debug, Clone)]
struct Scenario {
    file: String,
    name: String,
    config: toml::Table,
    steps: Vec<Step>,
}

impl Scenario {
    fn label(&self) -> String {
        format!("{}/{}", self.file, self.name)
    }
}

/// Tables merge key by key; arrays append (so `[[oper]]` blocks add up);
/// anything else replaces.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (Some(toml::Value::Array(b)), toml::Value::Array(o)) => b.extend(o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn parse_config(file: &str, text: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>()
        .map_err(|e| format!("{file}: invalid `config:` TOML: {e}"))
}

fn parse_file(file: &str, text: &str) -> Result<Vec<Scenario>, String> {
    let mut file_config = String::new();
    let mut scenarios: Vec<(Scenario, String)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim();
        let err = |msg: &str| format!("{file}:{line}: {msg}: {raw}");
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("===") {
            let name = name.trim();
            if name.is_empty() {
                return Err(err("a scenario header needs a name"));
            }
            scenarios.push((
                Scenario {
                    file: file.to_owned(),
                    name: name.to_owned(),
                    config: toml::Table::new(),
                    steps: Vec::new(),
                },
                String::new(),
            ));
            continue;
        }
        if let Some(toml_line) = raw.strip_prefix("config:") {
            let toml_line = toml_line.strip_prefix(' ').unwrap_or(toml_line);
            match scenarios.last_mut() {
                None => writeln!(file_config, "{toml_line}").expect("writing to a String"),
                Some((scenario, _)) if !scenario.steps.is_empty() => {
                    return Err(err("`config:` lines go before the scenario's first step"))
                }
                Some((_, config)) => writeln!(config, "{toml_line}").expect("writing to a String"),
            }
            continue;
        }
        let name_end = raw
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .ok_or_else(|| err("expected `client: ...`, `client> ...` or `client< ...`"))?;
        let (client, rest) = raw.split_at(name_end);
        if client.is_empty() {
            return Err(err("a step starts with a client name"));
        }
        let payload = |marker: &str| -> Result<String, String> {
            let text = &rest[marker.len()..];
            let text = text.strip_prefix(' ').unwrap_or(text);
            unescape(text).map_err(|e| err(&e))
        };
        let action = if let Some(command) = rest.strip_prefix(':') {
            let words: Vec<&str> = command.split_whitespace().collect();
            match words.as_slice() {
                ["register"] => Action::Register(client.to_owned()),
                ["register", nick] => Action::Register((*nick).to_owned()),
                ["connect"] => Action::Connect,
                ["closed"] => Action::Closed,
                _ => return Err(err("unknown client command (register, connect, closed)")),
            }
        } else if rest.starts_with('>') {
            Action::Send(payload(">")?)
        } else if rest.starts_with("<?") {
            Action::SkipUntil(Pattern::parse(&payload("<?")?))
        } else if rest.starts_with("<~") {
            Action::ExpectUnordered(vec![(line, Pattern::parse(&payload("<~")?))])
        } else if rest.starts_with('<') {
            let text = payload("<")?;
            if text.trim() == "(nothing)" {
                Action::Nothing
            } else {
                Action::Expect(Pattern::parse(&text))
            }
        } else {
            return Err(err(
                "expected `client: ...`, `client> ...` or `client< ...`",
            ));
        };
        if scenarios.is_empty() {
            // A file without headers is one scenario named after the file.
            scenarios.push((
                Scenario {
                    file: file.to_owned(),
                    name: file.trim_end_matches(".irc").to_owned(),
                    config: toml::Table::new(),
                    steps: Vec::new(),
                },
                String::new(),
            ));
        }
        let steps = &mut scenarios.last_mut().expect("just ensured").0.steps;
        // Consecutive `<~` lines of one client form one group.
        if let Action::ExpectUnordered(mut new) = action {
            if let Some(Step {
                client: last_client,
                action: Action::ExpectUnordered(group),
                ..
            }) = steps.last_mut()
            {
                if last_client == client {
                    group.append(&mut new);
                    continue;
                }
            }
            steps.push(Step {
                line,
                text: raw.to_owned(),
                client: client.to_owned(),
                action: Action::ExpectUnordered(new),
            });
            continue;
        }
        steps.push(Step {
            line,
            text: raw.to_owned(),
            client: client.to_owned(),
            action,
        });
    }
    let base = parse_config(file, &file_config)?;
    scenarios
        .into_iter()
        .map(|(mut scenario, own)| {
            let mut config = base.clone();
            merge_tables(&mut config, parse_config(file, &own)?);
            scenario.config = config;
            if scenario.steps.is_empty() {
                return Err(format!("{file}: scenario {:?} has no steps", scenario.name));
            }
            Ok(scenario)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Running a scenario.

struct Actor {
    name: String,
    client: Client,
    /// Lines already read from the socket (by a sync) and not yet checked.
    pending: VecDeque<String>,
    /// The server closed the connection after the pending lines.
    eof: bool,
    /// Lines were sent since the last sync.
    dirty: bool,
    /// The last line sent was QUIT: syncing means reading to the end.
    quitting: bool,
    /// The scenario checked the close with `closed`.
    closed_checked: bool,
    syncs: u32,
}

impl Actor {
    fn new(name: &str, client: Client) -> Actor {
        Actor {
            name: name.to_owned(),
            client,
            pending: VecDeque::new(),
            eof: false,
            dirty: false,
            quitting: false,
            closed_checked: false,
            syncs: 0,
        }
    }

    /// Reads one line from the socket: `None` when the server closed it.
    async fn read_socket(&mut self) -> Result<Option<String>, String> {
        if self.eof {
            return Ok(None);
        }
        match tokio::time::timeout(LINE_WAIT, self.client.try_next_line()).await {
            Ok(Some(line)) => Ok(Some(line)),
            Ok(None) => {
                self.eof = true;
                Ok(None)
            }
            Err(_) => Err(format!(
                "{} received nothing within {LINE_WAIT:?}",
                self.name
            )),
        }
    }

    /// The next line this client received: pending first, then the socket.
    async fn next(&mut self) -> Result<Option<String>, String> {
        match self.pending.pop_front() {
            Some(line) => Ok(Some(line)),
            None => self.read_socket().await,
        }
    }

    /// Makes sure the server has handled everything this client sent,
    /// keeping whatever arrived meanwhile as pending. Returns those lines.
    async fn sync(&mut self) -> Result<Vec<String>, String> {
        let mut got = Vec::new();
        if self.eof {
            return Ok(got);
        }
        if self.quitting {
            while let Some(line) = self.read_socket().await? {
                got.push(line);
            }
        } else {
            self.syncs += 1;
            let token = format!("compliance-sync-{}", self.syncs);
            self.client.send(&format!("PING {token}")).await;
            let pong = format!(":{SERVER} PONG {SERVER} :{token}");
            loop {
                match self.read_socket().await? {
                    Some(line) if line == pong => break,
                    Some(line) => got.push(line),
                    None => break,
                }
            }
        }
        self.dirty = false;
        self.pending.extend(got.iter().cloned());
        Ok(got)
    }
}

struct Run<'a> {
    server: &'a TestServer,
    actors: Vec<Actor>,
    /// What `{=name}` took so far, for `{$name}`.
    values: Values,
}

fn show(lines: &[String]) -> String {
    if lines.is_empty() {
        "  (nothing)".to_owned()
    } else {
        lines
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Run<'_> {
    fn index(&self, name: &str) -> Option<usize> {
        self.actors.iter().position(|a| a.name == name)
    }

    fn actor(&mut self, name: &str) -> Result<&mut Actor, String> {
        let index = self.index(name).ok_or_else(|| {
            format!("no client named {name:?} (use `{name}: register` or `{name}: connect` first)")
        })?;
        Ok(&mut self.actors[index])
    }

    /// The values `patterns` use, checked to be remembered already.
    fn check_values<'p>(
        &self,
        patterns: impl IntoIterator<Item = &'p Pattern>,
    ) -> Result<(), String> {
        for pattern in patterns {
            if let Some(name) = pattern.missing_values(&self.values).first() {
                return Err(format!(
                    "`{}` uses {{${name}}}, but no `{{={name}}}` took a value before",
                    pattern.source
                ));
            }
        }
        Ok(())
    }

    /// Whether `line` matches `pattern`, remembering what it took if so.
    fn take(&mut self, pattern: &Pattern, line: &str) -> bool {
        match pattern.captures(line, &self.values) {
            Some(taken) => {
                self.values.extend(taken);
                true
            }
            None => false,
        }
    }

    /// Syncs every client but `except` that sent something unsynced, so
    /// that what they sent has taken effect before `except` acts or checks.
    async fn settle(&mut self, except: &str) -> Result<(), String> {
        for actor in self
            .actors
            .iter_mut()
            .filter(|a| a.name != except && a.dirty)
        {
            actor.sync().await?;
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let name = step.client.as_str();
        self.settle(name).await?;
        match &step.action {
            Action::Register(nick) => {
                if self.index(name).is_some() {
                    return Err(format!("client {name:?} already exists"));
                }
                let client = self.server.client(nick).await;
                self.actors.push(Actor::new(name, client));
            }
            Action::Connect => {
                if self.index(name).is_some() {
                    return Err(format!("client {name:?} already exists"));
                }
                let client = self.server.connect().await;
                self.actors.push(Actor::new(name, client));
            }
            Action::Send(line) => {
                let line = &substitute(line, &self.values)?;
                let actor = self.actor(name)?;
                if actor.eof {
                    return Err(format!(
                        "{name} cannot send: the server closed the connection"
                    ));
                }
                actor.client.send(line).await;
                actor.dirty = true;
                actor.quitting = line
                    .split(' ')
                    .find(|w| !w.starts_with('@') && !w.starts_with(':'))
                    .is_some_and(|command| command.eq_ignore_ascii_case("QUIT"));
            }
            Action::Expect(pattern) => {
                self.check_values([pattern])?;
                let actor = self.actor(name)?;
                let next = actor
                    .next()
                    .await
                    .map_err(|e| format!("expected:\n  {}\nbut {e}", pattern.source))?;
                match next {
                    Some(line) if self.take(pattern, &line) => {}
                    Some(line) => {
                        let more: Vec<String> = self.actor(name)?.pending.iter().cloned().collect();
                        return Err(format!(
                            "expected:\n  {}\nreceived:\n  {line}\nalso pending:\n{}",
                            pattern.source,
                            show(&more)
                        ));
                    }
                    None => {
                        return Err(format!(
                            "expected:\n  {}\nbut the server closed the connection",
                            pattern.source
                        ))
                    }
                }
            }
            Action::ExpectUnordered(group) => {
                self.check_values(group.iter().map(|(_, p)| p))?;
                let actor = self.actor(name)?;
                let mut received = Vec::new();
                for _ in group {
                    match actor.next().await? {
                        Some(line) => received.push(line),
                        None => break,
                    }
                }
                let mut unmatched: Vec<&Pattern> = group.iter().map(|(_, p)| p).collect();
                for line in &received {
                    if let Some(i) = unmatched.iter().position(|p| self.take(p, line)) {
                        unmatched.remove(i);
                    }
                }
                if !unmatched.is_empty() {
                    let wanted: Vec<String> = unmatched.iter().map(|p| p.source.clone()).collect();
                    return Err(format!(
                        "expected, in any order (lines {}):\n{}\nunmatched:\n{}\nreceived:\n{}{}",
                        group
                            .iter()
                            .map(|(l, _)| l.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        show(
                            &group
                                .iter()
                                .map(|(_, p)| p.source.clone())
                                .collect::<Vec<_>>()
                        ),
                        show(&wanted),
                        show(&received),
                        if received.len() < group.len() {
                            "\n(then the server closed the connection)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Action::SkipUntil(pattern) => {
                self.check_values([pattern])?;
                let mut skipped = Vec::new();
                loop {
                    let next = self.actor(name)?.next().await.map_err(|e| {
                        format!(
                            "no line matching:\n  {}\nskipped:\n{}\nthen {e}",
                            pattern.source,
                            show(&skipped)
                        )
                    })?;
                    match next {
                        Some(line) if self.take(pattern, &line) => break,
                        Some(line) => skipped.push(line),
                        None => {
                            return Err(format!(
                                "skipped to the end without a line matching:\n  {}\nskipped:\n{}",
                                pattern.source,
                                show(&skipped)
                            ))
                        }
                    }
                }
            }
            Action::Nothing => {
                let actor = self.actor(name)?;
                let mut lines: Vec<String> = actor.pending.drain(..).collect();
                if lines.is_empty() && !actor.eof {
                    lines = actor.sync().await?;
                    actor.pending.clear();
                }
                if !lines.is_empty() {
                    return Err(format!("expected nothing, received:\n{}", show(&lines)));
                }
                if actor.eof {
                    return Err("expected nothing, but the server closed the connection".to_owned());
                }
            }
            Action::Closed => {
                let actor = self.actor(name)?;
                let mut lines = Vec::new();
                while let Some(line) = actor.next().await.map_err(|e| {
                    format!("expected the server to close the connection, but it stayed open: {e}")
                })? {
                    lines.push(line);
                }
                actor.closed_checked = true;
                if !lines.is_empty() {
                    return Err(format!(
                        "expected the connection to be closed, received first:\n{}",
                        show(&lines)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every client must have read everything it received.
    async fn finish(&mut self) -> Result<(), String> {
        let names: Vec<String> = self.actors.iter().map(|a| a.name.clone()).collect();
        for name in names {
            self.settle(&name).await?;
            let actor = self.actor(&name)?;
            if actor.closed_checked {
                continue;
            }
            let mut lines: Vec<String> = actor.pending.drain(..).collect();
            if !actor.eof {
                lines.extend(actor.sync().await?);
                actor.pending.clear();
            }
            if !lines.is_empty() {
                return Err(format!(
                    "{name} has unread lines at the end:\n{}",
                    show(&lines)
                ));
            }
            if actor.eof {
                return Err(format!(
                    "the server closed {name}'s connection, which the scenario does not expect (`{name}: closed`)"
                ));
            }
        }
        Ok(())
    }
}

/// Where a scenario is, for reports about panics.
type Progress = Arc<Mutex<Option<Step>>>;

async fn run_scenario(scenario: &Scenario, progress: Progress) -> Result<(), String> {
    let config = toml::to_string(&scenario.config).expect("TOML serializes");
    let server = TestServer::start_with(&config).await;
    let mut run = Run {
        server: &server,
        actors: Vec::new(),
        values: Values::new(),
    };
    for step in &scenario.steps {
        *progress.lock().unwrap() = Some(step.clone());
        run.step(step)
            .await
            .map_err(|e| format!("line {}: `{}`\n{e}", step.line, step.text))?;
    }
    *progress.lock().unwrap() = None;
    run.finish()
        .await
        .map_err(|e| format!("at the end of the scenario:\n{e}"))?;
    drop(run);
    server.shutdown().await;
    Ok(())
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compliance/scenarios")
}

fn load_all() -> Vec<Scenario> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .expect("compliance/scenarios exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "irc"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no scenario files in compliance/scenarios"
    );
    let mut scenarios = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("scenario file is UTF-8");
        scenarios.extend(parse_file(&file, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    scenarios
}

fn panic_text(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "(no message)".to_owned()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compliance_corpus() {
    let filter = std::env::var("COMPLIANCE_FILTER").unwrap_or_default();
    let scenarios: Vec<Scenario> = load_all()
        .into_iter()
        .filter(|s| s.label().contains(&filter))
        .collect();
    assert!(
        !scenarios.is_empty(),
        "no scenario matches COMPLIANCE_FILTER={filter:?}"
    );
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = Vec::new();
    for scenario in scenarios {
        let permits = permits.clone();
        let progress: Progress = Arc::new(Mutex::new(None));
        let task = tokio::spawn({
            let scenario = scenario.clone();
            let progress = progress.clone();
            async move {
                let _permit = permits.acquire().await.expect("semaphore open");
                run_scenario(&scenario, progress).await
            }
        });
        tasks.push((scenario, progress, task));
    }
    let mut failures = Vec::new();
    let mut per_file: Vec<(String, usize, usize)> = Vec::new();
    let total = tasks.len();
    for (scenario, progress, task) in tasks {
        let outcome = match task.await {
            Ok(result) => result,
            Err(error) => {
                let at = match progress.lock().unwrap().clone() {
                    Some(step) => format!("line {}: `{}`", step.line, step.text),
                    None => "setup or end of scenario".to_owned(),
                };
                Err(format!("{at}\npanicked: {}", panic_text(error)))
            }
        };
        match per_file.last_mut() {
            Some((file, _, _)) if *file == scenario.file => {}
            _ => per_file.push((scenario.file.clone(), 0, 0)),
        }
        let entry = per_file.last_mut().expect("just pushed");
        entry.2 += 1;
        match outcome {
            Ok(()) => entry.1 += 1,
            Err(e) => failures.push(format!(
                "FAILED {} (scenario {:?})\n{e}",
                scenario.file, scenario.name
            )),
        }
    }
    let mut summary = String::new();
    for (file, passed, count) in &per_file {
        writeln!(summary, "  {file}: {passed}/{count} scenarios pass").unwrap();
    }
    let passed = total - failures.len();
    println!("compliance corpus:\n{summary}  total: {passed}/{total}");
    assert!(
        failures.is_empty(),
        "\n{}\n\ncompliance corpus:\n{summary}  total: {passed}/{total} scenarios pass, {} failed",
        failures.join("\n\n"),
        failures.len()
    );
}

#[test]
fn scenario_files_parse() {
    let text = "config: [limits]\nconfig: nick_length = 9\n=== one\nconfig: [server]\nconfig: motd = \"\"\na: register\na> PING x\na< :irc.test PONG irc.test :x\nb: connect\nb<~ x\nb<~ y\nb< (nothing)\n";
    let scenarios = parse_file("t.irc", text).unwrap();
    assert_eq!(scenarios.len(), 1);
    let s = &scenarios[0];
    assert_eq!(s.config["limits"]["nick_length"].as_integer(), Some(9));
    assert_eq!(s.config["server"]["motd"].as_str(), Some(""));
    assert_eq!(s.steps.len(), 6);
    assert!(matches!(&s.steps[4].action, Action::ExpectUnordered(g) if g.len() == 2));
    assert!(matches!(s.steps[5].action, Action::Nothing));
    assert!(parse_file("t.irc", "a? x\n").is_err());
}
