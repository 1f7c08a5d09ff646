//! One IRC connection: its line reader, a writer shared between the reader
//! (PONGs) and a sender, registration (with 433 retries), and the setup
//! steps (sync, JOIN, QUIT).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::transport::{ReadSide, WriteSide};
use tokio::time::{timeout_at, Instant};

pub use crate::line::{classify, first_param, last_param, prefix_nick, LineReader, Msg};

/// Nick attempts before registration gives up on 433/437.
const NICK_ATTEMPTS: u32 = 20;

/// Why a read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The deadline passed.
    Timeout,
    /// The server closed the connection, sent ERROR, or the socket failed.
    Closed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Timeout => f.write_str("timed out"),
            ReadError::Closed(why) => f.write_str(why),
        }
    }
}

/// The sending half, shared between a connection's reader (PONGs) and a
/// sender task.
#[derive(Clone)]
pub struct Writer(Arc<tokio::sync::Mutex<WriteSide>>);

impl Writer {
    pub async fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().await.write_all(bytes).await
    }

    /// Sends, giving up at `deadline` (a server that stopped reading).
    pub async fn send_by(&self, bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
        match timeout_at(deadline, self.send(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

/// A line's bytes as text (invalid UTF-8 replaced), for messages.
pub(crate) fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How clients connect and register.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    pub addr: SocketAddr,
    pub nick_prefix: String,
    pub password: Option<String>,
    /// TLS (`--tls`), with this configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A registered client.
pub struct Conn {
    pub idx: usize,
    /// The nick the server confirmed in 001.
    pub nick: String,
    pub rd: ReadSide,
    pub wr: Writer,
    pub lines: LineReader,
    /// Replies (PONGs) queued while reading, written after each batch.
    pub out: Vec<u8>,
    /// From the start of the TCP connect to 001.
    pub registration: Duration,
}

impl Conn {
    /// Connects and registers, answering PINGs and retrying taken nicks,
    /// until 001 (the rest of the welcome burst is left to later reads).
    pub async fn register(
        idx: usize,
        opts: &ConnectOpts,
        buffer: usize,
        deadline: Instant,
    ) -> Result<Conn, String> {
        let started = Instant::now();
        let stream = match timeout_at(deadline, TcpStream::connect(opts.addr)).await {
            Err(_) => return Err(format!("connect to {} timed out", opts.addr)),
            Ok(Err(e)) => return Err(format!("cannot connect to {}: {e}", opts.addr)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (rd, wr) =
            match timeout_at(deadline, crate::transport::split(stream, opts.tls.as_ref())).await {
                Err(_) => return Err("TLS handshake timed out".to_owned()),
                Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
                Ok(Ok(sides)) => sides,
            };
        let mut conn = Conn {
            idx,
            nick: format!("{}{idx}", opts.nick_prefix),
            rd,
            wr: Writer(Arc::new(tokio::sync::Mutex::new(wr))),
            lines: LineReader::new(buffer),
            out: Vec::new(),
            registration: Duration::ZERO,
        };
        let mut hello = String::new();
        if let Some(pass) = &opts.password {
            hello += &format!("PASS {pass}\r\n");
        }
        hello += &format!("NICK {}\r\nUSER bench 0 * :parlor-bench\r\n", conn.nick);
        conn.send(hello.as_bytes(), deadline).await?;
        let mut attempt = 0;
        loop {
            let step = conn
                .read_until(deadline, |msg| registration_outcome(&msg))
                .await
                .map_err(|e| match e {
                    ReadError::Timeout => "timed out waiting for 001 (--timeout-secs)".to_owned(),
                    ReadError::Closed(why) => format!("closed during registration: {why}"),
                })??;
            match step {
                Registration::Welcome(nick) => {
                    conn.nick = nick;
                    conn.registration = started.elapsed();
                    return Ok(conn);
                }
                Registration::NickTaken => {
                    attempt += 1;
                    if attempt > NICK_ATTEMPTS {
                        return Err(format!("no free nick after {NICK_ATTEMPTS} tries (433)"));
                    }
                    conn.nick = format!("{}{idx}_{attempt}", opts.nick_prefix);
                    conn.send(format!("NICK {}\r\n", conn.nick).as_bytes(), deadline)
                        .await?;
                }
            }
        }
    }

    pub async fn send(&self, bytes: &[u8], deadline: Instant) -> Result<(), String> {
        self.wr
            .send_by(bytes, deadline)
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Reads once (bounded by `deadline`), returning when the data came.
    pub async fn fill(&mut self, deadline: Instant) -> Result<Instant, ReadError> {
        match timeout_at(deadline, self.lines.fill(&mut self.rd)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Ok(0)) => Err(ReadError::Closed("connection closed by the server".into())),
            Ok(Ok(_)) => Ok(Instant::now()),
            Ok(Err(e)) => Err(ReadError::Closed(format!("read failed: {e}"))),
        }
    }

    /// Reads once, with no timer of its own: for the measured phase, whose
    /// readers run as tasks that the coordinator abandons (aborts) at the
    /// deadline, so a timer per read would be pure overhead.
    pub async fn fill_unbounded(&mut self) -> Result<Instant, ReadError> {
        match self.lines.fill(&mut self.rd).await {
            Ok(0) => Err(ReadError::Closed("connection closed by the server".into())),
            Ok(_) => Ok(Instant::now()),
            Err(e) => Err(ReadError::Closed(format!("read failed: {e}"))),
        }
    }

    /// Writes the replies queued while reading.
    pub async fn flush_out(&mut self) -> Result<(), ReadError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.wr.send(&self.out).await;
        self.out.clear();
        result.map_err(|e| ReadError::Closed(format!("write failed: {e}")))
    }

    /// Reads lines until `f` returns a value, answering PINGs. ERROR, end
    /// of stream and the deadline end it with an error.
    pub async fn read_until<T>(
        &mut self,
        deadline: Instant,
        mut f: impl FnMut(Msg<'_>) -> Option<T>,
    ) -> Result<T, ReadError> {
        loop {
            while let Some(line) = self.lines.next_line() {
                match classify(line) {
                    Msg::Ping(token) => pong(&mut self.out, token),
                    Msg::Error(text) => return Err(server_error(text)),
                    msg => {
                        if let Some(value) = f(msg) {
                            self.flush_out().await?;
                            return Ok(value);
                        }
                    }
                }
            }
            self.flush_out().await?;
            self.fill(deadline).await?;
        }
    }

    /// Sends `PING :token` and reads (dropping everything) until its PONG.
    pub async fn sync(&mut self, token: &str, deadline: Instant) -> Result<(), ReadError> {
        self.send(format!("PING :{token}\r\n").as_bytes(), deadline)
            .await
            .map_err(ReadError::Closed)?;
        self.read_until(deadline, |msg| match msg {
            Msg::Pong(t) if t == token.as_bytes() => Some(()),
            _ => None,
        })
        .await
    }

    /// Reads (answering PINGs, dropping everything else) until `until`.
    pub async fn idle(&mut self, until: Instant) -> Result<(), ReadError> {
        match self.read_until(until, |_| None::<()>).await {
            Err(ReadError::Timeout) => Ok(()),
            other => other,
        }
    }

    /// Sends JOIN and waits for its echo; a refusal numeric is an error.
    pub async fn join(&mut self, channel: &str, deadline: Instant) -> Result<(), String> {
        self.send(format!("JOIN {channel}\r\n").as_bytes(), deadline)
            .await?;
        let nick = self.nick.clone();
        self.read_until(deadline, |msg| join_outcome(&msg, nick.as_bytes()))
            .await
            .map_err(|e| format!("waiting for the JOIN echo: {e}"))?
    }

    /// Sends QUIT and waits (briefly) for the server to close, so the
    /// server side holds the TIME_WAIT rather than our ephemeral port.
    pub async fn quit(mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        if self
            .wr
            .send_by(b"QUIT :parlor-bench done\r\n", deadline)
            .await
            .is_err()
        {
            return;
        }
        while self.fill(deadline).await.is_ok() {
            self.lines.clear();
        }
    }
}

/// Queues `PONG :token`.
pub fn pong(out: &mut Vec<u8>, token: &[u8]) {
    out.extend_from_slice(b"PONG :");
    out.extend_from_slice(token);
    out.extend_from_slice(b"\r\n");
}

pub fn server_error(text: &[u8]) -> ReadError {
    ReadError::Closed(format!("server sent ERROR :{}", show(text)))
}

/// What `msg` says of a JOIN sent by `nick`: its echo (joined), a refusal
/// numeric (an error), or nothing.
pub(crate) fn join_outcome(msg: &Msg<'_>, nick: &[u8]) -> Option<Result<(), String>> {
    match msg {
        Msg::Other {
            prefix, command, ..
        } if *command == b"JOIN" && prefix_nick(prefix).eq_ignore_ascii_case(nick) => Some(Ok(())),
        Msg::Numeric(code @ (403 | 405 | 471 | 473 | 474 | 475 | 476 | 477 | 489), p) => {
            Some(Err(format!("JOIN refused: {code} {}", show(last_param(p)))))
        }
        _ => None,
    }
}

/// What the server answered NICK and USER with.
pub(crate) enum Registration {
    /// `001`, with the nick it names.
    Welcome(String),
    /// `433` or `437`: another nick is to be tried.
    NickTaken,
}

/// `msg` read as an answer to registration: a [`Registration`], a refusal
/// numeric (an error), or nothing.
pub(crate) fn registration_outcome(msg: &Msg<'_>) -> Option<Result<Registration, String>> {
    match msg {
        Msg::Numeric(1, params) => Some(Ok(Registration::Welcome(show(first_param(params))))),
        Msg::Numeric(433 | 437, _) => Some(Ok(Registration::NickTaken)),
        Msg::Numeric(code @ (421 | 432 | 464 | 465), params) => Some(Err(format!(
            "registration refused: {code} {}",
            show(last_param(params))
        ))),
        _ => None,
    }
}
