//! Several replies for one client queued as one.

use bytes::{Bytes, BytesMut};

use super::Outbox;

/// Room reserved for a burst: the welcome (001 to 005, LUSERS and a short
/// MOTD) fits, so it is copied without regrowing.
const BURST_CAPACITY: usize = 4096;

/// Replies made one after another for one client (the welcome, LUSERS,
/// the MOTD), copied into one buffer as they are made and queued as one
/// line when the burst ends. Queued one by one, each line (its buffer and
/// its shared handle) would stay allocated until written, among the
/// allocations an idle client keeps for good: the holes they leave are
/// what made RSS grow faster than the live heap. Copied, each line is
/// freed at once and its room taken by the next.
pub struct Burst<'a> {
    outbox: &'a Outbox,
    joined: BytesMut,
}

impl<'a> Burst<'a> {
    pub fn new(outbox: &'a Outbox) -> Burst<'a> {
        Burst {
            outbox,
            joined: BytesMut::new(),
        }
    }

    pub fn send(&mut self, line: &Bytes) {
        // A tagged line is cut down to this client's capabilities, and the
        // reply to a labeled command takes lines one by one: such lines go
        // on their own, after what came before them.
        if line.first() == Some(&b'@') || self.outbox.is_capturing() {
            self.flush();
            self.outbox.send(line);
            return;
        }
        if self.joined.capacity() == 0 {
            self.joined.reserve(BURST_CAPACITY.max(line.len()));
        }
        self.joined.extend_from_slice(line);
    }

    /// Queues what the burst holds; dropping it does the same.
    pub fn finish(self) {}

    fn flush(&mut self) {
        if !self.joined.is_empty() {
            self.outbox.send_as_is(self.joined.split().freeze());
        }
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
