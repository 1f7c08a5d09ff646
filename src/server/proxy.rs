//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, versions 1 and 2)
//! on listeners marked `proxy = true`: a load balancer opens each
//! connection with a header naming the client's address, which then
//! stands for the peer's everywhere (limits, bans, WHOIS).
//!
//! The header is read before anything else happens on the socket, and
//! exactly its bytes are taken: what follows (IRC lines, or a TLS
//! handshake on a TLS listener) stays in the socket for whoever reads
//! next. A bad header, none within [`HEADER_TIMEOUT`], or a connection
//! from a sender not in the listener's `proxy_from` is closed without a
//! reply.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use super::Server;
use crate::config::Cidr;

/// How long a connection has to send its header: the specification asks
/// for at least 3 s, to cover a TCP retransmission.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest version 1 line, CRLF included (`PROXY UNKNOWN` with two
/// full IPv6 addresses and ports).
pub const V1_MAX: usize = 107;

/// The version 2 signature: twelve bytes no other protocol starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The most address and TLV bytes a version 2 header may carry. The
/// addresses take at most 216 (two UNIX paths); the rest is room for the
/// TLVs a balancer adds (ALPN, SNI, a unique id, TLS details). A longer
/// header is refused rather than read.
pub const V2_MAX_BLOCK: usize = 1024;

/// The longest header of either version.
pub const MAX_HEADER: usize = 16 + V2_MAX_BLOCK;

/// What the bytes at the start of a connection hold so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The start of a header: more bytes are needed, and every byte seen
    /// belongs to the header (so it may be taken off the socket).
    Incomplete,
    /// A whole header of `len` bytes. `source` is the client's address,
    /// or `None` when the header says to keep the connection's own (a
    /// LOCAL health check, `UNKNOWN`, a family other than TCP over IP).
    Complete {
        len: usize,
        source: Option<SocketAddr>,
    },
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not a PROXY header")]
    NotProxy,
    #[error("a PROXY v1 line without CRLF in its first {V1_MAX} bytes")]
    V1TooLong,
    #[error("a malformed PROXY v1 line")]
    V1Malformed,
    #[error("PROXY v2 header of version {0}, not 2")]
    V2Version(u8),
    #[error("PROXY v2 header with command {0}, neither LOCAL nor PROXY")]
    V2Command(u8),
    #[error("PROXY v2 header with address family and protocol {0:#04x}")]
    V2Family(u8),
    #[error("PROXY v2 header of {0} address bytes, more than {V2_MAX_BLOCK}")]
    V2TooLong(usize),
    #[error("PROXY v2 address block too short for its family")]
    V2ShortAddress,
}

/// Reads what `bytes`, the first bytes of a connection, hold: a header,
/// the start of one, or something else. The result for any prefix of
/// `bytes` is either [`Parsed::Incomplete`] or the same as for `bytes`,
/// and a complete header's result does not depend on what follows it.
pub fn parse(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    match bytes.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'P') => parse_v1(bytes),
        Some(b'\r') => parse_v2(bytes),
        Some(_) => Err(HeaderError::NotProxy),
    }
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    const START: &[u8] = b"PROXY ";
    let seen = bytes.len().min(START.len());
    if bytes[..seen] != START[..seen] {
        return Err(HeaderError::NotProxy);
    }
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(lf) = memchr::memchr(b'\n', window) else {
        return if bytes.len() >= V1_MAX {
            Err(HeaderError::V1TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    // A lone LF does not end the line ("must not tolerate a single CR or
    // LF character to end the line").
    let line = match lf.checked_sub(1) {
        Some(cr) if bytes[cr] == b'\r' => &bytes[..cr],
        _ => return Err(HeaderError::V1Malformed),
    };
    let source = v1_source(line).ok_or(HeaderError::V1Malformed)?;
    Ok(Parsed::Complete {
        len: lf + 1,
        source,
    })
}

/// The source of a version 1 line (without its CRLF): `None` inside for
/// `UNKNOWN`; `None` outside for a line that does not match the format.
fn v1_source(line: &[u8]) -> Option<Option<SocketAddr>> {
    let line = std::str::from_utf8(line).ok()?;
    // Exactly one space between the fields: `split` then yields an empty
    // field for two, which no field accepts.
    let mut fields = line.split(' ');
    if fields.next() != Some("PROXY") {
        return None;
    }
    let ipv4 = match fields.next()? {
        // "the receiver must ignore anything presented before the CRLF".
        "UNKNOWN" => return Some(None),
        "TCP4" => true,
        "TCP6" => false,
        _ => return None,
    };
    let address = |text: &str| -> Option<IpAddr> {
        if ipv4 {
            text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        } else {
            text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        }
    };
    let source = address(fields.next()?)?;
    address(fields.next()?)?;
    let source_port = v1_port(fields.next()?)?;
    v1_port(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    Some(Some(SocketAddr::new(source, source_port)))
}

/// A port: decimal, 0 to 65535, without leading zeros.
fn v1_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    let seen = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..seen] != V2_SIGNATURE[..seen] {
        return Err(HeaderError::NotProxy);
    }
    if bytes.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let (version, command) = (bytes[12] >> 4, bytes[12] & 0x0f);
    if version != 2 {
        return Err(HeaderError::V2Version(version));
    }
    let local = match command {
        0 => true,
        1 => false,
        other => return Err(HeaderError::V2Command(other)),
    };
    let family = bytes[13];
    let block_len = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if block_len > V2_MAX_BLOCK {
        return Err(HeaderError::V2TooLong(block_len));
    }
    // A LOCAL header's family is ignored, whatever it says.
    if !local && (family >> 4 > 3 || family & 0x0f > 2) {
        return Err(HeaderError::V2Family(family));
    }
    let len = 16 + block_len;
    let Some(block) = bytes.get(16..len) else {
        return Ok(Parsed::Incomplete);
    };
    if local {
        return Ok(Parsed::Complete { len, source: None });
    }
    // Only TCP over IPv4 and IPv6 name a client; the other valid families
    // fall back to the connection's own address, as the specification
    // allows a receiver that does not implement them. TLVs after the
    // addresses are skipped.
    let source = match family {
        0x11 => {
            let block = block.get(..12).ok_or(HeaderError::V2ShortAddress)?;
            let ip = Ipv4Addr::from(<[u8; 4]>::try_from(&block[..4]).expect("4 bytes"));
            Some(SocketAddr::new(ip.into(), port(&block[8..10])))
        }
        0x21 => {
            let block = block.get(..36).ok_or(HeaderError::V2ShortAddress)?;
            let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&block[..16]).expect("16 bytes"));
            Some(SocketAddr::new(ip.into(), port(&block[32..34])))
        }
        _ => None,
    };
    Ok(Parsed::Complete { len, source })
}

