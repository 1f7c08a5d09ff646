//! `[[webirc]]` blocks: the web gateways (The Lounge, KiwiIRC's
//! webircgateway) allowed to tell the server, with `WEBIRC`, the address
//! of the user each of their connections is for.

use serde::Deserialize;

use super::cidr::Cidr;

/// One gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebircConfig {
    /// Names the gateway in the logs.
    pub name: String,
    /// The password's Argon2 PHC string, from `parlor mkpasswd`: the
    /// gateway's own configuration holds the password itself.
    pub password_hash: String,
    /// The addresses or networks the gateway connects from: a right
    /// password from anywhere else is refused all the same, so a leaked
    /// password alone cannot forge addresses.
    pub hosts: Vec<Cidr>,
}

/// Checks the blocks: the key at fault, and why.
pub(super) fn validate(gateways: &[WebircConfig]) -> Result<(), (&'static str, String)> {
    for gateway in gateways {
        let name = &gateway.name;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(("webirc.name", format!("{name:?} must be one word")));
        }
        if argon2::PasswordHash::new(&gateway.password_hash).is_err() {
            return Err((
                "webirc.password_hash",
                format!("the hash for gateway {name:?} is not an Argon2 PHC string; make one with `parlor mkpasswd`"),
            ));
        }
        if gateway.hosts.is_empty() {
            return Err((
                "webirc.hosts",
                format!(
                    "gateway {name:?} needs the addresses it connects from, e.g. [\"127.0.0.1\"]"
                ),
            ));
        }
    }
    Ok(())
}
