//! TOPIC: reading and setting a channel's topic.

use super::{existing_channel, replies, Ctx, Flow};
use crate::proto::numeric::Response;
use crate::proto::Message;
use crate::server::channel::{Channel, Topic};
use crate::server::unix_now;
use crate::server::world::World;

/// 332 + 333, or 331 when there is none and `say_none` is set (JOIN sends
/// nothing for a channel without a topic).
pub fn send_topic(ctx: &Ctx<'_>, world: &World, channel: &Channel, nick: &str, say_none: bool) {
    let me = &world.clients[&ctx.id()];
    match &channel.topic {
        Some(topic) => {
            me.send(
                &ctx.numeric(nick, Response::RPL_TOPIC)
                    .param(&channel.name)
                    .trailing(&topic.text),
            );
            me.send(
                &ctx.numeric(nick, Response::RPL_TOPICWHOTIME)
                    .param(&channel.name)
                    .param(&topic.set_by)
                    .last(&topic.set_at.to_string()),
            );
        }
        None if say_none => {
            me.send(
                &ctx.numeric(nick, Response::RPL_NOTOPIC)
                    .param(&channel.name)
                    .trailing("No topic is set"),
            );
        }
        None => {}
    }
}

pub fn topic(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let mut world = ctx.world();
    let Some(folded) = existing_channel(ctx, &world, msg.params[0]) else {
        return Flow::Continue;
    };
    let me = &world.clients[&id];
    let nick = me.nick.clone();
    let channel = &world.channels[&folded];
    let member = channel.is_member(id);
    let Some(new_topic) = msg.param(1) else {
        if !channel.is_visible_to(id, me.modes.oper) {
            me.send(&replies::not_on_channel(ctx, &nick, &channel.name));
        } else {
            send_topic(ctx, &world, channel, &nick, true);
        }
        return Flow::Continue;
    };
    if !member && !me.modes.oper {
        me.send(&replies::not_on_channel(ctx, &nick, &channel.name));
        return Flow::Continue;
    }
    if channel.modes.topic_lock && !channel.is_op(id) && !me.modes.oper {
        me.send(&replies::chanop_needed(ctx, &nick, &channel.name));
        return Flow::Continue;
    }
    let text: String = new_topic
        .chars()
        .take(ctx.server.config().limits.topic_length)
        .collect();
    let line = me.line("TOPIC").param(&channel.name).trailing(&text);
    let topic = (!text.is_empty()).then(|| Topic {
        text,
        set_by: me.mask().to_string(),
        set_at: unix_now(),
    });
    let World {
        channels,
        clients,
        history,
        ..
    } = &mut *world;
    let channel = channels.get_mut(&folded).expect("checked above");
    channel.topic = topic;
    channel.broadcast_and_echo(clients, &line, ctx.id());
    history.record_event([&folded], "TOPIC", &line);
    super::chanserv::remember(ctx.server, &mut world, &folded);
    Flow::Continue
}
