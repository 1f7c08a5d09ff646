//! Connection registration: PASS, NICK, USER, and the welcome burst; plus
//! the connection-level PING, PONG and QUIT.

use super::{info, replies, Ctx, Flow};
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::outbox::Burst;
use crate::server::world::Client;
use crate::server::Server;

/// Characters allowed in a nick besides letters and digits (RFC 2812).
const NICK_SPECIALS: &str = "[]\\`_^{|}";
const USER_LENGTH: usize = 18;

pub fn is_valid_nick(nick: &str, max_len: usize) -> bool {
    let mut chars = nick.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    nick.len() <= max_len
        && (first.is_ascii_alphabetic() || NICK_SPECIALS.contains(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || NICK_SPECIALS.contains(c))
}

pub fn pass(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let asked_for = !ctx.server.config().server.password.is_empty();
    if let Some(refusal) = asked_for
        .then(|| super::plaintext::password_refusal(ctx))
        .flatten()
    {
        // Not kept: registration then fails as with no password at all.
        let text = format!("Passwords are {refusal}");
        ctx.reply(Response::ERR_PASSWDMISMATCH, |b| b.trailing(&text));
        return Flow::Continue;
    }
    ctx.session.prelude().pass = Some(msg.params[0].into());
    Flow::Continue
}

pub fn nick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let Some(new_nick) = msg.param(0).filter(|n| !n.is_empty()) else {
        ctx.reply(Response::ERR_NONICKNAMEGIVEN, |b| {
            b.trailing("No nickname given")
        });
        return Flow::Continue;
    };
    if !is_valid_nick(new_nick, ctx.server.config().limits.nick_length)
        || new_nick.eq_ignore_ascii_case(super::nickserv::NICK)
        || new_nick.eq_ignore_ascii_case(super::chanserv::NICK)
    {
        refused(ctx, new_nick);
        ctx.reply(Response::ERR_ERRONEOUSNICKNAME, |b| {
            b.param(new_nick).trailing("Erroneous nickname")
        });
        return Flow::Continue;
    }
    let id = ctx.id();
    let mut world = ctx.world();
    let folded = world.fold(new_nick);
    let Some(me) = world.clients.get(&id) else {
        return Flow::Continue;
    };
    if &*me.nick == new_nick {
        return Flow::Continue;
    }
    if world.nicks.get(&folded).is_some_and(|&holder| holder != id) {
        let line = ctx
            .numeric(&me.nick, Response::ERR_NICKNAMEINUSE)
            .param(new_nick)
            .trailing("Nickname is already in use");
        me.send(&line);
        drop(world);
        refused(ctx, new_nick);
        return Flow::Continue;
    }
    if me.registered {
        let line = me.line("NICK").last(new_nick);
        world.announce_nick_change(id, &line);
        world.set_nick(id, new_nick);
        drop(world);
        super::nick_claims::check(ctx.server, id);
        return Flow::Continue;
    }
    world.set_nick(id, new_nick);
    drop(world);
    try_register(ctx)
}

/// Remembers a refused nick of a client still registering, for `REGISTER
/// *` (see `account::register`).
fn refused(ctx: &mut Ctx<'_>, nick: &str) {
    if !ctx.session.registered {
        ctx.session.prelude().refused_nick = Some(nick.into());
    }
}

pub fn user(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if ctx.session.got_user {
        ctx.reply(Response::ERR_ALREADYREGISTRED, |b| {
            b.trailing("You may not reregister")
        });
        return Flow::Continue;
    }
    // USERLEN counts bytes, and one of them goes to the `~`.
    let mut username = String::new();
    for c in msg.params[0]
        .chars()
        .filter(|c| !matches!(c, '@' | '!' | ':') && !c.is_control())
    {
        if username.len() + c.len_utf8() > USER_LENGTH - 1 {
            break;
        }
        username.push(c);
    }
    if username.is_empty() {
        let nick = ctx.world().clients[&ctx.id()].nick.clone();
        ctx.send(&replies::need_more_params(ctx, &nick, "USER"));
        return Flow::Continue;
    }
    let realname: String = msg.params[3]
        .chars()
        .take(ctx.server.config().limits.realname_length)
        .collect();
    {
        let mut world = ctx.world();
        let Some(me) = world.clients.get_mut(&ctx.id()) else {
            return Flow::Continue;
        };
        // No ident lookup is done, so the username is marked unverified
        // with `~`, as on most networks.
        me.set_user(&format!("~{username}"));
        me.realname = realname.into();
    }
    ctx.session.got_user = true;
    try_register(ctx)
}

