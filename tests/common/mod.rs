//! Test support: a server started in-process on 127.0.0.1:0 with its own
//! data directory, and a raw TCP client that reads lines with timeouts and
//! shows everything it received when an expectation fails.
//!
//! Every line a test client receives is also parsed by `irc-proto`, an
//! independent parser, so malformed output fails the test that caused it.

#![allow(dead_code)]

pub mod http;
pub mod pebble;
pub mod process;
pub mod scram;
pub mod tls;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parlor::{Config, ServerHandle};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long any single expectation waits before failing.
pub const WAIT: Duration = Duration::from_secs(10);
/// The server name every test server uses.
pub const SERVER: &str = "irc.test";
/// Accounts whose Argon2 hashes cost little (the checks are the same), and
/// no nick protection, so tests can log in and out quickly.
pub const FAST_ACCOUNTS: &str =
    "[accounts]\nargon2_memory_kib = 1024\nargon2_iterations = 1\nnick_protection = false\n";

pub struct TestServer {
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    extra: String,
}

impl TestServer {
    /// A server on the defaults, named `irc.test`.
    pub async fn start() -> TestServer {
        TestServer::start_with("").await
    }

    /// A server with `extra` TOML laid over the test defaults.
    pub async fn start_with(extra: &str) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        TestServer::start_in(data_dir, extra).await
    }

    /// Stops the server and starts a new one on the same data directory
    /// and configuration (on a new port), as a restart would.
    pub async fn restart(mut self) -> TestServer {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        let extra = std::mem::take(&mut self.extra);
        TestServer::start_in(self.data_dir, &extra).await
    }

    async fn start_in(data_dir: tempfile::TempDir, extra: &str) -> TestServer {
        let config = Config::from_toml_str(&test_config(data_dir.path(), extra), "test")
            .expect("test configuration is valid");
        let handle = parlor::spawn(config).await.expect("server starts");
        let addr = handle.local_addr();
        TestServer {
            handle: Some(handle),
            addr,
            data_dir,
            extra: extra.to_owned(),
        }
    }

    /// A server read from a config file, as `parlor --config FILE` runs,
    /// so that REHASH reads the file again. The file is the test
    /// defaults with `extra` laid over them; its path is returned.
    pub async fn start_from_file(extra: &str) -> (TestServer, std::path::PathBuf) {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let path = data_dir.path().join("parlor.toml");
        std::fs::write(&path, test_config(data_dir.path(), extra)).expect("write the config");
        let source = parlor::config::ConfigSource {
            file: Some(path.clone()),
            ..Default::default()
        };
        let config = source.load().expect("test configuration is valid");
        let handle = parlor::spawn_with_source(config, Some(source))
            .await
            .expect("server starts");
        let server = TestServer {
            addr: handle.local_addr(),
            handle: Some(handle),
            data_dir,
            extra: extra.to_owned(),
        };
        (server, path)
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("server running")
    }

    /// The HTTP door's first bound address (`http.listen` is
    /// `127.0.0.1:0` unless a test says otherwise).
    pub fn http_addr(&self) -> SocketAddr {
        *self
            .handle()
            .http_addrs()
            .first()
            .expect("the HTTP door listens")
    }

    /// A raw, unregistered connection.
    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A connection registered as `nick` (user `nick`, realname `Real
    /// nick`), with the welcome burst already read up to the end of MOTD.
    /// A client registered as `nick` with the capabilities in `caps`
    /// (space-separated) enabled before registration.
    pub async fn client_with_caps(&self, nick: &str, caps: &str) -> Client {
        let mut client = self.connect().await;
        client.send(&format!("CAP REQ :{caps}")).await;
        client
            .expect_line(&format!(":{SERVER} CAP * ACK :{caps}"))
            .await;
        client.send("CAP END").await;
        client.register(nick).await;
        client
    }

    /// A client registered as `nick` and logged in to a new account of
    /// that name, password `<nick>-password`.
    pub async fn account_holder(&self, nick: &str) -> Client {
        let mut c = self.client(nick).await;
        let lines = c.exchange(&format!("REGISTER * * {nick}-password")).await;
        assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
        c
    }

    pub async fn client(&self, nick: &str) -> Client {
        let mut client = self.connect().await;
        client.register(nick).await;
        client
    }

    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// The test defaults (name `irc.test`, port 0, no flood control or
