//! MODE for channels (`+beIiklmnopstv`) and for users (`+iowZ`).

use super::{existing_channel, is_channel_name, replies, Ctx, Flow};
use crate::proto::mask::normalize_ban_mask;
use crate::proto::numeric::{Extra, Response};
use crate::proto::Message;
use crate::server::channel::{Channel, ListEntry};
use crate::server::unix_now;
use crate::server::world::{line_from, ClientId, World};

/// Longest ban/exception/invite mask kept: room for any real
/// `nick!user@host`, but no way to store kilobytes per entry.
const MAX_MASK_BYTES: usize = 160;

pub fn mode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if is_channel_name(msg.params[0]) {
        channel_mode(ctx, msg)
    } else {
        user_mode(ctx, msg)
    }
}

/// Which list a list mode letter names, with its reply numerics.
fn list_numerics(letter: char) -> (Response, Response, &'static str) {
    match letter {
        'b' => (
            Response::RPL_BANLIST,
            Response::RPL_ENDOFBANLIST,
            "End of channel ban list",
        ),
        'e' => (
            Response::RPL_EXCEPTLIST,
            Response::RPL_ENDOFEXCEPTLIST,
            "End of channel exception list",
        ),
        _ => (
            Response::RPL_INVITELIST,
            Response::RPL_ENDOFINVITELIST,
            "End of channel invite list",
        ),
    }
}

fn list_mut(channel: &mut Channel, letter: char) -> &mut Vec<ListEntry> {
    match letter {
        'b' => &mut channel.bans,
        'e' => &mut channel.excepts,
        _ => &mut channel.invex,
    }
}

/// The mode changes that took effect, in order, for the echo line.
#[derive(Default)]
struct Applied {
    modes: String,
    params: Vec<String>,
    last_sign: Option<char>,
}

impl Applied {
    fn push(&mut self, adding: bool, letter: char, param: Option<String>) {
        let sign = if adding { '+' } else { '-' };
        if self.last_sign != Some(sign) {
            self.modes.push(sign);
            self.last_sign = Some(sign);
        }
        self.modes.push(letter);
        self.params.extend(param);
    }

    fn line(&self, source: &str, account: Option<&str>, target: &str) -> Option<bytes::Bytes> {
        if self.modes.is_empty() {
            return None;
        }
        let builder = line_from(source, account, "MODE").param(target);
        Some(match self.params.split_last() {
            Some((last, rest)) => builder
                .param(&self.modes)
                .params(rest.iter().map(String::as_str))
                .last(last),
            None => builder.last(&self.modes),
        })
    }
}