/// Completes registration once NICK, USER (and CAP END, and the right
/// PASS) are in.
pub fn try_register(ctx: &mut Ctx<'_>) -> Flow {
    if ctx.session.registered || ctx.session.cap_negotiating || !ctx.session.got_user {
        return Flow::Continue;
    }
    let id = ctx.id();
    let server = ctx.server;
    let mut world = server.world();
    let Some(me) = world.clients.get_mut(&id) else {
        return Flow::Continue;
    };
    if !me.has_nick() {
        return Flow::Continue;
    }
    let password = &ctx.server.config().server.password;
    let pass = ctx.session.prelude.as_ref().and_then(|p| p.pass.as_deref());
    if !password.is_empty() && pass != Some(password.as_str()) {
        let line = LineBuilder::numeric(&ctx.server.name, Response::ERR_PASSWDMISMATCH, &me.nick)
            .trailing("Password incorrect");
        me.send(&line);
        return Flow::Quit("Bad password".to_owned());
    }
    ctx.session.prelude = None;
    ctx.session.registered = true;
    // sasl-3.1: completing registration aborts an exchange still going on.
    if ctx.session.sasl.take().is_some() {
        me.send(
            &LineBuilder::numeric(&ctx.server.name, Response::ERR_SASLABORT, &me.nick)
                .trailing("SASL authentication aborted"),
        );
    }
    world.mark_registered(id);
    let me = &world.clients[&id];
    // 001-005 are queued under the lock that made the client registered,
    // so nothing anyone sends it can arrive before its welcome.
    let mut burst = Burst::new(&me.outbox);
    send_welcome(server, me, &mut burst);
    info::send_lusers(server, &world, me, &mut burst);
    info::send_motd(server, me, &mut burst);
    burst.finish();
    world.notify_monitors_online(id);
    tracing::info!(client = id, nick = %world.clients[&id].nick, "registered");
    crate::metrics::registered();
    drop(world);
    super::nick_claims::check(ctx.server, id);
    super::missed::replay_direct(ctx.server, id);
    Flow::Continue
}

/// 001 to 005.
fn send_welcome(server: &Server, me: &Client, out: &mut Burst<'_>) {
    let (nick, mask) = (&me.nick, me.mask());
    let n = |numeric| LineBuilder::numeric(&server.name, numeric, nick);
    let network = &server.config().server.network;
    out.send(
        &n(Response::RPL_WELCOME).trailing(&format!("Welcome to the {network} IRC Network {mask}")),
    );
    out.send(&n(Response::RPL_YOURHOST).trailing(&format!(
        "Your host is {}, running version {}",
        server.name, server.version
    )));
    out.send(&n(Response::RPL_CREATED).trailing(&format!(
        "This server was created {}",
        httpdate::fmt_http_date(server.created)
    )));
    out.send(
        &n(Response::RPL_MYINFO)
            .param(&server.name)
            .param(server.version)
            .param(crate::server::isupport::USER_MODES)
            .param(crate::server::isupport::CHANNEL_MODES)
            .last("beIklov"),
    );
    for chunk in server.config().isupport.chunks(12) {
        out.send(
            &n(Response::RPL_ISUPPORT)
                .params(chunk.iter().map(String::as_str))
                .trailing("are supported by this server"),
        );
    }
}

pub fn ping(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let line = LineBuilder::new(Some(&ctx.server.name), "PONG")
        .param(&ctx.server.name)
        .trailing(msg.params[0]);
    // Sent under the state lock so that the PONG queues after any broadcast
    // still being delivered: a client may rely on having received, before
    // the PONG, everything caused before its PING.
    let _world = ctx.world();
    ctx.send(&line);
    Flow::Continue
}

/// Any line resets the keepalive timer, so a PONG needs no handling.
pub fn pong(_ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> Flow {
    Flow::Continue
}

pub fn quit(_ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    Flow::Quit(quit_reason(msg))
}

/// The reason others are shown for the QUIT `msg`.
pub fn quit_reason(msg: &Message<'_>) -> String {
    match msg.param(0).filter(|r| !r.is_empty()) {
        Some(reason) => format!("Quit: {reason}"),
        // Modern IRC: with no reason given, the reason is just "Quit: ".
        None => "Quit: ".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_syntax() {
        assert!(is_valid_nick("alice", 30));
        assert!(is_valid_nick("[away]_-9", 30));
        assert!(!is_valid_nick("9lives", 30));
        assert!(!is_valid_nick("-dash", 30));
        assert!(!is_valid_nick("a b", 30));
        assert!(!is_valid_nick("#chan", 30));
        assert!(!is_valid_nick("toolongnick", 5));
        assert!(!is_valid_nick("", 30));
    }
}