/// per-address limit, data in `data_dir`) with `extra` laid over them.
pub fn test_config(data_dir: &std::path::Path, extra: &str) -> String {
    let base = format!(
        "[server]\nname = \"{SERVER}\"\nlisten = [\"127.0.0.1:0\"]\ndata_dir = {:?}\n\
         [limits]\nflood_lines_per_sec = 0\nmax_clients_per_ip = 0\n\
         [http]\nlisten = [\"127.0.0.1:0\"]\n",
        data_dir.display().to_string()
    );
    merge_toml(&base, extra)
}

/// Lays `extra` over `base` as TOML tables, so tests can set keys in
/// `[server]` too.
fn merge_toml(base: &str, extra: &str) -> String {
    let mut base: toml::Table = base.parse().expect("base TOML");
    let extra: toml::Table = extra.parse().expect("test TOML is valid");
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => b.extend(e),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    toml::to_string(&base).expect("TOML serializes")
}

/// A TCP connection to `addr`, failing the test if it takes over [`WAIT`].
pub async fn tcp_connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// A port on 127.0.0.1 that was free a moment ago: bound, read and released.
/// A client of a server that is still starting (a child process):
/// connects as soon as it listens, within [`WAIT`].
pub async fn connect_with_retry(addr: SocketAddr) -> Client {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Client::connect(addr).await;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

pub struct Client {
    reader: BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    pub nick: String,
    /// Every line received so far, for failure messages.
    pub log: Vec<String>,
    sync_counter: u32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::over(tcp_connect(addr).await)
    }

    /// Connects from another loopback address (any of 127.0.0.0/8), as a
    /// second host would.
    pub async fn connect_from(addr: SocketAddr, local: std::net::IpAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(local, 0))
            .expect("bind a loopback address");
        let stream = tokio::time::timeout(WAIT, socket.connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client::over(stream)
    }

    fn over(stream: TcpStream) -> Client {
        let (read, writer) = stream.into_split();
        Client::over_halves(Box::new(read), Box::new(writer))
    }

    /// A client over any byte stream (TLS, for one).
    pub fn over_stream(stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> Client {
        let (read, writer) = tokio::io::split(stream);
        Client::over_halves(Box::new(read), Box::new(writer))
    }

    fn over_halves(
        read: Box<dyn AsyncRead + Unpin + Send>,
        writer: Box<dyn AsyncWrite + Unpin + Send>,
    ) -> Client {
        Client {
            reader: BufReader::new(read),
            writer,
            nick: "*".to_owned(),
            log: Vec::new(),
            sync_counter: 0,
        }
    }

    pub async fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :Real {nick}")).await;
        self.nick = nick.to_owned();
        self.expect_numeric("001").await;
        self.skip_until(|l| l.contains(" 376 ") || l.contains(" 422 "))
            .await;
    }

    /// `nick!~nick@127.0.0.1`, the source other clients see.
    pub fn mask(&self) -> String {
        format!("{0}!~{0}@127.0.0.1", self.nick)
    }

    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write to server");
    }

    /// The next line, without its line ending; `None` at end of stream.
    pub async fn try_next_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(WAIT, self.reader.read_until(b'\n', &mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no line within {WAIT:?}; received so far:\n{}",
                    self.log.join("\n")
                )
            });
        match read {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert!(buf.ends_with(b"\r\n"), "line not ended by CRLF: {buf:?}");
                buf.truncate(buf.len() - 2);
                let line = String::from_utf8(buf).expect("server sends UTF-8");
                if let Err(e) = irc_proto::Message::from_str(&line) {
                    panic!("irc-proto cannot parse {line:?}: {e}");
                }
                self.log.push(line.clone());
                Some(line)
            }
        }
    }

    pub async fn next_line(&mut self) -> String {
        match self.try_next_line().await {
            Some(line) => line,
            None => panic!(
                "connection closed; received so far:\n{}",
                self.log.join("\n")
            ),
        }
    }

    /// Asserts the next line is exactly `expected`.
    pub async fn expect_line(&mut self, expected: &str) {
        let line = self.next_line().await;
        assert_eq!(
            line,
            expected,
            "unexpected line; received so far:\n{}",
            self.log.join("\n")
        );
    }

    /// Reads until a line satisfies `pred`, returning it.
    pub async fn skip_until(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self.next_line().await;
            if pred(&line) {
                return line;
            }
        }
    }

    /// Reads until a numeric `code` addressed to this client arrives.
    pub async fn expect_numeric(&mut self, code: &str) -> String {
        let pattern = format!(" {code} ");
        self.skip_until(|l| l.starts_with(&format!(":{SERVER}")) && l.contains(&pattern))
            .await
    }

    /// Sends a PING and returns every line received before its PONG: the
    /// complete answer to everything sent earlier, since the server handles
    /// a client's lines in order.
    pub async fn sync(&mut self) -> Vec<String> {
        self.sync_counter += 1;
        let token = format!("sync-{}", self.sync_counter);
        self.send(&format!("PING {token}")).await;
        let pong = format!(":{SERVER} PONG {SERVER} :{token}");
        let mut lines = Vec::new();
        loop {
            let line = self.next_line().await;
            if line == pong {
                return lines;
            }
            lines.push(line);
        }
    }

    /// Sends `line` and returns exactly what came back for it.
    pub async fn exchange(&mut self, line: &str) -> Vec<String> {
        self.send(line).await;
        self.sync().await
    }

    /// Asserts nothing arrived that was not read yet.
    pub async fn expect_nothing(&mut self) {
        let lines = self.sync().await;
        assert!(
            lines.is_empty(),
            "expected nothing, got:\n{}",
            lines.join("\n")
        );
    }

    /// Reads until the server closes the connection, returning the lines.
    pub async fn read_to_end(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.try_next_line().await {
            lines.push(line);
        }
        lines
    }
}