fn channel_mode(ctx: &Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let mut world = ctx.world();
    let Some(folded) = existing_channel(ctx, &world, msg.params[0]) else {
        return Flow::Continue;
    };
    let me = &world.clients[&id];
    let nick = me.nick.clone();
    let channel = &world.channels[&folded];
    if !channel.is_visible_to(id, me.modes.oper) {
        // A secret channel's modes and lists are nobody else's business.
        me.send(&replies::not_on_channel(ctx, &nick, &channel.name));
        return Flow::Continue;
    }
    let Some(modestring) = msg.param(1).filter(|m| !m.is_empty()) else {
        let described = channel
            .modes
            .describe(channel.is_member(id) || me.modes.oper);
        let (last, rest) = described
            .split_last()
            .expect("describe returns the mode word");
        me.send(
            &ctx.numeric(&nick, Response::RPL_CHANNELMODEIS)
                .param(&channel.name)
                .params(rest.iter().map(String::as_str))
                .last(last),
        );
        me.send(
            &ctx.numeric(&nick, Extra::RPL_CREATIONTIME)
                .param(&channel.name)
                .last(&channel.created.to_string()),
        );
        return Flow::Continue;
    };
    let may_change = channel.is_op(id) || me.modes.oper;
    let channel_name = channel.name.clone();
    let (setter, setter_account) = (me.mask().to_string(), me.account().map(Box::<str>::from));
    let mut params = msg.params[2..].iter().copied();
    let mut adding = true;
    let mut applied = Applied::default();
    let mut parameterised = 0;
    // Lists and errors, sent before the echo of what changed.
    let mut replies: Vec<bytes::Bytes> = Vec::new();
    // Each list is sent at most once per command, however often it is asked.
    let mut listed = String::new();
    let mut refused_for_privileges = false;
    let limits = &ctx.server.config().limits;

    for letter in modestring.chars() {
        match letter {
            '+' => adding = true,
            '-' => adding = false,
            'b' | 'e' | 'I' => {
                // An empty mask asks for the list, like no mask at all.
                let Some(mask) = params.next().filter(|m| !m.is_empty()) else {
                    if listed.contains(letter) {
                        continue;
                    }
                    listed.push(letter);
                    let (entry_numeric, end_numeric, end_text) = list_numerics(letter);
                    let channel = &world.channels[&folded];
                    let list = match letter {
                        'b' => &channel.bans,
                        'e' => &channel.excepts,
                        _ => &channel.invex,
                    };
                    for entry in list {
                        replies.push(
                            ctx.numeric(&nick, entry_numeric)
                                .param(&channel_name)
                                .param(&entry.mask)
                                .param(&entry.set_by)
                                .last(&entry.set_at.to_string()),
                        );
                    }
                    replies.push(
                        ctx.numeric(&nick, end_numeric)
                            .param(&channel_name)
                            .trailing(end_text),
                    );
                    continue;
                };
                if !may_change {
                    refused_for_privileges = true;
                    continue;
                }
                parameterised += 1;
                if parameterised > limits.modes_per_command {
                    continue;
                }
                let mask = normalize_ban_mask(mask);
                if adding && mask.len() > MAX_MASK_BYTES {
                    replies.push(
                        ctx.numeric(&nick, Extra::ERR_INVALIDMODEPARAM)
                            .param(&channel_name)
                            .param(&letter.to_string())
                            .param("*")
                            .trailing(&format!("Mask too long: at most {MAX_MASK_BYTES} bytes")),
                    );
                    continue;
                }
                let folded_mask = world.fold(&mask);
                let channel = world.channels.get_mut(&folded).expect("checked above");
                let list = list_mut(channel, letter);
                let existing = list.iter().position(|e| e.folded == folded_mask);
                match (adding, existing) {
                    (true, None) if list.len() >= limits.list_entries => replies.push(
                        ctx.numeric(&nick, Response::ERR_BANLISTFULL)
                            .param(&channel_name)
                            .param(&letter.to_string())
                            .trailing("Channel list is full"),
                    ),
                    (true, None) => {
                        list.push(ListEntry {
                            mask: mask.clone(),
                            folded: folded_mask,
                            set_by: setter.clone(),
                            set_at: unix_now(),
                        });
                        applied.push(true, letter, Some(mask));
                    }
                    (false, Some(index)) => {
                        let removed = list.remove(index);
                        applied.push(false, letter, Some(removed.mask));
                    }
                    // Adding what is there or removing what is not: no change.
                    _ => {}
                }
            }
            'o' | 'v' => {
                let Some(target) = params.next() else {
                    replies.push(replies::need_more_params(ctx, &nick, "MODE"));
                    continue;
                };
                if !may_change {
                    refused_for_privileges = true;
                    continue;
                }
                parameterised += 1;
                if parameterised > limits.modes_per_command {
                    continue;
                }
                let World {
                    channels,
                    clients,
                    nicks,
                    casemapping,
                    ..
                } = &mut *world;
                let target_id: Option<ClientId> = nicks.get(&casemapping.fold(target)).copied();
                let Some(target_client) = target_id
                    .and_then(|t| clients.get(&t))
                    .filter(|c| c.registered)
                else {
                    replies.push(replies::no_such_nick(ctx, &nick, target));
                    continue;
                };
                let channel = channels.get_mut(&folded).expect("checked above");
                let Some(membership) = channel
                    .members
                    .get_mut(&target_client.id)
                    .map(|member| &mut member.status)
                else {
                    replies.push(
                        ctx.numeric(&nick, Response::ERR_USERNOTINCHANNEL)
                            .param(&target_client.nick)
                            .param(&channel_name)
                            .trailing("They aren't on that channel"),
                    );
                    continue;
                };
                let flag = if letter == 'o' {
                    &mut membership.op
                } else {
                    &mut membership.voice
                };
                if *flag != adding {
                    *flag = adding;
                    applied.push(adding, letter, Some(target_client.nick.to_string()));
                }
            }
            'k' => {
                // `-k` may or may not carry the old key; take it if given.
                let key = params.next();
                if !may_change {
                    refused_for_privileges = true;
                    continue;
                }
                let channel = world.channels.get_mut(&folded).expect("checked above");
                if adding {
                    let Some(key) = key.filter(|k| is_valid_key(k)) else {
                        replies.push(
                            ctx.numeric(&nick, Extra::ERR_INVALIDMODEPARAM)
                                .param(&channel_name)
                                .param("k")
                                .param(
                                    key.filter(|k| !k.is_empty() && !k.contains(' '))
                                        .unwrap_or("*"),
                                )
                                .trailing("Invalid key: up to 23 characters, no spaces or commas"),
                        );
                        continue;
                    };
                    channel.modes.key = Some(key.to_owned());
                    applied.push(true, 'k', Some(key.to_owned()));
                } else if channel.modes.key.take().is_some() {
                    applied.push(false, 'k', Some("*".to_owned()));
                }
            }
            'l' => {
                let limit = if adding { params.next() } else { None };
                if !may_change {
                    refused_for_privileges = true;
                    continue;
                }
                let channel = world.channels.get_mut(&folded).expect("checked above");
                if adding {
                    match limit
                        .and_then(|l| l.parse::<usize>().ok())
                        .filter(|&l| l > 0)
                    {
                        Some(limit) => {
                            channel.modes.limit = Some(limit);
                            applied.push(true, 'l', Some(limit.to_string()));
                        }
                        None => replies.push(
                            ctx.numeric(&nick, Extra::ERR_INVALIDMODEPARAM)
                                .param(&channel_name)
                                .param("l")
                                .param(
                                    limit
                                        .filter(|l| !l.is_empty() && !l.contains(' '))
                                        .unwrap_or("*"),
                                )
                                .trailing("Invalid limit: give a positive number"),
                        ),
                    }
                } else if channel.modes.limit.take().is_some() {
                    applied.push(false, 'l', None);
                }
            }
            'i' | 'm' | 'n' | 't' | 's' | 'p' => {
                if !may_change {
                    refused_for_privileges = true;
                    continue;
                }
                let modes = &mut world
                    .channels
                    .get_mut(&folded)
                    .expect("checked above")
                    .modes;
                let flag = match letter {
                    'i' => &mut modes.invite_only,
                    'm' => &mut modes.moderated,
                    'n' => &mut modes.no_external,
                    't' => &mut modes.topic_lock,
                    's' => &mut modes.secret,
                    _ => &mut modes.private,
                };
                if *flag != adding {
                    *flag = adding;
                    applied.push(adding, letter, None);
                }
            }
            unknown => replies.push(
                ctx.numeric(&nick, Response::ERR_UNKNOWNMODE)
                    .param(&unknown.to_string())
                    .trailing("is unknown mode char to me"),
            ),
        }
    }

    let me = &world.clients[&id];
    if refused_for_privileges {
        me.send(&replies::chanop_needed(ctx, &nick, &channel_name));
    }
    for line in &replies {
        me.send(line);
    }
    if let Some(line) = applied.line(&setter, setter_account.as_deref(), &channel_name) {
        world.channels[&folded].broadcast_and_echo(&world.clients, &line, id);
        world.history.record_event([&folded], "MODE", &line);
        // A registration keeps no ops and voice (ChanServ's access list
        // gives them), but a restart gives them back.
        if applied
            .modes
            .chars()
            .all(|c| matches!(c, '+' | '-' | 'o' | 'v'))
        {
            world.channel_changed(&folded);
        } else {
            super::chanserv::remember(ctx.server, &mut world, &folded);
        }
    }
    Flow::Continue
}

fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 23
        && !key.contains([' ', ',', ':'])
        && !key.chars().any(char::is_control)
}

fn user_mode(ctx: &Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let mut world = ctx.world();
    let me = &world.clients[&id];
    let nick = me.nick.clone();
    let Some(target) = world.registered_by_nick(msg.params[0]) else {
        me.send(&replies::no_such_nick(ctx, &nick, msg.params[0]));
        return Flow::Continue;
    };
    if target.id != id {
        let verb = if msg.params.len() > 1 {
            "change"
        } else {
            "view"
        };
        me.send(
            &ctx.numeric(&nick, Response::ERR_USERSDONTMATCH)
                .trailing(&format!("Can't {verb} mode for other users")),
        );
        return Flow::Continue;
    }
    let Some(modestring) = msg.param(1).filter(|m| !m.is_empty()) else {
        me.send(
            &ctx.numeric(&nick, Response::RPL_UMODEIS)
                .last(&me.modes.describe()),
        );
        return Flow::Continue;
    };
    let mut modes = me.modes;
    let mut adding = true;
    let mut applied = Applied::default();
    let mut unknown = false;
    for letter in modestring.chars() {
        let flag = match letter {
            '+' | '-' => {
                adding = letter == '+';
                continue;
            }
            'i' => &mut modes.invisible,
            'w' => &mut modes.wallops,
            // Operator status is gained with OPER only; it can be dropped.
            'o' if !adding => &mut modes.oper,
            'o' => continue,
            // The connection decides it, not the user; asking is no error.
            'Z' => continue,
            _ => {
                unknown = true;
                continue;
            }
        };
        if *flag != adding {
            *flag = adding;
            applied.push(adding, letter, None);
        }
    }
    world.update_modes(id, |current| *current = modes);
    let me = &world.clients[&id];
    if unknown {
        me.send(
            &ctx.numeric(&nick, Response::ERR_UMODEUNKNOWNFLAG)
                .trailing("Unknown MODE flag"),
        );
    }
    if let Some(line) = applied.line(&nick, None, &nick) {
        me.send(&line);
    }
    Flow::Continue
}
