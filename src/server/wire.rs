//! How bytes leave and arrive: the one place that knows a client's
//! transport.
//!
//! A client's queued lines become bytes on its wire here and nowhere else:
//! the outbox hands its lines to [`Wire::write_some`] and learns how much
//! of them went, whatever carries them. Plain TCP gathers the lines into
//! one buffer per `send` (`gather.rs`). Input comes through
//! [`Wire::read_available`], so the connection code never touches the
//! socket either.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

mod gather;

/// Room made in a client's input buffer before each read. Lines cut at
/// its end wait in the buffer for the rest; a burst fills several reads.
pub const READ_CHUNK: usize = 4096;

/// A client's connection as the outbox and the reader see it.
#[derive(Debug)]
pub struct Wire {
    socket: TcpStream,
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
        Wire { socket }
    }

    fn transport(&self) -> crate::metrics::Transport {
        crate::metrics::Transport::Plain
    }

    /// Writes the front of `lines` until the connection would block,
    /// dropping what was written (mid-line if need be). Returns the bytes
    /// of `lines` taken, or the error that stopped it (`WouldBlock` once
    /// the connection takes nothing more).
    pub(super) fn write_some(&self, lines: &mut VecDeque<Bytes>) -> io::Result<usize> {
        let written = gather::write_some(&self.socket, lines)?;
        crate::metrics::bytes_written(written);
        Ok(written)
    }

    /// Resolves when the connection can take more bytes.
    pub(super) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.socket.poll_write_ready(cx)
    }

    /// Ends the sending side, once everything queued is written.
    pub(super) fn shutdown(&self) {
        let _ = socket2::SockRef::from(&self.socket).shutdown(std::net::Shutdown::Write);
    }

    /// Resolves when [`Wire::read_available`] may find input.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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

/// A wire lives exactly as long as its client's connection, so it keeps the
/// count of open connections by transport.
impl Drop for Wire {
    fn drop(&mut self) {
        crate::metrics::connection_closed(self.transport());
    }
}
