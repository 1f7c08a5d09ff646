//! `server.listen`: each entry is `"IP:PORT"`, a plain listener, or a
//! table that says more about what its connections bring, e.g.
//! `{ address = "0.0.0.0:6668", proxy = true }` or, on lines of its own,
//! `[[server.listen]]` blocks. The plain strings stay what they always
//! were; whatever a listener may expect later (TLS) is one more key of
//! the table, not a list of its own.

use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::cidr::Cidr;

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// `IP:PORT`; validation checks that it parses.
    pub address: String,
    /// Every connection opens with a PROXY protocol header (v1 or v2)
    /// from a load balancer, which gives the client's address.
    pub proxy: bool,
    /// The senders whose PROXY headers are believed (the load balancers);
    /// a connection from anywhere else is closed unheard. Loopback when the
    /// table does not say: a header is a claim anyone could make, so
    /// believing the whole internet has to be written down
    /// (`["0.0.0.0/0", "::/0"]`).
    pub proxy_from: Vec<Cidr>,
}

impl Listen {
    /// A plain listener on `address`.
    pub fn plain(address: &str) -> Listen {
        Listen {
            address: address.to_owned(),
            proxy: false,
            proxy_from: Vec::new(),
        }
    }

    /// The address, if it parses.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.address.parse().ok()
    }
}

/// The table form, whose keys are checked by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenTable {
    address: String,
    #[serde(default)]
    proxy: bool,
    proxy_from: Option<Vec<Cidr>>,
}

/// Who may send PROXY headers when the listener does not say.
const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1"];

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Listen, D::Error> {
        struct StringOrTable;
        impl<'de> Visitor<'de> for StringOrTable {
            type Value = Listen;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"IP:PORT\" or a table with `address`")
            }

            fn visit_str<E: de::Error>(self, address: &str) -> Result<Listen, E> {
                Ok(Listen::plain(address))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Listen, A::Error> {
                // The map as it came, so that an unknown key is named
                // with its path like any other.
                let table = ListenTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let proxy_from = match table.proxy_from {
                    Some(given) => given,
                    None if table.proxy => LOOPBACK
                        .iter()
                        .map(|net| net.parse().expect("a valid network"))
                        .collect(),
                    None => Vec::new(),
                };
                Ok(Listen {
                    address: table.address,
                    proxy: table.proxy,
                    proxy_from,
                })
            }
        }
        deserializer.deserialize_any(StringOrTable)
    }
}

/// Checks the listeners: the key at fault, and why.
pub(super) fn validate(listen: &[Listen]) -> Result<(), (&'static str, String)> {
    if listen.is_empty() {
        return Err(("server.listen", "needs at least one address".into()));
    }
    for entry in listen {
        let addr = &entry.address;
        if entry.socket_addr().is_none() {
            return Err((
                "server.listen",
                format!("{addr:?} is not an address: write IP:PORT, e.g. \"127.0.0.1:6667\" or \"[::1]:6667\""),
            ));
        }
        if entry.proxy && entry.proxy_from.is_empty() {
            return Err((
                "server.listen",
                format!("{addr:?} has an empty proxy_from: name the load balancers' addresses, or leave it out for loopback"),
            ));
        }
        if !entry.proxy && !entry.proxy_from.is_empty() {
            return Err((
                "server.listen",
                format!("{addr:?} has proxy_from without proxy = true: only a PROXY listener reads headers"),
            ));
        }
    }
    Ok(())
}
