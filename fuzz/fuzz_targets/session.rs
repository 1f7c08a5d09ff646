//! Whole client sessions: arbitrary lines from three clients into a server
//! running in this process, through the real connection code, codec,
//! dispatch and every command handler.
//!
//! Input: a first byte of flags, then lines separated by `\n`. Bits 0-2 of
//! the flags have the harness register clients 0-2 (as `c0`-`c2`) before
//! the script, bit 3 with every capability enabled: most inputs then reach
//! the handlers that need a registered client, while inputs without them
//! explore registration itself. Each line's first byte picks its client
//! (`b'0'`, `b'1'`, `b'2'`, or any byte modulo 3); the rest is sent as it
//! is, with a `\n` after it.
//!
//! Interleaving is kept repeatable: a client's consecutive lines are sent
//! together, then the harness waits for the PONG to a PING sent after them
//! before another client speaks. Handlers apply a client's lines in order,
//! slow work (Argon2, the database) included, so by the PONG every effect
//! of those lines is in the network's state.
//!
//! Beyond "no panic": every line the server sends must be UTF-8, end with
//! CRLF and parse, with Parlor's parser and with `irc-proto`; and every
//! PING must be answered within `SYNC_LIMIT` (a hang is a failure).
//!
//! Each run gets a fresh server (fresh state and database), so an input
//! means the same whatever ran before it, and a crash replays from its
//! input alone. Only the tokio runtime is kept from run to run: a run ends
//! with the server shut down and every connection closed, so no task of
//! one run is left to act in the next.

#![no_main]

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use parlor::proto::parse_message;
use parlor::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::{timeout_at, Instant};

const CLIENTS: usize = 3;
/// Lines taken from one input; the rest is ignored, so a run stays short.
const MAX_LINES: usize = 64;
/// How long the server may take to answer one PING. Generous: the long
/// runs are niced and share the machine with builds.
const SYNC_LIMIT: Duration = Duration::from_secs(20);
/// The whole run's bound, shutdown included.
const RUN_LIMIT: Duration = Duration::from_secs(60);
const SERVER: &str = "irc.fuzz";
const CAPS: &str = "account-notify account-tag away-notify batch cap-notify chghost \
    draft/account-registration draft/chathistory draft/event-playback echo-message \
    extended-join invite-notify labeled-response message-tags multi-prefix sasl \
    server-time setname standard-replies userhost-in-names znc.in/playback \
    znc.in/self-message";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let script = Script::read(flags, script);
    runtime().block_on(async {
        tokio::time::timeout(RUN_LIMIT, run(&script))
            .await
            .expect("the run finished in time");
    });
});

/// One runtime for the process. Building one per run cost more than most
/// runs; keeping it is sound because a run leaves no task behind (see the
/// module's doc) and nothing of the server lives in the runtime itself.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

struct Script<'a> {
    register: [bool; CLIENTS],
    caps: bool,
    /// Runs of consecutive lines from one client.
    turns: Vec<(usize, Vec<&'a [u8]>)>,
}

impl<'a> Script<'a> {
    fn read(flags: u8, script: &'a [u8]) -> Script<'a> {
        let mut turns: Vec<(usize, Vec<&[u8]>)> = Vec::new();
        for line in script.split(|&b| b == b'\n').take(MAX_LINES) {
            let Some((&who, line)) = line.split_first() else {
                continue;
            };
            let client = usize::from(who) % CLIENTS;
            match turns.last_mut() {
                Some((last, lines)) if *last == client => lines.push(line),
                _ => turns.push((client, vec![line])),
            }
        }
        Script {
            register: [0, 1, 2].map(|i| flags & (1 << i) != 0),
            caps: flags & 8 != 0,
            turns,
        }
    }
}

async fn run(script: &Script<'_>) {
    let data_dir = data_dir();
    let handle = parlor::spawn(config(data_dir.path()))
        .await
        .expect("the server starts");
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let stream = TcpStream::connect(handle.local_addr())
            .await
            .expect("connect");
        clients.push(Client::new(stream));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        if script.register[i] {
            let mut lines = Vec::new();
            if script.caps {
                lines.push(format!("CAP REQ :{CAPS}"));
            }
            lines.push(format!("NICK c{i}"));
            lines.push(format!("USER u{i} 0 * :Client {i}"));
            if script.caps {
                lines.push("CAP END".to_owned());
            }
            let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            client.turn(&lines).await;
        }
    }
    for (who, lines) in &script.turns {
        clients[*who].turn(lines).await;
        for client in &mut clients {
            client.drain();
        }
    }
    // The shutdown writes each client an ERROR and waits for its queue to
    // be taken: read every client to its end meanwhile.
    let readers = clients.into_iter().map(|mut client| async move {
        client.read_to_end().await;
    });
    tokio::join!(handle.shutdown(), futures_join_all(readers));
}

