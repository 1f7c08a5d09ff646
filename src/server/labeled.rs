//! labeled-response: what the server sends a client because of one
//! labeled command goes out as one labeled unit, an `ACK` when there is
//! nothing, the line itself when there is one, a `labeled-response` batch
//! when there are more.
//!
//! Handlers know nothing of it: while a labeled command runs, the lines
//! this thread queues for the client are captured instead of queued
//! (see `Outbox::send`). Lines other connections' tasks queue for the client
//! meanwhile are not part of the reply and go out as usual.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::batch::Batch;
use super::flush::FlushScope;
use super::outbox::Outbox;
use crate::proto::tags;
use crate::proto::LineBuilder;

struct Active {
    /// The outbox being captured, by the address of what its clones share.
    outbox: *const (),
    lines: Vec<Bytes>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// Takes `line` into the capture running on this thread if it is for
/// `outbox`; gives it back otherwise.
pub(super) fn capture(outbox: &Outbox, line: Bytes) -> Option<Bytes> {
    ACTIVE.with(|active| match active.borrow_mut().as_mut() {
        Some(active) if active.outbox == outbox.identity() => {
            active.lines.push(line);
            None
        }
        _ => Some(line),
    })
}

/// The reply to one labeled command, collected as it is produced.
pub struct LabeledReply {
    outbox: Outbox,
    server_name: String,
    label: String,
    lines: Vec<Bytes>,
    /// The batch, once a reply that waits for slow work has been found to
    /// need one and its lines so far were sent (see [`LabeledReply::send_so_far`]).
    batch: Option<Batch>,
}

/// Makes the capture inactive again however `run` is left.
struct Deactivate<'a> {
    reply: &'a mut LabeledReply,
}

impl Drop for Deactivate<'_> {
    fn drop(&mut self) {
        if let Some(active) = ACTIVE.with(|active| active.borrow_mut().take()) {
            self.reply.lines = active.lines;
        }
        self.reply.outbox.set_capturing(false);
    }
}

impl LabeledReply {
    pub fn new(outbox: Outbox, server_name: &str, label: &str) -> LabeledReply {
        LabeledReply {
            outbox,
            server_name: server_name.to_owned(),
            label: label.to_owned(),
            lines: Vec::new(),
            batch: None,
        }
    }

    /// Runs `work` with the lines this thread queues for the client
    /// captured into the reply.
    pub fn run<R>(&mut self, work: impl FnOnce() -> R) -> R {
        self.outbox.set_capturing(true);
        let lines = std::mem::take(&mut self.lines);
        let identity = self.outbox.identity();
        ACTIVE.with(|active| {
            *active.borrow_mut() = Some(Active {
                outbox: identity,
                lines,
            })
        });
        let _deactivate = Deactivate { reply: self };
        work()
    }

    /// Queues the reply, labeled.
    pub fn finish(mut self) {
        if self.batch.is_some() {
            self.send_so_far();
            if let Some(batch) = &self.batch {
                self.outbox.send_as_is(batch.end_line());
            }
            return;
        }
        let label = [("label", self.label.as_str())];
        match self.lines.as_slice() {
            [] => {
                let ack = LineBuilder::new(Some(&self.server_name), "ACK").finish();
                self.outbox.send_as_is(tags::prepend(&ack, &label));
            }
            [line] => {
                self.outbox.send_as_is(tags::prepend(line, &label));
            }
            lines => {
                let batch = Batch::start(&self.server_name, "labeled-response", &[]);
                self.outbox
                    .send_as_is(tags::prepend(&batch.start_line(), &label));
                send_in(&self.outbox, &batch, lines);
                self.outbox.send_as_is(batch.end_line());
            }
        }
    }

    /// Sends what a reply still waiting for slow work has captured so far,
    /// once it has two lines or more: it is then sure to be a batch, which
    /// is started, and its later lines follow as they come. A long reply
    /// (`WHO *` on a big network, made in slices that wait for the client
    /// to read) then goes out as it is made, instead of piling up here
    /// and passing the client's sendq at once when it ends.
    fn send_so_far(&mut self) {
        if self.batch.is_none() && self.lines.len() < 2 {
            return;
        }
        // One write for the lot.
        let _scope = FlushScope::enter();
        if self.batch.is_none() {
            let batch = Batch::start(&self.server_name, "labeled-response", &[]);
            let label = [("label", self.label.as_str())];
            self.outbox
                .send_as_is(tags::prepend(&batch.start_line(), &label));
            self.batch = Some(batch);
        }
        if let Some(batch) = &self.batch {
            send_in(&self.outbox, batch, &std::mem::take(&mut self.lines));
        }
    }

