//! Joining and leaving channels: JOIN, PART, KICK, INVITE.

use super::chanserv::{self, Status};
use super::listing::send_names;
use super::topic::send_topic;
use super::{existing_channel, is_channel_name, replies, split_list, Ctx, Flow};
use crate::proto::numeric::{Extra, Response};
use crate::proto::tags::Stamp;
use crate::proto::Message;
use crate::server::batch::Batch;
use crate::server::caps::Cap;
use crate::server::channel::{self, Channel, Member, Membership};
use crate::server::unix_now;
use crate::server::world::{line_from, ClientId, World};

/// `INVITE` alone: the channels this client is invited to (336/337).
fn list_invites(ctx: &Ctx<'_>) -> Flow {
    let world = ctx.world();
    let me = &world.clients[&ctx.id()];
    let mut invited: Vec<&str> = me
        .invited_to
        .iter()
        .filter_map(|folded| world.channels.get(folded))
        .filter(|c| c.invited.contains(&me.id))
        .map(|c| c.name.as_str())
        .collect();
    invited.sort_unstable();
    for name in invited {
        me.send(&ctx.numeric(&me.nick, Extra::RPL_PENDINGINVITE).last(name));
    }
    me.send(
        &ctx.numeric(&me.nick, Extra::RPL_ENDOFPENDINGINVITES)
            .trailing("End of /INVITE list"),
    );
    Flow::Continue
}

pub fn is_valid_channel_name(name: &str, max_len: usize) -> bool {
    is_channel_name(name)
        && name.len() > 1
        && name.len() <= max_len
        && !name
            .chars()
            .any(|c| c == ' ' || c == ',' || c == '\x07' || c.is_control())
}

pub fn join(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if msg.params[0] == "0" {
        part_all(ctx);
        return Flow::Continue;
    }
    let mut keys = msg.param(1).unwrap_or("").split(',');
    for name in split_list(msg.params[0]) {
        let key = keys.next().filter(|k| !k.is_empty());
        join_one(ctx, name, key);
    }
    Flow::Continue
}

/// Why a JOIN was refused: the numeric and the mode letter it names. A
/// member `returning` after a restart passes +i, +k and +l, as if it had
/// never left, but not a ban.
fn join_refusal(
    world: &World,
    channel: &Channel,
    id: ClientId,
    key: Option<&str>,
    returning: bool,
) -> Option<(Response, char)> {
    let me = &world.clients[&id];
    if me.modes.oper || channel.invited.contains(&id) {
        return None;
    }
    let folded_masks = world.folded_masks(me);
    if channel.is_banned(&folded_masks) {
        return Some((Response::ERR_BANNEDFROMCHAN, 'b'));
    }
    if returning {
        return None;
    }
    if channel.modes.invite_only && !channel.is_invite_excepted(&folded_masks) {
        return Some((Response::ERR_INVITEONLYCHAN, 'i'));
    }
    if channel.modes.key.as_deref().is_some_and(|k| Some(k) != key) {
        return Some((Response::ERR_BADCHANNELKEY, 'k'));
    }
    if channel
        .modes
        .limit
        .is_some_and(|limit| channel.members.len() >= limit)
    {
        return Some((Response::ERR_CHANNELISFULL, 'l'));
    }
    None
}

