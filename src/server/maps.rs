//! The hash maps and sets of the network state.
//!
//! Keyed by foldhash instead of the standard SipHash: several times faster
//! on the short keys looked up for every message (nicks, channel names,
//! client ids). Its `quality` variant is seeded per process, like SipHash,
//! so names that all collide cannot be worked out in advance.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
pub type HashSet<T> = std::collections::HashSet<T, foldhash::quality::RandomState>;
