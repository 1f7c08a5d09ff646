//! What `limits.max_clients_per_ip` counts: connections per host. An IPv4
//! address is a host of its own; IPv6 addresses count together with the
//! others of their prefix (`limits.ipv6_prefix_len`, a /64 by default),
//! because a host, or a customer, is usually given a whole /64 and could
//! otherwise open as many connections as it has addresses.

use std::net::{IpAddr, Ipv6Addr};

use super::maps::HashMap;

/// The address that stands for `ip`'s group: an IPv4 address (or an IPv6
/// one that maps one) as it is, an IPv6 address with the bits past its
/// first `ipv6_prefix_len` cleared.
pub fn group(ip: IpAddr, ipv6_prefix_len: u32) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let mask = match ipv6_prefix_len.min(128) {
                0 => 0,
                len => u128::MAX << (128 - len),
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Connections at once per address group.
#[derive(Debug)]
pub struct ConnectionsPerAddress {
    ipv6_prefix_len: u32,
    counts: HashMap<IpAddr, usize>,
}

impl Default for ConnectionsPerAddress {
    /// Each address alone, until the configuration says otherwise.
    fn default() -> Self {
        ConnectionsPerAddress::new(128)
    }
}

impl ConnectionsPerAddress {
    pub fn new(ipv6_prefix_len: u32) -> ConnectionsPerAddress {
        ConnectionsPerAddress {
            ipv6_prefix_len,
            counts: HashMap::default(),
        }
    }

    /// Connections from `ip`'s group.
    pub fn count(&self, ip: IpAddr) -> usize {
        let group = group(ip, self.ipv6_prefix_len);
        self.counts.get(&group).copied().unwrap_or(0)
    }

    /// A connection from `ip` came.
    pub fn add(&mut self, ip: IpAddr) {
        *self
            .counts
            .entry(group(ip, self.ipv6_prefix_len))
            .or_default() += 1;
    }

    /// A connection from `ip` went.
    pub fn remove(&mut self, ip: IpAddr) {
        let group = group(ip, self.ipv6_prefix_len);
        if let Some(count) = self.counts.get_mut(&group) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_group_by_prefix_and_ipv4_ones_stay_alone() {
        assert_eq!(group(ip("2001:db8:1:2:3:4:5:6"), 64), ip("2001:db8:1:2::"));
        assert_eq!(group(ip("2001:db8:1:2:ffff::1"), 64), ip("2001:db8:1:2::"));
        assert_eq!(group(ip("2001:db8:1:2:3:4:5:6"), 48), ip("2001:db8:1::"));
        assert_eq!(group(ip("2001:db8:1:2:3:4:5:6"), 56), ip("2001:db8:1::"));
        assert_eq!(group(ip("2001:db8:1:2ff:3::"), 56), ip("2001:db8:1:200::"));
        assert_eq!(group(ip("2001:db8::7"), 128), ip("2001:db8::7"));
        assert_eq!(group(ip("8001:db8::7"), 1), ip("8000::"));
        assert_eq!(group(ip("::1"), 64), ip("::"));
        assert_eq!(group(ip("192.0.2.7"), 64), ip("192.0.2.7"));
        // An IPv4 client on an IPv6 socket is the IPv4 address.
        assert_eq!(group(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(group(ip("2001:db8::1"), 0), ip("::"));
    }

    #[test]
    fn connections_count_per_group_and_are_given_back() {
        let mut counts = ConnectionsPerAddress::new(64);
        counts.add(ip("2001:db8::1"));
        counts.add(ip("2001:db8::2:3"));
        assert_eq!(counts.count(ip("2001:db8::ffff")), 2);
        assert_eq!(counts.count(ip("2001:db8:0:1::1")), 0);
        counts.add(ip("192.0.2.1"));
        assert_eq!(counts.count(ip("192.0.2.1")), 1);
        assert_eq!(counts.count(ip("192.0.2.2")), 0);
        counts.remove(ip("2001:db8::2:3"));
        assert_eq!(counts.count(ip("2001:db8::1")), 1);
        counts.remove(ip("2001:db8::1"));
        counts.remove(ip("192.0.2.1"));
        assert!(counts.counts.is_empty(), "{counts:?}");
        // A removal with no connection counted changes nothing.
        counts.remove(ip("192.0.2.1"));
        assert!(counts.counts.is_empty());

        let mut alone = ConnectionsPerAddress::default();
        alone.add(ip("2001:db8::1"));
        assert_eq!(alone.count(ip("2001:db8::2")), 0);
        assert_eq!(alone.count(ip("2001:db8::1")), 1);
    }
}