fn join_one(ctx: &Ctx<'_>, name: &str, key: Option<&str>) {
    let id = ctx.id();
    let limits = &ctx.server.config().limits;
    let mut world = ctx.world();
    let folded = world.fold(name);
    let me = &world.clients[&id];
    let nick = me.nick.clone();
    if !is_valid_channel_name(name, limits.channel_length) {
        me.send(&replies::no_such_channel(ctx, &nick, name));
        return;
    }
    if me.channels.contains(&folded) {
        return;
    }
    if me.channels.len() >= limits.channels_per_client {
        me.send(
            &ctx.numeric(&nick, Response::ERR_TOOMANYCHANNELS)
                .param(name)
                .trailing("You have joined too many channels"),
        );
        return;
    }
    // A registered channel gives ops by its access list, not to whoever
    // happens to recreate it; op access also lets one past +i/+k/+l/+b.
    let status = chanserv::status_on_join(ctx.server, &world, &folded, id);
    // A registered channel being recreated comes back with its saved
    // modes, which apply to the one recreating it too.
    let created = !world.channels.contains_key(&folded);
    // (after everyone left, or after a restart that did not bring it
    // back).
    if created {
        let mut channel = Channel::new(name.to_owned(), unix_now());
        world.apply_registration(&folded, &mut channel);
        world.channels.insert(folded.clone(), channel);
    }
    // A member the channel had when the server stopped comes back in as if
    // it had never left.
    let returning = world.returning_key(&folded, id);
    let channel = &world.channels[&folded];
    let refusal = match status {
        Status::Op => None,
        _ => join_refusal(&world, channel, id, key, returning.is_some()),
    };
    if let Some((numeric, mode)) = refusal {
        let line = ctx
            .numeric(&nick, numeric)
            .param(&channel.name)
            .trailing(&format!("Cannot join channel (+{mode})"));
        world.clients[&id].send(&line);
        if created {
            world.channels.remove(&folded);
        }
        return;
    }
    let restored = returning
        .and_then(|key| world.take_returning(&folded, &key))
        .unwrap_or_default();
    let World {
        channels,
        clients,
        history,
        unsaved_channels,
        ..
    } = &mut *world;
    let channel = channels.get_mut(&folded).expect("present or just created");
    channel.invited.remove(&id);
    let me = clients.get_mut(&id).expect("the session's own client");
    let given = Membership {
        op: status == Status::Op || (created && status == Status::Unregistered),
        voice: status == Status::Voice,
    };
    // What the restart gives back beyond what ChanServ gives.
    let restored = restored.beyond(given);
    let membership = given.union(restored);
    if created || channel.remembers(membership) {
        unsaved_channels.mark(&folded);
    }
    channel.members.insert(
        id,
        Member {
            status: membership,
            outbox: me.outbox.clone(),
        },
    );
    me.invited_to.remove(&folded);
    me.channels.insert(folded.clone());
    // Both forms built once for all members.
    let [line, extended] = me.join_lines(&channel.name);
    channel.broadcast_join(clients, [&line, &extended], id);
    history.record_event([&folded], "JOIN", &line);
    // away-notify: members learn the newcomer is away without asking.
    let me = &clients[&id];
    if let Some(away) = &me.away {
        let line = me.line("AWAY").trailing(away);
        for member in channel.members.keys().filter(|&&member| member != id) {
            if let Some(client) = clients.get(member).filter(|c| c.caps.has(Cap::AwayNotify)) {
                client.send(&line);
            }
        }
    }
    let modes = [
        chanserv::join_mode(channel, &clients[&id], status),
        restored.granted_line(&ctx.server.name, &channel.name, &clients[&id].nick),
    ];
    for mode in modes.iter().flatten() {
        channel.broadcast(clients, mode, None);
        history.record_event([&folded], "MODE", mode);
    }
    send_topic(ctx, &world, &world.channels[&folded], &nick, false);
    send_names(ctx, &world, &world.channels[&folded], id);
    replay_recent(ctx, &world, &folded, id);
}

/// Sends the channel's recent lines to a client that just joined it, as
/// ordinary lines from their senders: in a `chathistory` batch for a
/// client with batch, and with their original time for one with
/// server-time.
fn replay_recent(ctx: &Ctx<'_>, world: &World, folded: &str, id: ClientId) {
    let count = world.history.replay_lines(folded);
    if count == 0 {
        return;
    }
    let me = &world.clients[&id];
    // A returning account sees only what it has not seen.
    let since = Stamp::now()
        .time_ms
        .saturating_sub(world.history.replay.max_age_ms)
        .max(me.last_seen_ms());
    let after = world.channels[folded].history_after;
    let mut lines = world
        .recent_lines
        .since(folded, since, after, count)
        .peekable();
    if lines.peek().is_none() {
        return;
    }
    // "If a client requests [draft/chathistory], the server SHOULD NOT play
    // back any history that would otherwise be sent automatically."
    if me.caps.has(Cap::Chathistory) {
        return;
    }
    let channel = &world.channels[folded];
    let batch = me
        .caps
        .has(Cap::Batch)
        .then(|| Batch::start(&ctx.server.name, "chathistory", &[&channel.name]));
    if let Some(batch) = &batch {
        me.outbox.send_as_is(batch.start_line());
    }
    for line in lines {
        match &batch {
            Some(batch) => me.outbox.send_as_is(batch.wrap(&me.outbox.view(line))),
            None => me.outbox.send_as_is(me.outbox.view(line)),
        };
    }
    if let Some(batch) = batch {
        me.outbox.send_as_is(batch.end_line());
    }
}

