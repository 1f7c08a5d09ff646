//! Looking people up: WHO (with WHOX), WHOIS, WHOWAS, USERHOST.

use super::info::names_this_server;
use super::{is_channel_name, replies, split_list, Ctx, Flow};
use crate::proto::mask::wildcard_match;
use crate::proto::numeric::{Extra, Response};
use crate::proto::Message;
use crate::server::caps::Cap;
use crate::server::channel::{Channel, Membership};
use crate::server::world::{Client, ClientId, World};

/// Whether `viewer` may see `target` in WHO without naming a channel:
/// visible users, people sharing a channel, oneself; opers see everyone.
fn is_visible_to(viewer: &Client, target: &Client) -> bool {
    !target.modes.invisible
        || viewer.id == target.id
        || viewer.modes.oper
        || target.channels.iter().any(|c| viewer.channels.contains(c))
}

/// The WHOX field letters a client asked for, with its query token.
struct Whox {
    fields: String,
    token: String,
}

fn parse_whox(spec: Option<&str>) -> Option<Whox> {
    let spec = spec?.strip_prefix('%')?;
    let (fields, token) = spec.split_once(',').unwrap_or((spec, ""));
    Some(Whox {
        fields: fields.to_owned(),
        token: token.chars().take(3).collect(),
    })
}

fn who_flags(target: &Client, membership: Option<Membership>, multi_prefix: bool) -> String {
    let mut flags = String::from(if target.away.is_some() { "G" } else { "H" });
    if target.modes.oper {
        flags.push('*');
    }
    if let Some(membership) = membership {
        flags.push_str(membership.prefix(multi_prefix));
    }
    flags
}

fn send_who_line(
    ctx: &Ctx<'_>,
    me: &Client,
    target: &Client,
    channel: Option<&Channel>,
    whox: Option<&Whox>,
) {
    let channel_name = channel.map(|c| c.name.as_str()).unwrap_or("*");
    let membership = channel.and_then(|c| c.members.get(&target.id).map(|m| m.status));
    let flags = who_flags(target, membership, me.caps.has(Cap::MultiPrefix));
    let Some(whox) = whox else {
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_WHOREPLY)
                .param(channel_name)
                .param(target.user())
                .param(target.host())
                .param(&ctx.server.name)
                .param(&target.nick)
                .param(&flags)
                .trailing(&format!("0 {}", target.realname)),
        );
        return;
    };
    // WHOX fields always come back in this order, whatever order they
    // were asked in.
    let mut builder = ctx.numeric(&me.nick, Extra::RPL_WHOSPCRPL);
    let mut realname = None;
    for field in "tcuihsnfdlaor".chars().filter(|f| whox.fields.contains(*f)) {
        let value = match field {
            't' => whox.token.clone(),
            'c' => channel_name.to_owned(),
            'u' => target.user().to_string(),
            'i' => target.ip.to_string(),
            'h' => target.host().to_string(),
            's' => ctx.server.name.clone(),
            'n' => target.nick.to_string(),
            'f' => flags.clone(),
            'd' => "0".to_owned(),
            'l' => target.idle_secs().to_string(),
            // The account name; `0` only for a user not logged in.
            'a' => target.account().unwrap_or("0").to_owned(),
            'o' => "n/a".to_owned(),
            _ => {
                realname = Some(&target.realname);
                continue;
            }
        };
        builder = builder.param(if value.is_empty() { "*" } else { &value });
    }
    me.send(&match realname {
        Some(realname) => builder.trailing(realname),
        None => builder.finish(),
    });
}

pub fn who(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    let mask = msg.param(0).filter(|m| !m.is_empty()).unwrap_or("*");
    let whox = parse_whox(msg.param(1));
    let opers_only = msg
        .param(1)
        .is_some_and(|p| !p.starts_with('%') && p.contains('o'));
    if is_channel_name(mask) {
        if let Some(channel) = world.channel(mask) {
            let member = channel.is_member(id);
            if channel.is_visible_to(id, me.modes.oper) {
                for target_id in channel.members.keys() {
                    let target = &world.clients[target_id];
                    let shown = member || !target.modes.invisible || me.modes.oper;
                    if shown && (!opers_only || target.modes.oper) {
                        send_who_line(ctx, me, target, Some(channel), whox.as_ref());
                    }
                }
            }
        }
    } else {
        let folded_mask = world.fold(if mask == "0" { "*" } else { mask });
        let exact = world
            .client_by_nick(mask)
            .filter(|c| c.registered)
            .map(|c| c.id);
        for target in world.clients.values().filter(|c| c.registered) {
            let matches = Some(target.id) == exact
                || [
                    &*target.nick,
                    target.user(),
                    target.host(),
                    &*target.realname,
                ]
                .iter()
                .any(|field| wildcard_match(&folded_mask, &world.fold(field)))
                || wildcard_match(&folded_mask, &world.fold(target.mask()));
            let visible = Some(target.id) == exact || is_visible_to(me, target);
            if matches && visible && (!opers_only || target.modes.oper) {
                let shared = target.channels.iter().find(|c| me.channels.contains(*c));
                let channel = shared.and_then(|c| world.channels.get(c));
                send_who_line(ctx, me, target, channel, whox.as_ref());
            }
        }
    }
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_ENDOFWHO)
            .param(mask)
            .trailing("End of WHO list"),
    );
    Flow::Continue
}

