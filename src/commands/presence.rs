//! Who is online: AWAY, ISON (irssi's /notify) and MONITOR (HexChat's and
//! WeeChat's notify lists).

use super::registration::is_valid_nick;
use super::{pack_into_lines, split_list, Ctx, Flow};
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::caps::Cap;
use crate::server::world::World;

/// Entries per 730/731/732 line, keeping it well under 512 bytes.
const MONITOR_LINE_BUDGET: usize = 400;

pub fn away(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let away_length = ctx.server.config().limits.away_length;
    let text: Option<String> = msg
        .param(0)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(away_length).collect());
    let id = ctx.id();
    let mut world = ctx.world();
    let Some(me) = world.clients.get_mut(&id) else {
        return Flow::Continue;
    };
    let (numeric, reply) = match text {
        Some(_) => (Response::RPL_NOWAWAY, "You have been marked as being away"),
        None => (
            Response::RPL_UNAWAY,
            "You are no longer marked as being away",
        ),
    };
    let changed = me.away.as_deref() != text.as_deref();
    me.away = text.map(String::into_boxed_str);
    me.send(&ctx.numeric(&me.nick, numeric).trailing(reply));
    if changed {
        // away-notify, only when something changed (as Ergo does).
        let me = &world.clients[&id];
        let line = match &me.away {
            Some(text) => me.line("AWAY").trailing(text),
            None => me.line("AWAY").finish(),
        };
        world.send_to_peers_with(id, &line, Cap::AwayNotify, false);
    }
    Flow::Continue
}

/// SETNAME (IRCv3 setname): a new realname, told to the client and its
/// channels' members that enabled setname.
pub fn setname(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    // Checked here rather than by the table, which counts `SETNAME :` as
    // no parameter: an empty realname is invalid, not missing.
    let Some(realname) = msg.param(0) else {
        let nick = ctx
            .world()
            .clients
            .get(&ctx.id())
            .map(|c| c.nick.clone())
            .unwrap_or_default();
        ctx.send(&super::replies::need_more_params(ctx, &nick, "SETNAME"));
        return Flow::Continue;
    };
    let max = ctx.server.config().limits.realname_length;
    if realname.is_empty() || realname.chars().count() > max {
        let line = LineBuilder::new(Some(&ctx.server.name), "FAIL")
            .param("SETNAME")
            .param("INVALID_REALNAME")
            .trailing(&format!("Realname must be 1 to {max} characters"));
        ctx.send(&line);
        return Flow::Continue;
    }
    let id = ctx.id();
    let mut world = ctx.world();
    let Some(me) = world.clients.get_mut(&id) else {
        return Flow::Continue;
    };
    me.realname = realname.into();
    let line = me.line("SETNAME").trailing(realname);
    world.send_to_peers_with(id, &line, Cap::Setname, true);
    Flow::Continue
}

pub fn ison(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    let online: Vec<&str> = msg
        .params
        .iter()
        .flat_map(|p| p.split(' '))
        .filter(|n| !n.is_empty())
        .filter_map(|nick| world.registered_by_nick(nick))
        .map(|c| &*c.nick)
        .collect();
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_ISON)
            .trailing(&online.join(" ")),
    );
    Flow::Continue
}

pub fn monitor(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let limit = ctx.server.config().limits.monitor_entries;
    let nick_length = ctx.server.config().limits.nick_length;
    let mut world = ctx.world();
    let targets = msg.param(1).unwrap_or("");
    match msg.params[0] {
        "+" => {
            let mut added = Vec::new();
            let mut refused = Vec::new();
            for target in split_list(targets).filter(|t| is_valid_nick(t, nick_length)) {
                let folded = world.fold(target);
                let me = world
                    .clients
                    .get_mut(&id)
                    .expect("the session's own client");
                if me.monitoring.contains(&folded) {
                    added.push(target);
                    continue;
                }
                if me.monitoring.len() >= limit {
                    refused.push(target);
                    continue;
                }
                me.monitoring.insert(folded.clone(), target);
                world.monitors.entry(folded).or_default().insert(id);
                added.push(target);
            }
            if !refused.is_empty() {
                let me = &world.clients[&id];
                me.send(
                    &ctx.numeric(&me.nick, Response::ERR_MONLISTFULL)
                        .param(&limit.to_string())
                        .param(&refused.join(","))
                        .trailing("Monitor list is full."),
                );
            }
            send_status(ctx, &world, &added);
        }
        "-" => {
            for target in split_list(targets) {
                let folded = world.fold(target);
                if let Some(me) = world.clients.get_mut(&id) {
                    me.monitoring.remove(&folded);
                }
                world.unwatch(&folded, id);
            }
        }
        "C" | "c" => {
            let watched: Vec<String> = world.clients[&id].monitoring.iter().cloned().collect();
            for folded in &watched {
                world.unwatch(folded, id);
            }
            if let Some(me) = world.clients.get_mut(&id) {
                me.monitoring.clear();
            }
        }
        "L" | "l" => {
            // As they were added, not casefolded.
            let me = &world.clients[&id];
            let mut watched: Vec<&str> = me.monitoring.given().collect();
            watched.sort_unstable();
            for chunk in pack_into_lines(watched.iter().map(|w| ("", *w)), ',', MONITOR_LINE_BUDGET)
            {
                me.send(
                    &ctx.numeric(&me.nick, Response::RPL_MONLIST)
                        .trailing(&chunk),
                );
            }
            me.send(
                &ctx.numeric(&me.nick, Response::RPL_ENDOFMONLIST)
                    .trailing("End of MONITOR list"),
            );
        }
        "S" | "s" => {
            let me = &world.clients[&id];
            let mut watched: Vec<&str> = me.monitoring.given().collect();
            watched.sort_unstable();
            send_status(ctx, &world, &watched);
        }
        other => {
            let me = &world.clients[&id];
            me.send(
                &ctx.numeric(&me.nick, Response::ERR_UNKNOWNERROR)
                    .param("MONITOR")
                    .param(other)
                    .trailing("Unknown MONITOR subcommand: use +, -, C, L or S"),
            );
        }
    }
    Flow::Continue
}

/// 730 for those online (with their full mask), 731 for the others.
fn send_status(ctx: &Ctx<'_>, world: &World, targets: &[&str]) {
    let me = &world.clients[&ctx.id()];
    let mut online = Vec::new();
    let mut offline = Vec::new();
    for target in targets {
        match world.registered_by_nick(target) {
            Some(client) => online.push(client.mask()),
            None => offline.push(*target),
        }
    }
    for chunk in pack_into_lines(online.iter().map(|o| ("", *o)), ',', MONITOR_LINE_BUDGET) {
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_MONONLINE)
                .trailing(&chunk),
        );
    }
    for chunk in pack_into_lines(offline.iter().map(|o| ("", *o)), ',', MONITOR_LINE_BUDGET) {
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_MONOFFLINE)
                .trailing(&chunk),
        );
    }
}
