//! How bytes leave and arrive: the one place that knows a client's
//! transport.
//!
//! A client's queued lines become bytes on its wire here and nowhere else:
//! the outbox hands its lines to [`Wire::write_some`] and learns how much
//! of them went, whatever carries them. Plain TCP gathers the lines into
//! one buffer per `send` (`gather.rs`); TLS seals them into records
//! (`tls.rs`). Input comes through [`Wire::read_available`], so the
//! connection code never touches the socket either.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

mod gather;
mod tls;

/// Room made in a client's input buffer before each read. Lines cut at
/// its end wait in the buffer for the rest; a burst fills several reads.
pub const READ_CHUNK: usize = 4096;

/// A client's connection as the outbox and the reader see it.
#[derive(Debug)]
pub struct Wire {
    socket: TcpStream,
    /// Boxed: most clients' connections are plain, and every one carries
    /// this field.
    tls: Option<Box<tls::TlsSession>>,
}

impl From<TcpStream> for Wire {
    fn from(socket: TcpStream) -> Wire {
        Wire::plain(socket)
    }
}

impl Wire {
    /// Plain TCP: lines go out as they are.
    pub fn plain(socket: TcpStream) -> Wire {
        crate::metrics::connection_opened(crate::metrics::Transport::Plain);
        Wire { socket, tls: None }
    }

    /// TLS, its handshake done: lines go out sealed.
    pub fn tls(socket: TcpStream, session: rustls::ServerConnection) -> Wire {
        crate::metrics::connection_opened(crate::metrics::Transport::Tls);
        Wire {
            socket,
            tls: Some(Box::new(tls::TlsSession::new(session))),
        }
    }

    /// Whether the connection is encrypted (user mode `+Z`, `671`).
    pub fn is_secure(&self) -> bool {
        self.tls.is_some()
    }

    /// The fingerprint of the client's TLS certificate (certfp), if any.
    pub fn certfp(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|tls| tls.certfp())
    }

    /// Whether bytes already taken from the queue still wait to be
    /// written: sealed TLS records. The outbox's writer goes on until
    /// there are none, even with an empty queue.
    pub(super) fn has_pending_output(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|tls| tls.has_pending_output())
    }

    fn transport(&self) -> crate::metrics::Transport {
        match self.tls {
            None => crate::metrics::Transport::Plain,
            Some(_) => crate::metrics::Transport::Tls,
        }
    }

    /// Writes the front of `lines` until the connection would block,
    /// dropping what was written (mid-line if need be). Returns the bytes
    /// of `lines` taken, or the error that stopped it (`WouldBlock` once
    /// the connection takes nothing more).
    pub(super) fn write_some(&self, lines: &mut VecDeque<Bytes>) -> io::Result<usize> {
        let written = match &self.tls {
            None => gather::write_some(&self.socket, lines),
            Some(tls) => tls.write_some(&self.socket, lines),
        }?;
        crate::metrics::bytes_written(written);
        Ok(written)
    }

    /// Resolves when the connection can take more bytes.
    pub(super) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.socket.poll_write_ready(cx)
    }

    /// Ends the sending side, once everything queued is written.
    pub(super) fn shutdown(&self) {
        if let Some(tls) = &self.tls {
            tls.close(&self.socket);
        }
        let _ = socket2::SockRef::from(&self.socket).shutdown(std::net::Shutdown::Write);
    }

    /// Sends one line and closes, giving up after `within`: for a
    /// connection refused before it became a client.
    pub(super) async fn send_and_close(&self, line: Bytes, within: std::time::Duration) {
        let mut lines = VecDeque::from([line]);
        let deadline = tokio::time::Instant::now() + within;
        while !lines.is_empty() || self.has_pending_output() {
            match self.write_some(&mut lines) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let writable = std::future::poll_fn(|cx| self.poll_write_ready(cx));
                    if !matches!(
                        tokio::time::timeout_at(deadline, writable).await,
                        Ok(Ok(()))
                    ) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        self.shutdown();
    }

    /// Resolves when [`Wire::read_available`] may find input.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tls.as_ref().is_some_and(|tls| tls.plaintext_waiting()) {
            return Poll::Ready(Ok(()));
        }
        self.socket.poll_read_ready(cx)
    }

    /// Reads what the connection holds (up to [`READ_CHUNK`] more bytes)
    /// into `buffer`; `Ok(0)` at end of input.
    ///
    /// A read that leaves room in the buffer has drained the socket, so its
    /// readiness is cleared then and there, as tokio's own `poll_read` does
    /// on epoll: the next wait then sleeps until new input comes, instead of
    /// waking at once for one more read that finds nothing (one syscall in
    /// three for a client that sends a line at a time). The readiness
    /// cleared is the one seen before the read, so input that arrives
    /// during it is never missed; end of input is never cleared.
    pub fn read_available(&self, buffer: &mut BytesMut) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            return tls.read_available(&self.socket, buffer);
        }
        buffer.reserve(READ_CHUNK);
        let room = buffer.capacity() - buffer.len();
        let mut read = 0;
        let result = self.socket.try_io(Interest::READABLE, || {
            read = self.socket.try_read_buf(buffer)?;
            if read > 0 && read < room {
                // Not an error: it makes `try_io` clear the readiness.
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(read)
            }
        });
        match result {
            Err(_) if read > 0 => Ok(read),
            result => result,
        }
    }
}

/// Drops the first `bytes` bytes of `lines`: what the wire took, which may
/// end inside a line.
fn drop_front(lines: &mut VecDeque<Bytes>, bytes: usize) {
    let mut left = bytes;
    while let Some(first) = lines.front_mut() {
        if first.len() > left {
            first.advance(left);
            return;
        }
        left -= first.len();
        lines.pop_front();
    }
}

/// A wire lives exactly as long as its client's connection, so it keeps the
/// count of open connections by transport.
impl Drop for Wire {
    fn drop(&mut self) {
        crate::metrics::connection_closed(self.transport());
    }
}