/// The channels of `target` that `viewer` may see, with prefixes.
fn visible_channels(world: &World, viewer: &Client, target: &Client) -> Vec<String> {
    let multi_prefix = viewer.caps.has(Cap::MultiPrefix);
    let mut names: Vec<String> = target
        .channels
        .iter()
        .filter_map(|folded| world.channels.get(folded))
        .filter(|c| c.is_visible_to(viewer.id, viewer.modes.oper))
        .map(|c| {
            format!(
                "{}{}",
                c.members[&target.id].status.prefix(multi_prefix),
                c.name
            )
        })
        .collect();
    names.sort();
    names
}

pub fn whois(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    // `WHOIS server nicks` asks a given server: this one (by name, mask or
    // the nick of a user on it), or 402.
    let requested = if msg.params.len() >= 2 {
        if !names_this_server(ctx, msg, 0) {
            return Flow::Continue;
        }
        msg.params[1]
    } else {
        msg.params[0]
    };
    let max_targets = ctx.server.config.limits.targets_per_message;
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    for nick_query in split_list(requested).take(max_targets) {
        match world.registered_by_nick(nick_query) {
            Some(target) => send_whois(ctx, &world, me, target),
            None => me.send(&replies::no_such_nick(ctx, &me.nick, nick_query)),
        }
    }
    // 318 echoes the parameter exactly as sent, case and commas included.
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_ENDOFWHOIS)
            .param(requested)
            .trailing("End of /WHOIS list"),
    );
    Flow::Continue
}

fn send_whois(ctx: &Ctx<'_>, world: &World, me: &Client, target: &Client) {
    let reply = |numeric| ctx.numeric(&me.nick, numeric);
    let nick = &*target.nick;
    me.send(
        &reply(Response::RPL_WHOISUSER)
            .param(nick)
            .param(target.user())
            .param(target.host())
            .param("*")
            .trailing(&target.realname),
    );
    let channels = visible_channels(world, me, target);
    if !channels.is_empty() {
        me.send(
            &reply(Response::RPL_WHOISCHANNELS)
                .param(nick)
                .trailing(&channels.join(" ")),
        );
    }
    me.send(
        &reply(Response::RPL_WHOISSERVER)
            .param(nick)
            .param(&ctx.server.name)
            .trailing(&ctx.server.config.server.description),
    );
    if target.modes.oper {
        me.send(
            &reply(Response::RPL_WHOISOPERATOR)
                .param(nick)
                .trailing("is an IRC operator"),
        );
    }
    if let Some(account) = target.account() {
        me.send(
            &ctx.numeric(&me.nick, Extra::RPL_WHOISACCOUNT)
                .param(nick)
                .param(account)
                .trailing("is logged in as"),
        );
    }
    if let Some(away) = &target.away {
        me.send(&reply(Response::RPL_AWAY).param(nick).trailing(away));
    }
    if me.id == target.id || me.modes.oper {
        me.send(
            &ctx.numeric(&me.nick, Extra::RPL_WHOISACTUALLY)
                .param(nick)
                .param(&target.ip.to_string())
                .trailing("Actual host"),
        );
    }
    me.send(
        &reply(Response::RPL_WHOISIDLE)
            .param(nick)
            .param(&target.idle_secs().to_string())
            .param(&target.signon.to_string())
            .trailing("seconds idle, signon time"),
    );
}

pub fn whowas(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let nick_query = msg.params[0];
    let count = msg
        .param(1)
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .unwrap_or(usize::MAX);
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    let folded = world.fold(nick_query);
    let entries: Vec<_> = world
        .whowas
        .iter()
        .filter(|e| e.folded == folded)
        .take(count)
        .collect();
    if entries.is_empty() {
        me.send(
            &ctx.numeric(&me.nick, Response::ERR_WASNOSUCHNICK)
                .param(nick_query)
                .trailing("There was no such nickname"),
        );
    }
    for entry in entries {
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_WHOWASUSER)
                .param(&entry.nick)
                .param(&entry.user)
                .param(&entry.host)
                .param("*")
                .trailing(&entry.realname),
        );
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_WHOISSERVER)
                .param(&entry.nick)
                .param(&entry.server)
                .trailing(&httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.left_at),
                )),
        );
    }
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_ENDOFWHOWAS)
            .param(nick_query)
            .trailing("End of WHOWAS"),
    );
    Flow::Continue
}

pub fn userhost(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id: ClientId = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    let replies: Vec<String> = msg
        .params
        .iter()
        .flat_map(|p| p.split(' '))
        .filter(|n| !n.is_empty())
        .take(5)
        .filter_map(|nick| world.registered_by_nick(nick))
        .map(|c| {
            let oper = if c.modes.oper { "*" } else { "" };
            let away = if c.away.is_some() { '-' } else { '+' };
            format!("{}{oper}={away}{}@{}", c.nick, c.user(), c.host())
        })
        .collect();
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_USERHOST)
            .trailing(&replies.join(" ")),
    );
    Flow::Continue
}
