//! Passwords and plaintext connections: with `tls.plaintext_passwords`
//! refusing them, a password is not taken over a connection others on the
//! network could read (plaintext, and not from this host).

use super::Ctx;

/// Why this connection may not send a password, to follow "PLAIN is" or
/// "Passwords are"; `None` if it may.
pub fn password_refusal(ctx: &Ctx<'_>) -> Option<String> {
    let server = ctx.server;
    let tls = &server.config().tls;
    if !tls.refuses_plaintext_passwords() || ctx.session.outbox.wire().is_secure() {
        return None;
    }
    // The client's own address: behind a proxy or gateway, the socket's
    // says nothing of the network the password crossed.
    let from_this_host = ctx
        .server
        .world_shared()
        .clients
        .get(&ctx.id())
        .is_some_and(|me| me.ip.is_loopback());
    if from_this_host && tls.plaintext_passwords_loopback {
        return None;
    }
    Some(match server.sts_port() {
        Some(port) => {
            format!("not accepted over a plaintext connection; reconnect with TLS (port {port})")
        }
        None => "not accepted over a plaintext connection; reconnect with TLS".to_owned(),
    })
}