/// The 322 lines of a LIST reply, sorted, after checking 321 and 323 around them.
pub fn list_entries(lines: &[String], nick: &str) -> Vec<String> {
    assert!(lines.len() >= 2, "{lines:?}");
    assert_eq!(lines[0], numeric("321", nick, "Channel :Users  Name"));
    assert_eq!(
        lines[lines.len() - 1],
        numeric("323", nick, ":End of /LIST")
    );
    let mut entries = lines[1..lines.len() - 1].to_vec();
    entries.sort();
    entries
}

/// The 366 that ends a NAMES reply.
pub fn end_of_names(nick: &str, channel: &str) -> String {
    numeric("366", nick, &format!("{channel} :End of /NAMES list"))
}

/// `:irc.test CODE nick rest` — a numeric as a test expects it.
pub fn numeric(code: &str, nick: &str, rest: &str) -> String {
    format!(":{SERVER} {code} {nick} {rest}")
}

/// An `[[oper]]` block: name `oper`, password `password` (hash made with
/// `parlor mkpasswd`). `OPER oper password` (or [`make_oper`]) uses it.
pub const OPER_CONFIG: &str = r#"
[[oper]]
name = "oper"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$n4eHqGrW919MBYj1WHAWrA$UdXnbhUtNg65M+NsaIbx/Ts16sPI5wCsaLnW01Y6pMw"
"#;

/// Makes `c` an IRC operator with the [`OPER_CONFIG`] block, checking the
/// 381 and the `+o` that follows it.
pub async fn make_oper(c: &mut Client) {
    let nick = c.nick.clone();
    assert_eq!(
        c.exchange("OPER oper password").await,
        [
            numeric("381", &nick, ":You are now an IRC operator"),
            format!(":{nick} MODE {nick} +o"),
        ]
    );
}

/// Joins `channel` and returns the JOIN burst, checking the JOIN echo comes
/// first and NAMES last; other members' copies of the JOIN are left for
/// them to drain.
pub async fn join(c: &mut Client, channel: &str) -> Vec<String> {
    let lines = c.exchange(&format!("JOIN {channel}")).await;
    assert_eq!(
        lines[0],
        format!(":{} JOIN {channel}", c.mask()),
        "{lines:?}"
    );
    assert!(
        lines.last().unwrap().contains(" 366 "),
        "JOIN ends with NAMES: {lines:?}"
    );
    lines
}