fn part_all(ctx: &Ctx<'_>) {
    let id = ctx.id();
    let mut world = ctx.world();
    let names: Vec<String> = world.clients[&id].channels.iter().cloned().collect();
    for folded in names {
        part_one(&mut world, id, &folded, None);
    }
}

/// Removes `id` from the channel after telling its members; the channel
/// goes when its last member does.
fn part_one(world: &mut World, id: ClientId, folded: &str, reason: Option<&str>) {
    let World {
        channels,
        clients,
        history,
        unsaved_channels,
        ..
    } = world;
    let Some(channel) = channels.get_mut(folded) else {
        return;
    };
    let Some(me) = clients.get_mut(&id) else {
        return;
    };
    let builder = me.line("PART");
    let line = match reason {
        Some(reason) => builder.param(&channel.name).trailing(reason),
        None => builder.last(&channel.name),
    };
    me.channels.remove(folded);
    channel.broadcast_membership(clients, &line, id);
    history.record_event([&folded.to_owned()], "PART", &line);
    channel::remove_member(channels, unsaved_channels, folded, id);
}

pub fn part(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let reason = msg.param(1).filter(|r| !r.is_empty());
    let mut world = ctx.world();
    for name in split_list(msg.params[0]) {
        let folded = world.fold(name);
        let me = &world.clients[&id];
        let refusal = match world.channels.get(&folded) {
            None => Some(replies::no_such_channel(ctx, &me.nick, name)),
            Some(channel) if !channel.is_member(id) => {
                Some(replies::not_on_channel(ctx, &me.nick, name))
            }
            Some(_) => None,
        };
        if let Some(line) = refusal {
            me.send(&line);
            continue;
        }
        part_one(&mut world, id, &folded, reason);
    }
    Flow::Continue
}

/// `KICK <channel> <user>{,<user>} [<comment>]`, and RFC 2812's paired
/// form `KICK #a,#b alice,bob`: one user per channel, in order. Either way
/// a command kicks at most `targets_per_message` users; the rest get 407.
pub fn kick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let channels: Vec<&str> = split_list(msg.params[0]).collect();
    let users: Vec<&str> = split_list(msg.params[1]).collect();
    let paired = channels.len() > 1;
    if channels.is_empty() || users.is_empty() || (paired && channels.len() != users.len()) {
        let world = ctx.world();
        let me = &world.clients[&id];
        me.send(&replies::need_more_params(ctx, &me.nick, "KICK"));
        return Flow::Continue;
    }
    let max_targets = ctx.server.config().limits.targets_per_message;
    let mut world = ctx.world();
    let nick = world.clients[&id].nick.clone();
    let reason: String = msg
        .param(2)
        .filter(|r| !r.is_empty())
        .unwrap_or(&nick)
        .chars()
        .take(ctx.server.config().limits.kick_length)
        .collect();
    let (kept, refused) = users.split_at(users.len().min(max_targets));
    if paired {
        for (channel, user) in channels.iter().zip(kept) {
            kick_from(ctx, &mut world, channel, &[user], &reason);
        }
    } else {
        kick_from(ctx, &mut world, channels[0], kept, &reason);
    }
    for user in refused {
        world.clients[&id].send(
            &ctx.numeric(&nick, Response::ERR_TOOMANYTARGETS)
                .param(user)
                .trailing("Too many targets"),
        );
    }
    Flow::Continue
}

