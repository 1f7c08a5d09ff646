//! The `history` scenario's client: a connection that negotiates its
//! capabilities (`CAP LS 302` / `REQ` / `END`) before it registers, reads
//! lines with their tags, and joins and quits; with the small helpers for
//! reading those lines (a tag's value, a message body's numbers).

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::{CAPS, NICK_ATTEMPTS, QUIT_WAIT};
use crate::client::{
    classify, join_outcome, last_param, pong, registration_outcome, server_error, show,
    ConnectOpts, LineReader, Msg, ReadError, Registration,
};

/// A client with capabilities: registers after `CAP LS 302` / `REQ` /
/// `END`, then is used by one task at a time.
pub(super) struct Client {
    nick: String,
    pub(super) rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    pub(super) lines: LineReader,
    /// Replies (PONGs) queued while reading.
    pub(super) out: Vec<u8>,
}

/// A step of registration.
enum Step {
    /// The last line of the `CAP LS` reply.
    Listed,
    /// `CAP ACK`, with what was acknowledged.
    Acked(String),
    Registration(Registration),
}

impl Client {
    pub(super) async fn register(
        idx: usize,
        opts: &ConnectOpts,
        deadline: Instant,
    ) -> Result<Client, String> {
        let stream = match timeout_at(deadline, TcpStream::connect(opts.addr)).await {
            Err(_) => return Err(format!("connect to {} timed out", opts.addr)),
            Ok(Err(e)) => return Err(format!("cannot connect to {}: {e}", opts.addr)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut client = Client {
            nick: format!("{}{idx}", opts.nick_prefix),
            rd,
            wr,
            lines: LineReader::new(64 * 1024),
            out: Vec::new(),
        };
        let mut hello = String::new();
        if let Some(pass) = &opts.password {
            hello += &format!("PASS {pass}\r\n");
        }
        hello += &format!(
            "CAP LS 302\r\nNICK {}\r\nUSER bench 0 * :parlor-bench\r\n",
            client.nick
        );
        client.send(hello.as_bytes(), deadline).await?;
        let mut attempt = 0;
        loop {
            let step = client
                .read_until(deadline, |_, msg| match msg {
                    Msg::Other {
                        command, params, ..
                    } if command == b"CAP" => {
                        let mut words = params.split(|&b| b == b' ').skip(1);
                        match (words.next(), words.next()) {
                            // `CAP * LS * :…` announces more LS lines.
                            (Some(b"LS"), Some(b"*")) => None,
                            (Some(b"LS"), _) => Some(Ok(Step::Listed)),
                            (Some(b"ACK"), _) => Some(Ok(Step::Acked(show(last_param(params))))),
                            (Some(b"NAK"), _) => Some(Err(format!(
                                "the server refused the capabilities: CAP NAK :{}",
                                show(last_param(params))
                            ))),
                            _ => None,
                        }
                    }
                    other => registration_outcome(&other).map(|r| r.map(Step::Registration)),
                })
                .await
                .map_err(|e| match e {
                    ReadError::Timeout => "timed out registering (--timeout-secs)".to_owned(),
                    ReadError::Closed(why) => format!("closed during registration: {why}"),
                })??;
            match step {
                Step::Listed => {
                    client
                        .send(format!("CAP REQ :{CAPS}\r\n").as_bytes(), deadline)
                        .await?
                }
                Step::Acked(acked) => {
                    let missing: Vec<&str> = CAPS
                        .split(' ')
                        .filter(|cap| !acked.split(' ').any(|a| a == *cap))
                        .collect();
                    if !missing.is_empty() {
                        return Err(format!("CAP ACK without {}", missing.join(" ")));
                    }
                    client.send(b"CAP END\r\n", deadline).await?;
                }
                Step::Registration(Registration::NickTaken) => {
                    attempt += 1;
                    if attempt > NICK_ATTEMPTS {
                        return Err(format!("no free nick after {NICK_ATTEMPTS} tries (433)"));
                    }
                    client.nick = format!("{}{idx}_{attempt}", opts.nick_prefix);
                    let line = format!("NICK {}\r\n", client.nick);
                    client.send(line.as_bytes(), deadline).await?;
                }
                Step::Registration(Registration::Welcome(nick)) => {
                    client.nick = nick;
                    return Ok(client);
                }
            }
        }
    }

    pub(super) async fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), String> {
        write(&mut self.wr, bytes, deadline).await
    }

    /// Writes the replies queued while reading.
    pub(super) async fn flush_out(&mut self, deadline: Instant) -> Result<(), ReadError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = write(&mut self.wr, &self.out, deadline).await;
        self.out.clear();
        result.map_err(ReadError::Closed)
    }

