//! Passwords and plaintext connections: with `tls.plaintext_passwords`
//! refusing them, a password is not taken over a connection others on the
//! network could read (plaintext, and not from this host).

use super::Ctx;

/// Why this connection may not send a password, to follow "PLAIN is" or
/// "Passwords are"; `None` if it may.
pub fn password_refusal(ctx: &Ctx<'_>) -> Option<String> {
    let server = ctx.server;
    let tls = &server.config().tls;
    if !tls.refuses_plaintext_passwords() {
        return None;
    }
    // `+Z` covers TLS and a WEBIRC gateway that took the user over TLS;
    // the address is the client's own, so that behind a proxy or gateway
    // it is not the gateway's loopback that counts.
    let (secure, from_this_host) = {
        let world = server.world_shared();
        match world.clients.get(&ctx.id()) {
            Some(me) => (me.modes.secure, me.ip.is_loopback()),
            None => (false, false),
        }
    };
    if secure || (from_this_host && tls.plaintext_passwords_loopback) {
        return None;
    }
    Some(match server.sts_port() {
        Some(port) => {
            format!("not accepted over a plaintext connection; reconnect with TLS (port {port})")
        }
        None => "not accepted over a plaintext connection; reconnect with TLS".to_owned(),
    })
}
