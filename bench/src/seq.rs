//! Per-sender sequence tracking at a receiver: new, duplicate, or new but
//! out of order. In-order arrival (the usual case) costs a few compares; a
//! bitset is kept only while something that arrived early waits for the
//! messages before it.

/// Which messages one sender's receiver has seen, in order or not.
#[derive(Default)]
pub struct Seq {
    /// Every seq below this was seen.
    next: u64,
    /// One past the highest seq seen.
    high: u64,
    /// Seen seqs at or above `next`, once anything arrived out of order.
    bits: Option<Vec<u64>>,
}

pub enum Arrival {
    New { reordered: bool },
    Duplicate,
}

impl Seq {
    pub fn record(&mut self, q: u64) -> Arrival {
        if q == self.next && q == self.high && self.bits.is_none() {
            self.next += 1;
            self.high += 1;
            return Arrival::New { reordered: false };
        }
        if q < self.next {
            return Arrival::Duplicate;
        }
        let bits = self.bits.get_or_insert_with(Vec::new);
        let (word, bit) = ((q / 64) as usize, 1u64 << (q % 64));
        if bits.get(word).is_some_and(|w| w & bit != 0) {
            return Arrival::Duplicate;
        }
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        bits[word] |= bit;
        let reordered = q < self.high;
        self.high = self.high.max(q + 1);
        while self.next < self.high
            && bits[(self.next / 64) as usize] & (1 << (self.next % 64)) != 0
        {
            self.next += 1;
        }
        if self.next == self.high {
            // Caught up: everything below `next` is implied again.
            self.bits = None;
        }
        Arrival::New { reordered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_count_duplicates_and_reordering() {
        let mut s = Seq::default();
        assert!(matches!(s.record(0), Arrival::New { reordered: false }));
        assert!(matches!(s.record(2), Arrival::New { reordered: false }));
        assert!(matches!(s.record(1), Arrival::New { reordered: true }));
        assert!(matches!(s.record(1), Arrival::Duplicate));
        assert!(matches!(s.record(0), Arrival::Duplicate));
        assert!(matches!(s.record(3), Arrival::New { reordered: false }));
        assert_eq!(s.next, 4);
        assert!(s.bits.is_none(), "caught up, back on the fast path");
        assert!(matches!(s.record(6), Arrival::New { reordered: false }));
        assert!(matches!(s.record(6), Arrival::Duplicate));
        assert!(matches!(s.record(4), Arrival::New { reordered: true }));
        assert_eq!((s.next, s.high), (5, 7));
    }
}
