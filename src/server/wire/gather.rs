//! Writing a client's queued lines to its socket, gathered into one buffer
//! per write.

use std::collections::VecDeque;
use std::io::ErrorKind;

use bytes::Bytes;
use tokio::net::TcpStream;

/// Bytes copied into one buffer for one write. The kernel copies a
/// contiguous buffer much faster than the same bytes in many small iovecs
/// (one per line), and a recipient of a busy channel has dozens queued.
const GATHER_LIMIT: usize = 64 * 1024;

thread_local! {
    static GATHERED: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(Vec::with_capacity(GATHER_LIMIT));
}

/// Writes the front of `lines` to `socket` until it would block, dropping
/// what was written (mid-line if need be). Returns the bytes written, or the
/// error that stopped it (`WouldBlock` once the socket is full).
pub(super) fn write_some(
    socket: &TcpStream,
    lines: &mut VecDeque<Bytes>,
) -> std::io::Result<usize> {
    let mut total = 0;
    while !lines.is_empty() {
        let attempt = match lines.len() {
            1 => socket.try_write(&lines[0]),
            _ => GATHERED.with(|gathered| {
                let mut gathered = gathered.borrow_mut();
                gathered.clear();
                for line in lines.iter() {
                    if !gathered.is_empty() && gathered.len() + line.len() > GATHER_LIMIT {
                        break;
                    }
                    gathered.extend_from_slice(line);
                }
                socket.try_write(&gathered)
            }),
        };
        let written = match attempt {
            Ok(0) => Err(ErrorKind::WriteZero.into()),
            Ok(written) => Ok(written),
            // Bytes already written still count as written.
            Err(error) if total > 0 && error.kind() == ErrorKind::WouldBlock => break,
            Err(error) => Err(error),
        }?;
        total += written;
        super::drop_front(lines, written);
    }
    Ok(total)
}
