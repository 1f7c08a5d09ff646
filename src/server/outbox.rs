//! A client's outbound queue (its "sendq") and the task that drains it.
//!
//! Senders push shared `Bytes` handles without waiting; the writer task takes
//! everything queued at once and writes it in one syscall. A client whose
//! queue passes its byte limit is cut off instead of growing memory or
//! slowing down the sender.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Lines handed to one vectored write (the kernel takes up to 1024).
const MAX_IOVECS: usize = 64;
/// How long an ended connection may take to receive its last lines.
pub const CLOSE_FLUSH_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Closed by the server: queued lines are still flushed.
    Closing,
    /// The sendq limit was passed: queued lines are dropped.
    Overflowed,
}

#[derive(Debug)]
struct Queue {
    lines: VecDeque<Bytes>,
    bytes: usize,
    state: State,
    /// Why another task asked this connection to end (KILL).
    end_reason: Option<String>,
}

#[derive(Debug)]
struct Shared {
    // A blocking mutex: every critical section is a push or a swap and never
    // crosses an `.await`.
    queue: Mutex<Queue>,
    wake_writer: Notify,
    limit: usize,
    /// Cancelled when the connection must end (closed or overflowed); the
    /// connection's reader watches it.
    ended: CancellationToken,
}

/// The sending side of a client's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    lines: VecDeque::new(),
                    bytes: 0,
                    state: State::Open,
                    end_reason: None,
                }),
                wake_writer: Notify::new(),
                limit,
                ended: CancellationToken::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half-updated
        // (each section is one push or swap), so a poisoned lock is usable.
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one line. Returns `false` if the client is gone or this line
    /// passed its sendq limit (the connection is then being cut off).
    pub fn send(&self, line: &Bytes) -> bool {
        let mut queue = self.lock();
        if queue.state != State::Open {
            return false;
        }
        if queue.bytes + line.len() > self.shared.limit {
            queue.state = State::Overflowed;
            queue.lines.clear();
            queue.bytes = 0;
            drop(queue);
            self.shared.ended.cancel();
            self.shared.wake_writer.notify_one();
            return false;
        }
        queue.bytes += line.len();
        queue.lines.push_back(line.clone());
        drop(queue);
        self.shared.wake_writer.notify_one();
        true
    }

    /// Queues a last line (typically `ERROR`), then closes: the writer
    /// flushes what is queued and shuts the socket.
    pub fn close_with(&self, last_line: Bytes) {
        let mut queue = self.lock();
        if queue.state == State::Open {
            queue.bytes += last_line.len();
            queue.lines.push_back(last_line);
            queue.state = State::Closing;
        }
        drop(queue);
        self.shared.ended.cancel();
        self.shared.wake_writer.notify_one();
    }

    /// Asks the connection to end with `reason`. Only the connection's own
    /// task removes its client from the network, so its handlers can rely on
    /// their client being there; other tasks (KILL) ask through here.
    pub fn request_disconnect(&self, reason: String) {
        let mut queue = self.lock();
        queue.end_reason.get_or_insert(reason);
        drop(queue);
        self.shared.ended.cancel();
    }

    /// Why the connection must end, once [`Outbox::ended`] has resolved.
    pub fn end_reason(&self) -> String {
        let queue = self.lock();
        match (&queue.end_reason, queue.state) {
            (_, State::Overflowed) => "SendQ exceeded".to_owned(),
            (Some(reason), _) => reason.clone(),
            (None, _) => "Connection closed".to_owned(),
        }
    }

    pub fn is_overflowed(&self) -> bool {
        self.lock().state == State::Overflowed
    }

    /// Resolves when the connection must end.
    pub fn ended(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.shared.ended.cancelled()
    }

    pub fn is_ended(&self) -> bool {
        self.shared.ended.is_cancelled()
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Drains the queue into `socket` until the outbox is closed. Returns
    /// when everything queued before the close was written, the sendq
    /// overflowed, the socket failed, or a closed connection did not take
    /// its last lines within [`CLOSE_FLUSH_LIMIT`].
    pub async fn run_writer<W: AsyncWrite + Unpin>(&self, mut socket: W) {
        // One timer for the writer's whole life, so a peer that never reads
        // cannot keep a closed connection (and its slot) forever. Once it
        // has fired, every path below leaves the loop, so it is never polled
        // again after completing.
        let mut give_up = std::pin::pin!(self.give_up());
        loop {
            let (lines, state) = {
                let mut queue = self.lock();
                let lines = std::mem::take(&mut queue.lines);
                (lines, queue.state)
            };
            if state == State::Overflowed {
                // The leading CRLF ends any line cut short by the overflow.
                let error = b"\r\nERROR :SendQ exceeded\r\n";
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(error)).await;
                break;
            }
            if lines.is_empty() {
                if state == State::Closing {
                    break;
                }
                self.shared.wake_writer.notified().await;
                continue;
            }
            if let Err(error) = self.write_lines(&mut socket, lines, give_up.as_mut()).await {
                if self.is_overflowed() {
                    // Loop round to send the ERROR.
                    continue;
                }
                // Tell the reader, so the client leaves the network now
                // rather than at its next read.
                self.request_disconnect(format!("Write error: {error}"));
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
    }

    /// Writes `lines` with vectored writes straight from the shared
    /// buffers: no per-client copy buffer to keep after a burst, and no
    /// copying of each line.
    async fn write_lines<W: AsyncWrite + Unpin>(
        &self,
        socket: &mut W,
        mut lines: VecDeque<Bytes>,
        mut give_up: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> std::io::Result<()> {
        while !lines.is_empty() {
            let written = {
                // On the heap, not inline: a future keeps what it holds
                // across the write, and every idle client carries one.
                let slices: Vec<IoSlice<'_>> = lines
                    .iter()
                    .take(MAX_IOVECS)
                    .map(|line| IoSlice::new(line))
                    .collect();
                // Raced against giving up, so a client that stopped reading
                // cannot keep this task blocked forever.
                tokio::select! {
                    result = socket.write_vectored(&slices) => result?,
                    () = give_up.as_mut() => return Err(std::io::ErrorKind::TimedOut.into()),
                }
            };
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            let mut left = written;
            while let Some(first) = lines.front_mut() {
                if first.len() > left {
                    first.advance(left);
                    break;
                }
                left -= first.len();
                lines.pop_front();
            }
            // Credited write by write, so bytes the client already has never
            // count against its sendq.
            let mut queue = self.lock();
            queue.bytes = queue.bytes.saturating_sub(written);
        }
        Ok(())
    }

    /// Resolves when writing should stop: at once on overflow, or
    /// [`CLOSE_FLUSH_LIMIT`] after the connection was ended.
    async fn give_up(&self) {
        self.shared.ended.cancelled().await;
        if !self.is_overflowed() {
            tokio::time::sleep(CLOSE_FLUSH_LIMIT).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_the_limit_overflows_and_ends_the_connection() {
        let outbox = Outbox::new(10);
        assert!(outbox.send(&Bytes::from_static(b"12345\r\n")));
        assert!(!outbox.send(&Bytes::from_static(b"12345\r\n")));
        assert!(outbox.is_overflowed());
        assert!(outbox.is_ended());
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn closing_flushes_what_was_queued() {
        let outbox = Outbox::new(1024);
        outbox.send(&Bytes::from_static(b"A\r\n"));
        outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
        assert!(!outbox.send(&Bytes::from_static(b"late\r\n")));
        let mut written = Vec::new();
        outbox.run_writer(&mut written).await;
        assert_eq!(written, b"A\r\nERROR :bye\r\n");
    }

    /// Takes at most three bytes per write, like a congested socket.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_resume_mid_line_and_credit_the_sendq() {
        let outbox = Outbox::new(8192);
        let lines: Vec<String> = (0..100)
            .map(|i| format!("PRIVMSG #c :line {i}\r\n"))
            .collect();
        for line in &lines {
            outbox.send(&Bytes::from(line.clone()));
        }
        outbox.close_with(Bytes::from_static(b"ERROR :bye\r\n"));
        let mut socket = Trickle(Vec::new());
        outbox.run_writer(&mut socket).await;
        assert_eq!(
            String::from_utf8(socket.0).unwrap(),
            lines.concat() + "ERROR :bye\r\n"
        );
        assert_eq!(outbox.queued_bytes(), 0);
    }
}
