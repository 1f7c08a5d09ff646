//! Lines: a read buffer that hands out complete lines as slices (never
//! copied), and the little parsing the bench needs.

use tokio::io::AsyncReadExt;

/// The longest line accepted (a buffer grows up to this for one line).
const MAX_LINE: usize = 64 * 1024;

/// A read buffer that yields complete lines (without CR LF); a line split
/// across reads stays in the buffer until its end arrives.
pub struct LineReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl LineReader {
    pub fn new(capacity: usize) -> LineReader {
        LineReader {
            buf: vec![0; capacity.max(1024)],
            start: 0,
            end: 0,
        }
    }

    /// The next complete line already buffered.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let pos = memchr::memchr(b'\n', &self.buf[self.start..self.end])?;
        let line_start = self.start;
        let mut line_end = self.start + pos;
        self.start = line_end + 1;
        if line_end > line_start && self.buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        Some(&self.buf[line_start..line_end])
    }

    /// Drops whatever is buffered.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads once more from `rd`; `Ok(0)` at end of stream.
    pub async fn fill<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
    ) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_LINE {
                let len = (self.buf.len() * 2).min(MAX_LINE);
                self.buf.resize(len, 0);
            } else {
                return Err(std::io::Error::other("line longer than 64 KiB"));
            }
        }
        let n = rd.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// What a line is, as far as the bench cares.
pub enum Msg<'a> {
    Ping(&'a [u8]),
    /// The PONG's last parameter (our token).
    Pong(&'a [u8]),
    Error(&'a [u8]),
    /// A three-digit numeric and its parameters (target first).
    Numeric(u16, &'a [u8]),
    Other {
        prefix: &'a [u8],
        command: &'a [u8],
        params: &'a [u8],
    },
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// Splits a line into prefix, command and parameters (tags are skipped).
pub fn classify(mut line: &[u8]) -> Msg<'_> {
    if line.first() == Some(&b'@') {
        line = split_word(line).1;
    }
    let mut prefix: &[u8] = &[];
    if line.first() == Some(&b':') {
        let (p, rest) = split_word(line);
        prefix = &p[1..];
        line = rest;
    }
    let (command, params) = split_word(line);
    match command {
        b"PING" => Msg::Ping(last_param(params)),
        b"PONG" => Msg::Pong(last_param(params)),
        b"ERROR" => Msg::Error(last_param(params)),
        [a, b, c] if command.iter().all(u8::is_ascii_digit) => {
            let code = (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16;
            Msg::Numeric(code, params)
        }
        _ => Msg::Other {
            prefix,
            command,
            params,
        },
    }
}

/// The last parameter: the trailing one after ` :`, or else the last word.
pub fn last_param(params: &[u8]) -> &[u8] {
    if let Some(rest) = params.strip_prefix(b":") {
        return rest;
    }
    if let Some(i) = memchr::memmem::find(params, b" :") {
        return &params[i + 2..];
    }
    match memchr::memrchr(b' ', params) {
        Some(i) => &params[i + 1..],
        None => params,
    }
}

/// The first parameter.
pub fn first_param(params: &[u8]) -> &[u8] {
    let p = split_word(params).0;
    p.strip_prefix(b":").unwrap_or(p)
}

/// The nick in a `nick!user@host` prefix.
pub fn prefix_nick(prefix: &[u8]) -> &[u8] {
    split_at(prefix, b'!')
}

fn split_at(s: &[u8], c: u8) -> &[u8] {
    memchr::memchr(c, s).map_or(s, |i| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    fn show(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn classifies_lines() {
        assert!(matches!(classify(b"PING :abc"), Msg::Ping(b"abc")));
        assert!(matches!(classify(b":s PING s"), Msg::Ping(b"s")));
        assert!(matches!(classify(b":s PONG s :tok"), Msg::Pong(b"tok")));
        assert!(matches!(
            classify(b"ERROR :Closing"),
            Msg::Error(b"Closing")
        ));
        assert!(matches!(
            classify(b":s 001 pb1 :Welcome"),
            Msg::Numeric(1, b"pb1 :Welcome")
        ));
        let Msg::Other {
            prefix,
            command,
            params,
        } = classify(b"@t=1 :n!u@h PRIVMSG #c :hi there")
        else {
            panic!("not Other");
        };
        assert_eq!(prefix_nick(prefix), b"n");
        assert_eq!(command, b"PRIVMSG");
        assert_eq!(first_param(params), b"#c");
        assert_eq!(last_param(params), b"hi there");
        assert_eq!(last_param(b"#c"), b"#c");
        assert_eq!(first_param(b":#c"), b"#c");
    }

    #[tokio::test]
    async fn lines_split_across_reads_are_joined() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for part in [&b"one\r\ntw"[..], b"o\r", b"\nthree\nlong"] {
                s.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let (mut rd, _wr) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut lines = LineReader::new(4);
        let mut got = Vec::new();
        while lines.fill(&mut rd).await.unwrap() > 0 {
            while let Some(line) = lines.next_line() {
                got.push(show(line));
            }
        }
        writer.await.unwrap();
        assert_eq!(got, ["one", "two", "three"]);
    }
}