/// Waits for every future, in order: they make progress concurrently
/// because each was spawned on the runtime first.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.expect("a reader task");
    }
}

/// A data directory of its own for each run, in memory where the machine
/// has a tmpfs: SQLite's writes are most of a server's start.
fn data_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

fn config(data_dir: &std::path::Path) -> Config {
    static OPER_HASH: OnceLock<String> = OnceLock::new();
    let oper_hash = OPER_HASH.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        // The cheapest parameters Argon2 allows: the server copies them
        // for its decoy, which each fresh server hashes at start.
        let params = argon2::Params::new(8, 1, 1, None).expect("valid parameters");
        let argon2 =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"fuzz oper salt").expect("a salt");
        argon2
            .hash_password(b"secret", &salt)
            .expect("hashing works")
            .to_string()
    });
    let text = format!(
        "[server]\nname = \"{SERVER}\"\nlisten = [\"127.0.0.1:0\"]\ndata_dir = {data_dir:?}\n\
         [limits]\nflood_lines_per_sec = 0\nmax_clients_per_ip = 0\n\
         [accounts]\nargon2_memory_kib = 8\nargon2_iterations = 1\nmin_password_length = 1\n\
         [history]\ncommit_interval_ms = 1\n\
         [[oper]]\nname = \"op\"\npassword_hash = {oper_hash:?}\n",
    );
    Config::from_toml_str(&text, "fuzz").expect("the fuzz configuration is valid")
}

struct Client {
    stream: TcpStream,
    /// Bytes received and not yet split into lines.
    received: Vec<u8>,
    /// The server closed the connection (QUIT, KILL, an error).
    closed: bool,
    pings: u32,
}

impl Client {
    fn new(stream: TcpStream) -> Client {
        Client {
            stream,
            received: Vec::new(),
            closed: false,
            pings: 0,
        }
    }

    /// Sends `lines`, then waits until the server has handled them.
    async fn turn(&mut self, lines: &[&[u8]]) {
        if self.closed {
            return;
        }
        self.pings += 1;
        let token = format!("fuzz-sync-{}", self.pings);
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(format!("PING :{token}\r\n").as_bytes());
        if self.stream.write_all(&bytes).await.is_err() {
            // The server closed the connection; what it sent is read below.
            self.read_to_end().await;
            return;
        }
        let deadline = Instant::now() + SYNC_LIMIT;
        loop {
            match timeout_at(deadline, self.read_some()).await {
                Err(_) => panic!("no PONG within {SYNC_LIMIT:?} of {lines:?}"),
                Ok(false) => return,
                Ok(true) => {}
            }
            if self.take_lines().any(|line| is_pong(&line, &token)) {
                return;
            }
        }
    }

    /// Reads what the socket holds now, without waiting.
    fn drain(&mut self) {
        let mut chunk = [0u8; 4096];
        while !self.closed {
            match self.stream.try_read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.received.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
        }
        self.take_lines().for_each(drop);
    }

    async fn read_to_end(&mut self) {
        while self.read_some().await {}
        self.take_lines().for_each(drop);
        assert!(
            self.received.is_empty(),
            "the server's last line has no line ending: {:?}",
            String::from_utf8_lossy(&self.received)
        );
    }

    /// Reads once; false at the end of the connection.
    async fn read_some(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.received.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The complete lines received, each checked.
    fn take_lines(&mut self) -> impl Iterator<Item = String> {
        let end = self
            .received
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let complete: Vec<u8> = self.received.drain(..end).collect();
        let lines: Vec<String> = complete
            .split_inclusive(|&b| b == b'\n')
            .map(checked_line)
            .collect();
        lines.into_iter()
    }
}

/// A line from the server, without its CRLF, after checking it is one.
fn checked_line(line: &[u8]) -> String {
    let text = std::str::from_utf8(line)
        .unwrap_or_else(|_| panic!("the server sent a line that is not UTF-8: {line:?}"));
    let text = text
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("the server ended a line with a bare LF: {text:?}"));
    if let Err(e) = parse_message(text) {
        panic!("the server sent {text:?}, which does not parse: {e}");
    }
    if let Err(e) = irc_proto::Message::from_str(text) {
        panic!("the server sent {text:?}, which irc-proto cannot parse: {e}");
    }
    text.to_owned()
}

fn is_pong(line: &str, token: &str) -> bool {
    parse_message(line)
        .is_ok_and(|m| m.command == "PONG" && m.params.last().copied() == Some(token))
}
