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
    pub fn finish(self) {
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
                for line in lines {
                    // A line of a batch of its own (history) already
                    // belongs somewhere; only that batch's start is ours.
                    if has_tag(line, b"batch") {
                        self.outbox.send_as_is(line.clone());
                    } else {
                        self.outbox.send_as_is(batch.wrap(line));
                    }
                }
                self.outbox.send_as_is(batch.end_line());
            }
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
        }
        poll
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