/// Kicks `users` from the channel named `name`, if the kicker may.
fn kick_from(ctx: &Ctx<'_>, world: &mut World, name: &str, users: &[&str], reason: &str) {
    let id = ctx.id();
    let Some(folded) = existing_channel(ctx, world, name) else {
        return;
    };
    let me = &world.clients[&id];
    let nick = me.nick.clone();
    let channel = &world.channels[&folded];
    if !channel.is_member(id) && !me.modes.oper {
        me.send(&replies::not_on_channel(ctx, &nick, &channel.name));
        return;
    }
    if !channel.is_op(id) && !me.modes.oper {
        me.send(&replies::chanop_needed(ctx, &nick, &channel.name));
        return;
    }
    let (kicker_mask, kicker_account) = (
        Box::<str>::from(me.mask()),
        me.account().map(Box::<str>::from),
    );
    for target in users {
        let World {
            channels,
            clients,
            nicks,
            casemapping,
            history,
            unsaved_channels,
            ..
        } = &mut *world;
        let channel = channels.get_mut(&folded).expect("checked above");
        let target_id = nicks.get(&casemapping.fold(target)).copied();
        let Some(target_id) = target_id.filter(|t| channel.is_member(*t)) else {
            let line = ctx
                .numeric(&nick, Response::ERR_USERNOTINCHANNEL)
                .param(target)
                .param(&channel.name)
                .trailing("They aren't on that channel");
            clients[&id].send(&line);
            continue;
        };
        let line = line_from(&kicker_mask, kicker_account.as_deref(), "KICK")
            .param(&channel.name)
            .param(&clients[&target_id].nick)
            .trailing(reason);
        channel.broadcast_and_echo(clients, &line, id);
        history.record_event([&folded], "KICK", &line);
        if let Some(kicked) = clients.get_mut(&target_id) {
            kicked.channels.remove(&folded);
        }
        if channel::remove_member(channels, unsaved_channels, &folded, target_id) {
            break;
        }
    }
}

pub fn invite(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    match msg.params.len() {
        0 => return list_invites(ctx),
        1 => {
            let nick = ctx.world().clients[&ctx.id()].nick.clone();
            ctx.send(&replies::need_more_params(ctx, &nick, "INVITE"));
            return Flow::Continue;
        }
        _ => {}
    }
    let (target_nick, channel_name) = (msg.params[0], msg.params[1]);
    let id = ctx.id();
    let mut world = ctx.world();
    let folded = world.fold(channel_name);
    let me = &world.clients[&id];
    let nick = me.nick.clone();
    let Some(target) = world.registered_by_nick(target_nick) else {
        me.send(&replies::no_such_nick(ctx, &nick, target_nick));
        return Flow::Continue;
    };
    let Some(channel) = world.channels.get(&folded) else {
        me.send(&replies::no_such_channel(ctx, &nick, channel_name));
        return Flow::Continue;
    };
    if !channel.is_member(id) && !me.modes.oper {
        me.send(&replies::not_on_channel(ctx, &nick, &channel.name));
        return Flow::Continue;
    }
    if channel.modes.invite_only && !channel.is_op(id) && !me.modes.oper {
        me.send(&replies::chanop_needed(ctx, &nick, &channel.name));
        return Flow::Continue;
    }
    if channel.is_member(target.id) {
        me.send(
            &ctx.numeric(&nick, Response::ERR_USERONCHANNEL)
                .param(&target.nick)
                .param(&channel.name)
                .trailing("is already on channel"),
        );
        return Flow::Continue;
    }
    me.send(
        &ctx.numeric(&nick, Response::RPL_INVITING)
            .param(&target.nick)
            .last(&channel.name),
    );
    if let Some(away) = &target.away {
        me.send(
            &ctx.numeric(&nick, Response::RPL_AWAY)
                .param(&target.nick)
                .trailing(away),
        );
    }
    let invite = me.line("INVITE").param(&target.nick).last(&channel.name);
    target.send(&invite);
    // invite-notify: the channel's other operators hear of it.
    for (&member, membership) in &channel.members {
        if membership.status.op && member != id && member != target.id {
            if let Some(op) = world
                .clients
                .get(&member)
                .filter(|c| c.caps.has(Cap::InviteNotify))
            {
                op.send(&invite);
            }
        }
    }
    // Only an invitation from someone who could have let the user in
    // themselves opens the door; from anyone else it is a notification.
    let admits = channel.is_op(id) || me.modes.oper;
    let target_id = target.id;
    if admits {
        if let Some(channel) = world.channels.get_mut(&folded) {
            channel.invited.insert(target_id);
        }
        if let Some(target) = world.clients.get_mut(&target_id) {
            target.invited_to.insert(folded);
        }
    }
    Flow::Continue
}
