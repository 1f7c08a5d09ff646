//! Server operators: OPER, KILL, WALLOPS.

use std::sync::Arc;

use super::{replies, Ctx, Flow};
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::flush::FlushScope;
use crate::server::world::ClientId;
use crate::server::Server;

/// OPER attempts allowed on one connection; later ones are refused without
/// checking, so one connection cannot guess at full speed.
const MAX_OPER_ATTEMPTS: u8 = 3;

pub fn oper(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let opers = &ctx.server.config().oper;
    if opers.is_empty() {
        ctx.reply(Response::ERR_NOOPERHOST, |b| {
            b.trailing("No O-lines for your host")
        });
        return Flow::Continue;
    }
    if let Some(refusal) = super::plaintext::password_refusal(ctx) {
        let text = format!("Passwords are {refusal}");
        ctx.reply(Response::ERR_PASSWDMISMATCH, |b| b.trailing(&text));
        return Flow::Continue;
    }
    if ctx.session.oper_attempts >= MAX_OPER_ATTEMPTS {
        ctx.reply(Response::ERR_PASSWDMISMATCH, |b| {
            b.trailing("Password incorrect (too many attempts on this connection)")
        });
        return Flow::Continue;
    }
    ctx.session.oper_attempts += 1;
    let (name, password) = (msg.params[0].to_owned(), msg.params[1].to_owned());
    let hash = opers
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.password_hash.clone());
    let server: Arc<Server> = ctx.server.clone();
    let id = ctx.id();
    Flow::Wait(Box::pin(async move {
        let verified = server.passwords.verify(hash, password).await;
        finish_oper(&server, id, &name, verified);
        None
    }))
}

fn finish_oper(server: &Server, id: ClientId, name: &str, success: bool) {
    // Declared before the state lock, so the replies are written after it
    // is released.
    let _batch = FlushScope::enter_with(Some(&server.delayed_writes));
    let mut world = server.world();
    let Some(me) = world.clients.get(&id) else {
        return;
    };
    if !success {
        tracing::info!(client = id, oper = name, "failed OPER attempt");
        me.send(
            &LineBuilder::numeric(&server.name, Response::ERR_PASSWDMISMATCH, &me.nick)
                .trailing("Password incorrect"),
        );
        return;
    }
    tracing::info!(client = id, oper = name, nick = %me.nick, "became an operator");
    me.send(
        &LineBuilder::numeric(&server.name, Response::RPL_YOUREOPER, &me.nick)
            .trailing("You are now an IRC operator"),
    );
    let newly = world
        .update_modes(id, |modes| modes.oper = true)
        .is_some_and(|(before, _)| !before.oper);
    let me = &world.clients[&id];
    if newly {
        me.send(
            &LineBuilder::new(Some(&me.nick), "MODE")
                .param(&me.nick)
                .last("+o"),
        );
    }
}

fn require_oper(ctx: &Ctx<'_>) -> bool {
    let world = ctx.world();
    let me = &world.clients[&ctx.id()];
    if !me.modes.oper {
        me.send(
            &ctx.numeric(&me.nick, Response::ERR_NOPRIVILEGES)
                .trailing("Permission Denied- You're not an IRC operator"),
        );
    }
    me.modes.oper
}

pub fn kill(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if !require_oper(ctx) {
        return Flow::Continue;
    }
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    let Some(target) = world.registered_by_nick(msg.params[0]) else {
        me.send(&replies::no_such_nick(ctx, &me.nick, msg.params[0]));
        return Flow::Continue;
    };
    let comment = msg.params[1];
    target.send(&me.line("KILL").param(&target.nick).trailing(comment));
    let reason = format!("Killed ({} ({comment}))", me.nick);
    tracing::info!(client = target.id, by = %me.nick, "killed");
    if target.id == id {
        return Flow::Quit(reason);
    }
    // The victim's own task removes it, telling its peers.
    target.outbox.request_disconnect(reason);
    Flow::Continue
}

pub fn wallops(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if !require_oper(ctx) {
        return Flow::Continue;
    }
    let world = ctx.world();
    let me = &world.clients[&ctx.id()];
    let line = me.line("WALLOPS").trailing(msg.params[0]);
    for client in world.clients.values().filter(|c| c.modes.wallops) {
        client.send(&line);
    }
    Flow::Continue
}

/// REHASH: reads the configuration again and puts it in force (see
/// `server::reload`). The operator is told what changed, or why nothing
/// did.
pub fn rehash(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> Flow {
    if !require_oper(ctx) {
        return Flow::Continue;
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    Flow::Wait(Box::pin(async move {
        let outcome = crate::server::reload::rehash(&server).await;
        let world = server.world_shared();
        let me = world.clients.get(&id)?;
        // Config errors can span lines (TOML's show the file's line):
        // each notice stays one IRC line.
        let notice = |text: &str| {
            let text: Vec<&str> = text
                .split(['\r', '\n', '\0'])
                .filter(|part| !part.is_empty())
                .collect();
            LineBuilder::new(Some(&server.name), "NOTICE")
                .param(&me.nick)
                .trailing(&text.join(" "))
        };
        match outcome {
            Ok(changes) => {
                let source = server.config_source_name();
                me.send(
                    &LineBuilder::numeric(&server.name, Response::RPL_REHASHING, &me.nick)
                        .param(&source)
                        .trailing("Rehashing"),
                );
                for change in changes {
                    me.send(&notice(&format!("*** REHASH: {change}")));
                }
            }
            Err(error) => {
                me.send(&notice(&format!(
                    "*** REHASH failed, the running configuration stays: {error}"
                )));
            }
        }
        None
    }))
}
