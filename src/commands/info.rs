//! Server information: VERSION, TIME, ADMIN, INFO, LUSERS, MOTD.

use super::{Ctx, Flow};
use crate::proto::mask::wildcard_match;
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::outbox::Burst;
use crate::server::world::{Client, World};
use crate::server::Server;

/// Answers `402` and returns false when the command names another server.
/// Parlor is one server, so any name that does not match it is unknown.
pub fn names_this_server(ctx: &Ctx<'_>, msg: &Message<'_>, index: usize) -> bool {
    let Some(target) = msg.param(index).filter(|t| !t.is_empty()) else {
        return true;
    };
    let server = ctx.server.name.to_ascii_lowercase();
    let target_folded = target.to_ascii_lowercase();
    if wildcard_match(&target_folded, &server) {
        return true;
    }
    // A nick names the server that user is on: this one.
    if ctx.world().registered_by_nick(target).is_some() {
        return true;
    }
    ctx.reply(Response::ERR_NOSUCHSERVER, |b| {
        b.param(target).trailing("No such server")
    });
    false
}

pub fn version(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if names_this_server(ctx, msg, 0) {
        let server = ctx.server;
        ctx.reply(Response::RPL_VERSION, |b| {
            b.param(server.version)
                .param(&server.name)
                .trailing("Parlor community chat server")
        });
        for chunk in server.config().isupport.chunks(12) {
            ctx.reply(Response::RPL_ISUPPORT, |b| {
                b.params(chunk.iter().map(String::as_str))
                    .trailing("are supported by this server")
            });
        }
    }
    Flow::Continue
}

pub fn time(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if names_this_server(ctx, msg, 0) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        ctx.reply(Response::RPL_TIME, |b| {
            b.param(&ctx.server.name).trailing(&now)
        });
    }
    Flow::Continue
}

pub fn admin(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if names_this_server(ctx, msg, 0) {
        let server = ctx.server;
        let admin = &server.config().admin;
        ctx.reply(Response::RPL_ADMINME, |b| {
            b.param(&server.name).trailing("Administrative info")
        });
        ctx.reply(Response::RPL_ADMINLOC1, |b| b.trailing(&admin.location));
        ctx.reply(Response::RPL_ADMINLOC2, |b| {
            b.trailing(&server.config().server.description)
        });
        ctx.reply(Response::RPL_ADMINEMAIL, |b| b.trailing(&admin.contact));
    }
    Flow::Continue
}

pub fn info(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if names_this_server(ctx, msg, 0) {
        let lines = [
            format!(
                "{} — an IRC-compatible community chat server.",
                ctx.server.version
            ),
            "Written in Rust with tokio. https://modern.ircdocs.horse is the protocol it follows."
                .to_owned(),
            format!(
                "Running since {}.",
                httpdate::fmt_http_date(ctx.server.created)
            ),
        ];
        for line in &lines {
            ctx.reply(Response::RPL_INFO, |b| b.trailing(line));
        }
        ctx.reply(Response::RPL_ENDOFINFO, |b| b.trailing("End of INFO list"));
    }
    Flow::Continue
}

pub fn lusers(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> Flow {
    let world = ctx.world();
    if let Some(me) = world.clients.get(&ctx.id()) {
        send_lusers(ctx.server, &world, me, &mut Burst::new(&me.outbox));
    }
    Flow::Continue
}

/// `251`–`266` for `me`, built while the state is locked once.
pub fn send_lusers(server: &Server, world: &World, me: &Client, out: &mut Burst<'_>) {
    let counts = world.counts;
    let (users, invisible, opers) = (counts.registered, counts.invisible, counts.operators);
    let unknown = world.clients.len() - users;
    let (channels, peak) = (world.channels.len(), world.peak_users);
    let reply = |numeric: Response| LineBuilder::numeric(&server.name, numeric, &me.nick);
    out.send(&reply(Response::RPL_LUSERCLIENT).trailing(&format!(
        "There are {} users and {invisible} invisible on 1 servers",
        users - invisible
    )));
    if opers > 0 {
        out.send(
            &reply(Response::RPL_LUSEROP)
                .param(&opers.to_string())
                .trailing("operator(s) online"),
        );
    }
    if unknown > 0 {
        out.send(
            &reply(Response::RPL_LUSERUNKNOWN)
                .param(&unknown.to_string())
                .trailing("unknown connection(s)"),
        );
    }
    if channels > 0 {
        out.send(
            &reply(Response::RPL_LUSERCHANNELS)
                .param(&channels.to_string())
                .trailing("channels formed"),
        );
    }
    out.send(
        &reply(Response::RPL_LUSERME).trailing(&format!("I have {users} clients and 0 servers")),
    );
    let (users, peak) = (users.to_string(), peak.to_string());
    out.send(
        &reply(Response::RPL_LOCALUSERS)
            .param(&users)
            .param(&peak)
            .trailing(&format!("Current local users {users}, max {peak}")),
    );
    out.send(
        &reply(Response::RPL_GLOBALUSERS)
            .param(&users)
            .param(&peak)
            .trailing(&format!("Current global users {users}, max {peak}")),
    );
}

pub fn motd(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if names_this_server(ctx, msg, 0) {
        let world = ctx.world();
        if let Some(me) = world.clients.get(&ctx.id()) {
            send_motd(ctx.server, me, &mut Burst::new(&me.outbox));
        }
    }
    Flow::Continue
}

/// `375`, `372`…, `376` (or `422`) for `me`.
pub fn send_motd(server: &Server, me: &Client, out: &mut Burst<'_>) {
    let reply = |numeric: Response| LineBuilder::numeric(&server.name, numeric, &me.nick);
    let settings = server.config();
    if settings.motd.is_empty() {
        out.send(&reply(Response::ERR_NOMOTD).trailing("MOTD File is missing"));
        return;
    }
    out.send(
        &reply(Response::RPL_MOTDSTART)
            .trailing(&format!("- {} Message of the day - ", server.name)),
    );
    for line in &settings.motd {
        out.send(&reply(Response::RPL_MOTD).trailing(&format!("- {line}")));
    }
    out.send(&reply(Response::RPL_ENDOFMOTD).trailing("End of /MOTD command."));
}
