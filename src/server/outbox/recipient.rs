//! Queueing a user's message (a stamped line) for one client, and the
//! client as a broadcast sees it before queueing.

use std::cell::OnceCell;

use bytes::Bytes;

use super::Outbox;
use crate::proto::tags::{self, TagMask};
use crate::server::stamped::StampedLine;

/// A client as a sender sees it just before queueing a message for it:
/// read apart from the queueing, so that a broadcast can look up many
/// recipients before it takes any of their locks (see
/// `Channel::broadcast_message`).
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    outbox: &'a Outbox,
    tag_mask: TagMask,
    capturing: bool,
}

impl Recipient<'_> {
    pub fn tag_mask(&self) -> TagMask {
        self.tag_mask
    }

    /// Queues user messages: a client that takes no tags gets their bodies
    /// in one piece, `joined` (made by the first that needs it, see
    /// [`StampedLine::joined_bodies`]), the others each line as they take
    /// it. So does a client whose queue is near its limit (see
    /// [`Outbox::push_piece`]).
    pub fn send_stamped_run(&self, lines: &[StampedLine<'_>], joined: &OnceCell<Bytes>) -> bool {
        // A lone line (most messages) is queued as it always was: one lock.
        if let [line] = lines {
            return self.send_stamped(line);
        }
        if self.tag_mask == TagMask::NONE && !self.capturing {
            let piece = joined.get_or_init(|| StampedLine::joined_bodies(lines));
            if let Some(queued) = self.outbox.push_piece(piece) {
                return queued;
            }
        }
        lines.iter().all(|line| self.send_stamped(line))
    }

    /// [`Outbox::send_stamped`].
    pub fn send_stamped(&self, line: &StampedLine<'_>) -> bool {
        let line = stamped_view(line, self.tag_mask);
        match self.outbox.captured_if(self.capturing, line) {
            Some(line) => self.outbox.push(line),
            None => true,
        }
    }
}

impl Outbox {
    /// This client as a sender sees it before queueing a message.
    pub fn recipient(&self) -> Recipient<'_> {
        Recipient {
            outbox: self,
            tag_mask: self.tag_mask(),
            capturing: self.is_capturing(),
        }
    }

    /// Queues a user's message as this client takes it.
    pub fn send_stamped(&self, line: &StampedLine<'_>) -> bool {
        self.recipient().send_stamped(line)
    }

    /// Queues a message that is never part of a labeled reply, even while
    /// one is collected: a message a client sent to itself.
    pub fn send_stamped_unlabeled(&self, line: &StampedLine<'_>) -> bool {
        self.push(stamped_view(line, self.tag_mask()))
    }
}

/// `line` as a client with `mask` takes it.
fn stamped_view(line: &StampedLine<'_>, mask: TagMask) -> Bytes {
    match mask {
        TagMask::NONE => line.body().clone(),
        mask => tags::view(line.tagged(), mask),
    }
}