    /// `work` (a command that waits for slow work) with its replies
    /// captured, and the reply queued when it is done.
    pub fn around<F: Future + Send + 'static>(
        self,
        work: F,
    ) -> impl Future<Output = F::Output> + Send {
        Labeled {
            reply: Some(self),
            work: Box::pin(work),
        }
    }
}

struct Labeled<F: Future> {
    reply: Option<LabeledReply>,
    work: Pin<Box<F>>,
}

impl<F: Future> Future for Labeled<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let Some(reply) = this.reply.as_mut() else {
            return Poll::Pending;
        };
        let work = &mut this.work;
        let poll = reply.run(|| work.as_mut().poll(cx));
        if poll.is_ready() {
            if let Some(reply) = this.reply.take() {
                reply.finish();
            }
        } else {
            reply.send_so_far();
        }
        poll
    }
}

/// Queues `lines` in `batch`.
fn send_in(outbox: &Outbox, batch: &Batch, lines: &[Bytes]) {
    for line in lines {
        // A line of a batch of its own (history) already belongs
        // somewhere; only that batch's start is ours.
        if has_tag(line, b"batch") {
            outbox.send_as_is(line.clone());
        } else {
            outbox.send_as_is(batch.wrap(line));
        }
    }
}

fn has_tag(line: &[u8], key: &[u8]) -> bool {
    if line.first() != Some(&b'@') {
        return false;
    }
    let end = memchr::memchr(b' ', line).unwrap_or(line.len());
    line[1..end].split(|&byte| byte == b';').any(|tag| {
        let key_end = memchr::memchr(b'=', tag).unwrap_or(tag.len());
        &tag[..key_end] == key
    })
}

#[cfg(test)]
mod tests {
    use std::task::Poll;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    async fn connected() -> (Outbox, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Outbox::new(1 << 20, server), client)
    }

    fn line(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[tokio::test]
    async fn a_reply_still_waiting_goes_out_once_it_is_sure_to_be_a_batch() {
        let (outbox, peer) = connected().await;
        let mut peer = BufReader::new(peer).lines();
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(10), peer.next_line())
                .await
                .expect("a line in time")
                .unwrap()
                .unwrap()
        };
        let sender = outbox.clone();
        let mut polls = 0;
        // Two lines, then a wait, then one more and the end.
        let work = std::future::poll_fn(move |cx| {
            polls += 1;
            if polls == 1 {
                sender.send(&line(":s 352 me one\r\n"));
                sender.send(&line(":s 352 me two\r\n"));
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            sender.send(&line(":s 315 me :End\r\n"));
            Poll::Ready(())
        });
        let mut labeled = Box::pin(LabeledReply::new(outbox, "s", "L").around(work));
        let first = std::future::poll_fn(|cx| Poll::Ready(labeled.as_mut().poll(cx))).await;
        assert!(first.is_pending());

        // Out before the work is done.
        let start = next().await;
        let reference = start
            .strip_prefix("@label=L :s BATCH +")
            .and_then(|rest| rest.strip_suffix(" labeled-response"))
            .unwrap_or_else(|| panic!("{start}"))
            .to_owned();
        assert_eq!(next().await, format!("@batch={reference} :s 352 me one"));
        assert_eq!(next().await, format!("@batch={reference} :s 352 me two"));

        labeled.await;
        assert_eq!(next().await, format!("@batch={reference} :s 315 me :End"));
        assert_eq!(next().await, format!(":s BATCH -{reference}"));
    }

    #[tokio::test]
    async fn a_reply_of_one_line_after_a_wait_is_that_line_labeled() {
        let (outbox, peer) = connected().await;
        let mut peer = BufReader::new(peer).lines();
        let sender = outbox.clone();
        let mut polls = 0;
        let work = std::future::poll_fn(move |cx| {
            polls += 1;
            if polls == 1 {
                sender.send(&line(":s 381 me :You are now an IRC operator\r\n"));
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        });
        LabeledReply::new(outbox, "s", "L").around(work).await;
        let line = tokio::time::timeout(Duration::from_secs(10), peer.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(line, "@label=L :s 381 me :You are now an IRC operator");
    }
}
