//! A client's lines as TLS records.
//!
//! Shared lines cannot be shared bytes here: each connection has its own
//! keys. So a write takes a batch of queued lines (up to [`BATCH_LIMIT`]
//! bytes), seals it into as few records as TLS allows (16 KiB each: one
//! record for a typical burst, instead of one per line), and writes the
//! records with one gathered `send`. New lines are sealed only once the
//! last batch has left, so a client that does not read holds at most one
//! sealed batch; the rest waits in its queue, counted against its sendq
//! like everyone's.
//!
//! The session is behind a mutex because the outbox's writer (any task)
//! and the connection's reader use it: each holds it for one step, never
//! across an `.await`, and the reader never takes the outbox's lock while
//! holding it.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use rustls::ServerConnection;
use tokio::net::TcpStream;

use super::READ_CHUNK;

/// Plaintext sealed in one write. Four full records: enough to fill a
/// socket's buffer in one `send`, small enough that a blocked client's
/// sealed bytes stay modest.
const BATCH_LIMIT: usize = 64 * 1024;

/// Lines handed to rustls in one call; more than this many would be short
/// lines that fit in the batch anyway.
const BATCH_LINES: usize = 256;

#[derive(Debug)]
pub(super) struct TlsSession {
    connection: Mutex<ServerConnection>,
    /// Decrypted input may be waiting in the session: the reader left some
    /// behind, or the handshake brought some along. The socket's readiness
    /// alone would not say so.
    plaintext_waiting: AtomicBool,
    /// The client certificate's fingerprint (certfp), if it showed one.
    certfp: Option<Box<str>>,
}

impl TlsSession {
    pub(super) fn new(mut connection: ServerConnection) -> TlsSession {
        // Sealed output is bounded by the batch, not by rustls's default
        // limit, which would make a batch go in several calls.
        connection.set_buffer_limit(None);
        let certfp = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| crate::tls::fingerprint(leaf).into_boxed_str());
        TlsSession {
            connection: Mutex::new(connection),
            plaintext_waiting: AtomicBool::new(true),
            certfp,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ServerConnection> {
        // A panic inside rustls leaves a session we would only close.
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn certfp(&self) -> Option<&str> {
        self.certfp.as_deref()
    }

    /// Whether sealed records wait for the socket.
    pub(super) fn has_pending_output(&self) -> bool {
        self.lock().wants_write()
    }

    /// Sends what is sealed, then seals and sends the front of `lines`.
    /// Returns the plaintext bytes taken from `lines`; `WouldBlock` when
    /// earlier records still wait and none of `lines` could be taken.
    pub(super) fn write_some(
        &self,
        socket: &TcpStream,
        lines: &mut VecDeque<Bytes>,
    ) -> io::Result<usize> {
        let mut connection = self.lock();
        send_sealed(&mut connection, socket)?;
        if lines.is_empty() {
            return Ok(0);
        }
        let taken = seal(&mut connection, lines)?;
        match send_sealed(&mut connection, socket) {
            // What was taken is the session's now: the next call sends it.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            result => result.map(|()| taken),
        }
    }

    /// Reads decrypted input into `buffer`; `Ok(0)` at end of input.
    pub(super) fn read_available(
        &self,
        socket: &TcpStream,
        buffer: &mut BytesMut,
    ) -> io::Result<usize> {
        let mut connection = self.lock();
        loop {
            let start = buffer.len();
            buffer.resize(start + READ_CHUNK, 0);
            let result = connection.reader().read(&mut buffer[start..]);
            match result {
                Ok(read) => {
                    buffer.truncate(start + read);
                    // A full chunk may have left more behind.
                    self.plaintext_waiting
                        .store(read == READ_CHUNK, Ordering::Relaxed);
                    return Ok(read);
                }
                Err(error) => {
                    buffer.truncate(start);
                    match error.kind() {
                        io::ErrorKind::WouldBlock => {}
                        // The peer closed the socket without close_notify:
                        // for IRC that is an ordinary end of input.
                        io::ErrorKind::UnexpectedEof => return Ok(0),
                        _ => return Err(error),
                    }
                }
            }
            self.plaintext_waiting.store(false, Ordering::Relaxed);
            if connection.read_tls(&mut SocketIo(socket))? == 0 {
                return Ok(0);
            }
            if let Err(error) = connection.process_new_packets() {
                // rustls queued an alert saying why; send it if the socket
                // takes it now, the connection ends either way.
                let _ = connection.write_tls(&mut SocketIo(socket));
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    }

    /// Whether decrypted input waits, so the reader need not wait for the
    /// socket.
    pub(super) fn plaintext_waiting(&self) -> bool {
        self.plaintext_waiting.load(Ordering::Relaxed)
    }

    /// Says goodbye the TLS way (close_notify), if the socket takes it now.
    pub(super) fn close(&self, socket: &TcpStream) {
        let mut connection = self.lock();
        connection.send_close_notify();
        let _ = send_sealed(&mut connection, socket);
    }
}

/// Writes sealed records until none are left (`Ok`) or the socket is full
/// (`WouldBlock`).
fn send_sealed(connection: &mut ServerConnection, socket: &TcpStream) -> io::Result<()> {
    while connection.wants_write() {
        if connection.write_tls(&mut SocketIo(socket))? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Seals the front of `lines`, up to [`BATCH_LIMIT`] bytes, and drops it
/// from `lines`. Returns the bytes taken.
fn seal(connection: &mut ServerConnection, lines: &mut VecDeque<Bytes>) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); BATCH_LINES];
    let mut count = 0;
    let mut size = 0;
    for line in lines.iter().take(BATCH_LINES) {
        if count > 0 && size + line.len() > BATCH_LIMIT {
            break;
        }
        slices[count] = IoSlice::new(line);
        count += 1;
        size += line.len();
    }
    let taken = connection.writer().write_vectored(&slices[..count])?;
    super::drop_front(lines, taken);
    Ok(taken)
}

/// The socket as rustls reads and writes it: never waiting, and clearing
/// tokio's readiness when the kernel says it would block.
struct SocketIo<'a>(&'a TcpStream);

impl Read for SocketIo<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buffer)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.try_write(bytes)
    }

    fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(slices)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