/// Joins `channel` with each client in turn (the first creates it and is
/// its op), then reads every client's pending lines so each test starts
/// from silence.
pub async fn setup_channel(channel: &str, members: &mut [&mut Client]) {
    for member in members.iter_mut() {
        member.exchange(&format!("JOIN {channel}")).await;
    }
    for member in members.iter_mut() {
        member.sync().await;
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Asserts `line` is `prefix` followed by a Unix time from the last minute.
pub fn assert_timestamped(line: &str, prefix: &str) {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}<time>, got {line:?}"));
    let ts: u64 = rest
        .parse()
        .unwrap_or_else(|_| panic!("not a timestamp in {line:?}"));
    let now = unix_now();
    assert!(
        ts <= now && now - ts < 60,
        "timestamp not recent in {line:?}"
    );
}

/// Asserts `line` is a 353 for `viewer` on `channel` with `symbol` (`=`
/// public, `*` private, `@` secret), listing exactly `entries` in any order
/// (members are kept unordered).
pub fn assert_names(line: &str, viewer: &str, symbol: &str, channel: &str, entries: &[&str]) {
    let prefix = numeric("353", viewer, &format!("{symbol} {channel} :"));
    let rest = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}…, got {line:?}"));
    let mut got: Vec<&str> = rest.split(' ').collect();
    let mut want = entries.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "in {line:?}");
}

/// Asserts `lines` is exactly one numeric `code` for `nick` with `middles`
/// well-formed middle parameters (non-empty, no space, no leading colon)
/// before ` :text`. Used where the server echoes text the client chose.
pub fn assert_wellformed(lines: &[String], code: &str, nick: &str, middles: usize, text: &str) {
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let rest = line
        .strip_prefix(&numeric(code, nick, ""))
        .and_then(|r| r.strip_suffix(&format!(" :{text}")))
        .unwrap_or_else(|| panic!("expected {code} for {nick} ending in {text:?}, got {line:?}"));
    let params: Vec<&str> = rest.split(' ').collect();
    assert_eq!(params.len(), middles, "middle parameters of {line:?}");
    for p in params {
        assert!(
            !p.is_empty() && !p.starts_with(':'),
            "malformed parameter {p:?} in {line:?}"
        );
    }
}

/// The value of tag `key` in `line`, if it has one (`""` for a tag
/// without a value).
pub fn tag<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let section = line.strip_prefix('@')?.split(' ').next()?;
    section
        .split(';')
        .find_map(|tag| match tag.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if tag == key => Some(""),
            _ => None,
        })
}

/// `line` without its tag section.
pub fn untagged(line: &str) -> &str {
    match line.strip_prefix('@') {
        Some(rest) => rest.split_once(' ').map_or("", |(_, body)| body),
        None => line,
    }
}

/// Waits (bounded) until the account's departure is stored.
pub async fn wait_for_last_seen(server: &TestServer, account: &str) {
    let path = server.data_dir.path().join("parlor.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let seen: i64 =
            sqlx::query_scalar("SELECT last_seen_ms FROM accounts WHERE name_folded = ?")
                .bind(account)
                .fetch_one(&pool)
                .await
                .unwrap();
        if seen > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the departure was never stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pool.close().await;
}

/// Connects as `alice`, enables `sasl` and `caps`, sends NICK and USER and
/// logs in with PLAIN as the account `alice`, password `hunter22`; CAP END
/// is left to the caller.
pub async fn alice_logging_in_with_sasl(server: &TestServer, caps: &str) -> Client {
    let mut alice = server.connect().await;
    alice.send(&format!("CAP REQ :sasl {caps}")).await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :Real alice").await;
    alice.send("AUTHENTICATE PLAIN").await;
    alice.send("AUTHENTICATE AGFsaWNlAGh1bnRlcjIy").await; // \0alice\0hunter22
    alice.nick = "alice".to_owned();
    alice
}

/// Runs `test` on a runtime set up as the binary's is: each thread writes
/// what its clients' input queued when it is about to go idle (or every few
/// batches), not at the end of each batch.
pub fn on_the_binarys_runtime(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_park(parlor::server::flush::flush_on_park)
        .build()
        .expect("a runtime")
        .block_on(test);
}