fn port(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Why a connection on a PROXY listener was dropped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the connection is not from an address in the listener's proxy_from")]
    Untrusted,
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the connection closed before its PROXY header ended")]
    Closed,
    #[error("no PROXY header within {HEADER_TIMEOUT:?}")]
    TimedOut,
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// The first thing done with a connection accepted on a PROXY listener,
/// before any other byte is read or written (a TLS listener's handshake
/// comes after it): reads its header, within [`HEADER_TIMEOUT`], and
/// returns the client's address. `peer` is the socket's own address,
/// which must be one of `trusted`, and which stands when the header names
/// no client (LOCAL, UNKNOWN).
pub async fn real_peer(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: &[Cidr],
) -> Result<SocketAddr, ReadError> {
    if !trusted.iter().any(|net| net.contains(peer.ip())) {
        return Err(ReadError::Untrusted);
    }
    match tokio::time::timeout(HEADER_TIMEOUT, read_header(stream)).await {
        Ok(read) => Ok(read?.unwrap_or(peer)),
        Err(_) => Err(ReadError::TimedOut),
    }
}

/// Reads the header a connection on a PROXY listener opens with, taking
/// exactly its bytes off the socket. Returns the client's address, or
/// `None` to keep the connection's own.
///
/// Each turn peeks at what has come and takes either the whole header or
/// all it saw (which [`Parsed::Incomplete`] says is header), so the next
/// peek waits for new bytes instead of finding the same ones again. A
/// header normally comes in one segment: one peek and one read.
pub async fn read_header(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ReadError> {
    let mut buffer = vec![0; MAX_HEADER];
    let mut taken = 0;
    // Each turn takes at least one byte, and a header is at most
    // MAX_HEADER of them.
    while taken < MAX_HEADER {
        let peeked = stream.peek(&mut buffer[taken..]).await?;
        if peeked == 0 {
            return Err(ReadError::Closed);
        }
        match parse(&buffer[..taken + peeked])? {
            Parsed::Complete { len, source } => {
                stream.read_exact(&mut buffer[taken..len]).await?;
                return Ok(source);
            }
            Parsed::Incomplete => {
                stream
                    .read_exact(&mut buffer[taken..taken + peeked])
                    .await?;
                taken += peeked;
            }
        }
    }
    Err(HeaderError::V2TooLong(taken).into())
}

/// Serves a connection accepted on a PROXY listener: on a task of its
/// own (so the accept loop never waits for a header), finds the client's
/// address with [`real_peer`] and hands the connection on under it, or
/// drops it without a word, as the specification asks ("must be discarded
/// and cause the receiver to abort the connection").
pub(super) fn start(
    server: &Arc<Server>,
    mut stream: TcpStream,
    peer: SocketAddr,
    trusted: Arc<Vec<Cidr>>,
    tracker: &TaskTracker,
) {
    let (server, inner) = (server.clone(), tracker.clone());
    tracker.spawn(async move {
        let read = tokio::select! {
            read = real_peer(&mut stream, peer, &trusted[..]) => read,
            () = server.shutdown_requested() => return,
        };
        match read {
            Ok(client) => {
                debug!(%peer, %client, "PROXY header read");
                super::connection::start(&server, super::wire::Wire::plain(stream), client, &inner);
                super::flush::write_held();
            }
            Err(error) => info!(%peer, %error, "connection dropped"),
        }
    });
}

#[cfg(test)]
mod tests;
