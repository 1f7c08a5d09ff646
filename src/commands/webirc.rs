//! WEBIRC (the IRCv3 webirc extension): a web gateway such as The Lounge
//! or KiwiIRC's webircgateway connects for each of its users and says
//! whose connection it is, `WEBIRC password gateway hostname ip
//! [:options]`. Once the password of a `[[webirc]]` block whose `hosts`
//! hold the connection's address checks out, the user's address and
//! hostname replace the gateway's everywhere: the per-address limit,
//! bans, WHOIS, WHO and the hostmask; and the user is `+Z` (WHOIS `671`)
//! exactly when the gateway says `secure` over a link that is TLS or
//! loopback.
//!
//! Refusals end the connection with `ERROR`, as the spec's example does
//! and Ergo and InspIRCd do: a gateway that cannot vouch for its user must
//! not carry on as a client of its own address.

use std::net::IpAddr;
use std::sync::Arc;

use tracing::info;

use super::{Ctx, Flow};
use crate::proto::Message;
use crate::server::host::address_host;
use crate::server::world::ClientId;
use crate::server::Server;

/// The longest hostname a gateway may give; a longer or malformed one is
/// replaced by the address. 64 is InspIRCd's default `maxhost`.
const MAX_HOSTNAME_LEN: usize = 64;

pub fn webirc(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    if std::mem::replace(&mut ctx.session.webirc_heard, true) {
        info!(
            client = id,
            "WEBIRC refused: a second one on this connection"
        );
        return Flow::Quit("WEBIRC may be sent only once".to_owned());
    }
    let Some(gateway_ip) = ctx.world().clients.get(&id).map(|me| me.ip) else {
        return Flow::Continue;
    };
    let (password, gateway, hostname, ip) =
        (msg.params[0], msg.params[1], msg.params[2], msg.params[3]);
    // Only the blocks for this address are tried: a stranger costs no
    // Argon2 check at all.
    let candidates: Vec<(String, String)> = ctx
        .server
        .config()
        .webirc
        .iter()
        .filter(|block| block.hosts.iter().any(|net| net.contains(gateway_ip)))
        .map(|block| (block.name.clone(), block.password_hash.clone()))
        .collect();
    if candidates.is_empty() {
        info!(client = id, %gateway_ip, gateway = ?gateway, "WEBIRC refused: not from a gateway's address");
        return Flow::Quit("WEBIRC is not allowed from your address".to_owned());
    }
    let Some(user_ip) = parse_user_ip(ip) else {
        info!(client = id, %gateway_ip, ip = ?ip, "WEBIRC refused: not an IP address");
        return Flow::Quit("Invalid IP address in WEBIRC".to_owned());
    };
    let host = if is_gateway_hostname(hostname) {
        hostname.to_owned()
    } else {
        address_host(user_ip)
    };
    // The spec: secure only if the gateway's own link to the server is
    // too. On loopback nobody can read the link but the machine's owner.
    let secure = msg
        .params
        .get(4)
        .is_some_and(|options| claims_secure(options))
        && (ctx.session.outbox.wire().is_secure() || gateway_ip.is_loopback());
    let (server, password) = (ctx.server.clone(), password.to_owned());
    let outbox = ctx.session.outbox.clone();
    Flow::Wait(Box::pin(async move {
        let mut accepted = None;
        for (name, hash) in candidates {
            if server.passwords.verify(Some(hash), password.clone()).await {
                accepted = Some(name);
                break;
            }
        }
        let Some(name) = accepted else {
            info!(client = id, %gateway_ip, "WEBIRC refused: wrong password");
            outbox.request_disconnect("Invalid WebIRC password".to_owned());
            return None;
        };
        if let Err(reason) = take_address(&server, id, user_ip, &host, secure) {
            info!(client = id, gateway = name, ip = %user_ip, "WEBIRC refused: {reason}");
            outbox.request_disconnect(reason.to_owned());
            return None;
        }
        info!(client = id, gateway = name, %gateway_ip, ip = %user_ip, host, secure, "WEBIRC accepted");
        None
    }))
}

/// The user's address as the gateway wrote it; an IPv4 address written
/// as IPv6 (`::ffff:a.b.c.d`) is the IPv4 one, as for a direct client.
fn parse_user_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// A hostname that can stand in a mask and as a middle parameter: DNS
/// characters (and `:` for an address given as its own name).
fn is_gateway_hostname(host: &str) -> bool {
    (1..=MAX_HOSTNAME_LEN).contains(&host.len())
        && !host.starts_with([':', '-', '.'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
}

/// Whether the options (`name[=value]`, space-separated) hold `secure`.
fn claims_secure(options: &str) -> bool {
    options
        .split(' ')
        .any(|option| option.split('=').next() == Some("secure"))
}

/// Moves client `id` to `ip` and `host`: it counts against `ip`'s
/// per-address limit from now on instead of the gateway's, and is `+Z`
/// if `secure`.
fn take_address(
    server: &Arc<Server>,
    id: ClientId,
    ip: IpAddr,
    host: &str,
    secure: bool,
) -> Result<(), &'static str> {
    let limit = server.config().limits.max_clients_per_ip;
    let mut world = server.world();
    let Some(me) = world.clients.get(&id) else {
        return Ok(());
    };
    let gateway_ip = me.ip;
    world.connections_per_ip.remove(gateway_ip);
    if limit != 0 && world.connections_per_ip.count(ip) >= limit {
        world.connections_per_ip.add(gateway_ip);
        return Err("Too many connections from your address");
    }
    world.connections_per_ip.add(ip);
    let me = world.clients.get_mut(&id).expect("looked up above");
    me.ip = ip;
    me.set_host(host);
    me.modes.secure = secure;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_address_is_an_ip_and_mapped_ipv4_is_ipv4() {
        assert_eq!(parse_user_ip("198.51.100.3"), "198.51.100.3".parse().ok());
        assert_eq!(parse_user_ip("0::1"), "::1".parse().ok());
        assert_eq!(
            parse_user_ip("::ffff:198.51.100.3"),
            "198.51.100.3".parse().ok()
        );
        for bad in ["", "user.example", "198.51.100.3:80", "[::1]", "1.2.3"] {
            assert_eq!(parse_user_ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hostnames_that_cannot_stand_in_a_mask_are_refused() {
        for good in ["user.example.org", "198.51.100.3", "0::1", "a-b.c"] {
            assert!(is_gateway_hostname(good), "{good:?}");
        }
        let long = "a".repeat(MAX_HOSTNAME_LEN + 1);
        for bad in [
            "",
            ":1",
            "-x",
            ".x",
            "a b",
            "a@b",
            "a!b",
            "é.example",
            &long,
        ] {
            assert!(!is_gateway_hostname(bad), "{bad:?}");
        }
    }

    #[test]
    fn secure_is_a_flag_among_the_options() {
        assert!(claims_secure("secure"));
        assert!(claims_secure("remote-port=5555 secure local-port=6697"));
        assert!(claims_secure("secure="));
        assert!(!claims_secure("insecure"));
        assert!(!claims_secure("remote-port=5555 local-port=6697"));
        assert!(!claims_secure(""));
    }
}