    async fn fill(&mut self, deadline: Instant) -> Result<Instant, ReadError> {
        match timeout_at(deadline, self.lines.fill(&mut self.rd)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Ok(0)) => Err(ReadError::Closed("connection closed by the server".into())),
            Ok(Ok(_)) => Ok(Instant::now()),
            Ok(Err(e)) => Err(ReadError::Closed(format!("read failed: {e}"))),
        }
    }

    /// Reads lines until `f` (given the whole line, tags included, and
    /// what it is) returns a value, answering PINGs. ERROR, end of stream
    /// and the deadline end it with an error.
    pub(super) async fn read_until<T>(
        &mut self,
        deadline: Instant,
        mut f: impl FnMut(&[u8], Msg<'_>) -> Option<T>,
    ) -> Result<T, ReadError> {
        loop {
            while let Some(line) = self.lines.next_line() {
                match classify(line) {
                    Msg::Ping(token) => pong(&mut self.out, token),
                    Msg::Error(text) => return Err(server_error(text)),
                    msg => {
                        if let Some(value) = f(line, msg) {
                            self.flush_out(deadline).await?;
                            return Ok(value);
                        }
                    }
                }
            }
            self.flush_out(deadline).await?;
            self.fill(deadline).await?;
        }
    }

    /// Sends JOIN and waits for its echo, then PING/PONG so the rest of
    /// the join burst (NAMES, topic) is drained.
    pub(super) async fn join(&mut self, channel: &str, deadline: Instant) -> Result<(), String> {
        self.send(format!("JOIN {channel}\r\n").as_bytes(), deadline)
            .await?;
        let nick = self.nick.clone();
        self.read_until(deadline, |_, msg| join_outcome(&msg, nick.as_bytes()))
            .await
            .map_err(|e| format!("waiting for the JOIN echo: {e}"))??;
        self.send(b"PING :pb-sync\r\n", deadline).await?;
        self.read_until(deadline, |_, msg| match msg {
            Msg::Pong(t) if t == b"pb-sync" => Some(()),
            _ => None,
        })
        .await
        .map_err(|e| format!("PING/PONG sync after the JOIN: {e}"))
    }

    /// Sends QUIT and waits (briefly) for the server to close.
    pub(super) async fn quit(mut self) {
        let deadline = Instant::now() + QUIT_WAIT;
        if self
            .send(b"QUIT :parlor-bench done\r\n", deadline)
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

async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8], deadline: Instant) -> Result<(), String> {
    match timeout_at(deadline, wr.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err("write timed out (--timeout-secs)".to_owned()),
    }
}

/// The value of tag `key` in a line's tags (as sent: only `time` and
/// `batch` are read, which need no unescaping).
pub(super) fn tag<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let tags = line.strip_prefix(b"@")?;
    let tags = &tags[..memchr::memchr(b' ', tags)?];
    tags.split(|&b| b == b';').find_map(|t| {
        let (k, v) = match memchr::memchr(b'=', t) {
            Some(i) => (&t[..i], &t[i + 1..]),
            None => (t, &b""[..]),
        };
        (k == key).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found() {
        let line = b"@batch=7;time=2024-01-01T00:00:00.000Z;msgid=x :a!b@c PRIVMSG #h :0 1 2";
        assert_eq!(tag(line, b"batch"), Some(&b"7"[..]));
        assert_eq!(tag(line, b"time"), Some(&b"2024-01-01T00:00:00.000Z"[..]));
        assert_eq!(tag(line, b"msgid"), Some(&b"x"[..]));
        assert_eq!(tag(line, b"account"), None);
        assert_eq!(tag(b":a PRIVMSG #h :x", b"time"), None);
    }
}
