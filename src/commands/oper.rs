//! Server operators: OPER, KILL, WALLOPS.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;

use super::{replies, Ctx, Flow};
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::world::ClientId;
use crate::server::Server;

/// Verified against when the oper name is unknown, so that a wrong name
/// takes as long as a wrong password and names cannot be probed.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that never matches"))
}

/// An Argon2id PHC string for `password`, with a fresh salt.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters accepts any password")
        .to_string()
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn oper(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let (name, password) = (msg.params[0], msg.params[1].to_owned());
    let block = ctx.server.config.oper.iter().find(|o| o.name == name);
    let known_name = block.is_some();
    let hash = block.map_or_else(|| decoy_hash().to_owned(), |o| o.password_hash.clone());
    let server: Arc<Server> = ctx.server.clone();
    let id = ctx.id();
    let name = name.to_owned();
    Flow::Wait(Box::pin(async move {
        // Argon2 is deliberately slow: keep it off the connection's task.
        let verified = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        finish_oper(&server, id, &name, known_name && verified);
    }))
}

fn finish_oper(server: &Server, id: ClientId, name: &str, success: bool) {
    let mut world = server.world();
    let Some(me) = world.clients.get_mut(&id) else {
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
    let newly = !me.modes.oper;
    me.modes.oper = true;
    me.send(
        &LineBuilder::numeric(&server.name, Response::RPL_YOUREOPER, &me.nick)
            .trailing("You are now an IRC operator"),
    );
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
    target.send(
        &LineBuilder::new(Some(&me.mask), "KILL")
            .param(&target.nick)
            .trailing(comment),
    );
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
    let line = LineBuilder::new(Some(&me.mask), "WALLOPS").trailing(msg.params[0]);
    for client in world.clients.values().filter(|c| c.modes.wallops) {
        client.send(&line);
    }
    Flow::Continue
}
