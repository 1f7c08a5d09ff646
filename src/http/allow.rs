//! Address blocks, as `http.metrics_allow` lists them: an address alone
//! (`127.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`).

use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressBlock {
    network: IpAddr,
    prefix_len: u8,
}

impl AddressBlock {
    /// Whether `addr` is inside the block. An IPv4 address a dual-stack
    /// socket shows as IPv6 (`::ffff:192.0.2.1`) is taken as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(addr)) => {
                let mask = mask_u32(self.prefix_len);
                u32::from(network) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(addr)) => {
                let mask = mask_u128(self.prefix_len);
                u128::from(network) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

fn mask_u32(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn mask_u128(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0)
}

impl FromStr for AddressBlock {
    type Err = String;

    fn from_str(text: &str) -> Result<AddressBlock, String> {
        let (addr, prefix_len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| {
            "not an address or a block: write an address (\"10.0.0.1\", \"::1\") or a CIDR block (\"10.0.0.0/8\", \"fd00::/8\")".to_owned()
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_len {
            None => max,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|&len| len <= max)
                .ok_or_else(|| format!("the prefix length must be 0 to {max}"))?,
        };
        Ok(AddressBlock {
            network,
            prefix_len,
        })
    }
}

/// Several blocks: an address is allowed if any holds it.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<AddressBlock>);

impl AllowList {
    /// From the config's strings, which validation has checked.
    pub fn new(entries: &[String]) -> AllowList {
        AllowList(entries.iter().filter_map(|e| e.parse().ok()).collect())
    }

    pub fn allows(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], addr: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        AllowList::new(&entries).allows(addr.parse().unwrap())
    }

    #[test]
    fn blocks_hold_the_addresses_under_their_prefix() {
        let loopback = ["127.0.0.0/8", "::1"];
        assert!(allows(&loopback, "127.0.0.1"));
        assert!(allows(&loopback, "127.3.2.1"));
        assert!(allows(&loopback, "::1"));
        assert!(!allows(&loopback, "128.0.0.1"));
        assert!(!allows(&loopback, "::2"));
        assert!(!allows(&loopback, "10.0.0.1"));
        // An IPv4 address seen through an IPv6 socket.
        assert!(allows(&loopback, "::ffff:127.0.0.1"));
        assert!(allows(&["fd00::/8"], "fdab::1"));
        assert!(!allows(&["fd00::/8"], "fe80::1"));
        assert!(allows(&["0.0.0.0/0"], "192.0.2.7"));
        assert!(!allows(&["0.0.0.0/0"], "2001:db8::1"));
        assert!(allows(&["192.0.2.7"], "192.0.2.7"));
        assert!(!allows(&["192.0.2.7"], "192.0.2.8"));
        assert!(!allows(&[], "127.0.0.1"));
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        assert!("10.0.0.0/33"
            .parse::<AddressBlock>()
            .unwrap_err()
            .contains("0 to 32"));
        assert!("::/129"
            .parse::<AddressBlock>()
            .unwrap_err()
            .contains("0 to 128"));
        assert!("localhost"
            .parse::<AddressBlock>()
            .unwrap_err()
            .contains("CIDR"));
        assert!("10.0.0.0/x".parse::<AddressBlock>().is_err());
    }
}
