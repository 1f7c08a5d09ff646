//! Address ranges in the configuration: who may send a PROXY header
//! (`proxy_from` on a listener) and which gateways may use WEBIRC
//! (`[[webirc]] hosts`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address, or a network written `ADDRESS/BITS` (`192.0.2.0/24`,
/// `2001:db8::/32`). An IPv4 address on an IPv6 socket (`::ffff:a.b.c.d`)
/// is the IPv4 address, so a range written as IPv4 holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)) << 96, self.bits)
                    == u128::from(u32::from(network)) << 96
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.bits) == u128::from(network)
            }
            _ => false,
        }
    }
}

/// `value` with the bits past its first `bits` cleared.
fn masked(value: u128, bits: u8) -> u128 {
    match bits {
        0 => 0,
        bits => value & (u128::MAX << (128 - u32::from(bits))),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an address or a network: write e.g. \"192.0.2.7\", \"192.0.2.0/24\" or \"2001:db8::/32\"")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(text: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(text.to_owned());
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let network = address.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let most = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => most,
            Some(bits) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
                bits.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if bits > most {
            return Err(bad());
        }
        // Stored as the network itself, so that a match compares once.
        let network = match network {
            IpAddr::V4(v4) => {
                let value = masked(u128::from(u32::from(v4)) << 96, bits) >> 96;
                IpAddr::V4((value as u32).into())
            }
            IpAddr::V6(v6) => IpAddr::V6(masked(u128::from(v6), bits).into()),
        };
        Ok(Cidr { network, bits })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_and_networks_hold_what_they_should() {
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        // An IPv4 client reaching an IPv6 socket is the IPv4 address.
        assert!(one.contains(ip("::ffff:127.0.0.1")));
        assert!(!one.contains(ip("::1")));

        let net: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));

        let v6: Cidr = "2001:db8:1::/48".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
        assert!(!v6.contains(ip("10.0.0.1")));

        let everything: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("198.51.100.3")));
        assert!(!everything.contains(ip("2001:db8::1")));
        let every_v6: Cidr = "::/0".parse().unwrap();
        assert!(every_v6.contains(ip("2001:db8::1")));

        let mapped: Cidr = "::ffff:192.0.2.0/24".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for text in [
            "",
            "localhost",
            "127.0.0.1/",
            "127.0.0.1/33",
            "::1/129",
            "127.0.0.1/+8",
            "127.0.0.1/8/8",
            "1.2.3.4 ",
            "01.2.3.4",
        ] {
            assert!(text.parse::<Cidr>().is_err(), "{text:?} was accepted");
        }
    }
}
