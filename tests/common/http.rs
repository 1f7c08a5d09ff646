//! A raw HTTP/1.1 client for the HTTP door's tests: requests written byte
//! by byte as a test wants them (whole, trickled, oversized), answers read
//! with a timeout and parsed here.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// Most bytes of an answer read; the door's answers are far smaller.
const MAX_ANSWER: usize = 4 << 20;

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on a connection of its own that the answer closes.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    let stream = super::tcp_connect(addr).await;
    get_over(stream, path).await
}

/// `GET path` from the loopback address `local` (any of 127.0.0.0/8), as
/// another host would ask.
pub async fn get_from(addr: SocketAddr, local: IpAddr, path: &str) -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(local, 0))
        .expect("bind a loopback address");
    let stream = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    get_over(stream, path).await
}

async fn get_over(mut stream: TcpStream, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_answer(&mut stream).await
}

/// Sends `request` as it is and reads the answer up to the end of the
/// connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = super::tcp_connect(addr).await;
    stream.write_all(request).await.expect("write");
    read_answer(&mut stream).await
}

/// Reads until the server closes the connection (within [`WAIT`]) and
/// parses what came.
pub async fn read_answer(stream: &mut TcpStream) -> Answer {
    let bytes = read_to_close(stream, WAIT)
        .await
        .expect("the server closes the connection in time");
    parse(&bytes)
        .unwrap_or_else(|| panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(&bytes)))
}

/// Everything the server sends until it closes the connection; `None` if
/// it is still open after `within`. A reset counts as a close.
pub async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    while bytes.len() < MAX_ANSWER {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(bytes),
            Ok(Ok(n)) => bytes.extend_from_slice(&buffer[..n]),
        }
    }
    panic!("an answer of over {MAX_ANSWER} bytes");
}

/// Parses one answer: status line, headers, and a body of
/// `content-length` bytes or chunks.
pub fn parse(bytes: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(bytes);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut words = status_line.splitn(3, ' ');
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect::<Option<_>>()?;
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().ok()?;
        rest.get(..length)?.to_owned()
    } else {
        rest.to_owned()
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}
