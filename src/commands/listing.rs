//! Listing channels and their members: NAMES and LIST.

use super::{pack_into_lines, split_list, Ctx, Flow};
use crate::proto::mask::wildcard_match;
use crate::proto::numeric::Response;
use crate::proto::Message;
use crate::server::caps::Cap;
use crate::server::channel::Channel;
use crate::server::world::{ClientId, World};

/// Bytes of nicks per 353 line, leaving room for the prefix, the server
/// name, the numeric and the channel name within 512.
const NAMES_LINE_BUDGET: usize = 350;

/// 353 lines (split to fit) and 366 for one channel, as `viewer` may see
/// them: outsiders see no secret channel and no invisible members.
pub fn send_names(ctx: &Ctx<'_>, world: &World, channel: &Channel, viewer: ClientId) {
    let me = &world.clients[&viewer];
    let is_member = channel.is_member(viewer);
    if channel.is_visible_to(viewer, me.modes.oper) {
        let multi_prefix = me.caps.has(Cap::MultiPrefix);
        let with_host = me.caps.has(Cap::UserhostInNames);
        let symbol = if channel.modes.secret {
            "@"
        } else if channel.modes.private {
            "*"
        } else {
            "="
        };
        let entries = channel.members.iter().filter_map(|(id, membership)| {
            let member = world.clients.get(id)?;
            if !is_member && member.modes.invisible && !me.modes.oper {
                return None;
            }
            let name = if with_host {
                member.mask()
            } else {
                &*member.nick
            };
            Some((membership.status.prefix(multi_prefix), name))
        });
        for line in pack_into_lines(entries, ' ', NAMES_LINE_BUDGET) {
            me.send(
                &ctx.numeric(&me.nick, Response::RPL_NAMREPLY)
                    .param(symbol)
                    .param(&channel.name)
                    .trailing(&line),
            );
        }
    }
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_ENDOFNAMES)
            .param(&channel.name)
            .trailing("End of /NAMES list"),
    );
}

pub fn names(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
        // Listing every channel would be a flood on a big network; Modern
        // allows answering only the end.
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_ENDOFNAMES)
                .param("*")
                .trailing("End of /NAMES list"),
        );
        return Flow::Continue;
    };
    for name in split_list(targets) {
        match world.channel(name) {
            Some(channel) => send_names(ctx, &world, channel, id),
            None => me.send(
                &ctx.numeric(&me.nick, Response::RPL_ENDOFNAMES)
                    .param(name)
                    .trailing("End of /NAMES list"),
            ),
        }
    }
    Flow::Continue
}

/// One LIST condition (ELIST=MNU).
enum Filter {
    /// Name matches the mask (M) or, negated, does not (N).
    Mask {
        folded: String,
        negate: bool,
    },
    MoreUsersThan(usize),
    FewerUsersThan(usize),
}

/// The conditions of a LIST; one that cannot be read (`>abc`) is left out
/// rather than voiding the others.
fn parse_filters(world: &World, spec: &str) -> Vec<Filter> {
    split_list(spec)
        .filter_map(|item| {
            if let Some(n) = item.strip_prefix('>') {
                n.parse().ok().map(Filter::MoreUsersThan)
            } else if let Some(n) = item.strip_prefix('<') {
                n.parse().ok().map(Filter::FewerUsersThan)
            } else if let Some(mask) = item.strip_prefix('!') {
                Some(Filter::Mask {
                    folded: world.fold(mask),
                    negate: true,
                })
            } else {
                Some(Filter::Mask {
                    folded: world.fold(item),
                    negate: false,
                })
            }
        })
        .collect()
}

pub fn list(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let world = ctx.world();
    let me = &world.clients[&id];
    // `LIST [channels-or-masks] [conditions]`; clients also put
    // conditions in the first parameter (`/list >5`), so both are read
    // the same way.
    let spec = [msg.param(0), msg.param(1)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(",");
    let filters = parse_filters(&world, &spec);
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_LISTSTART)
            .param("Channel")
            .trailing("Users  Name"),
    );
    let masks: Vec<&Filter> = filters
        .iter()
        .filter(|f| matches!(f, Filter::Mask { negate: false, .. }))
        .collect();
    for (folded, channel) in &world.channels {
        if !channel.is_visible_to(id, me.modes.oper) {
            continue;
        }
        let users = channel.members.len();
        // Positive masks are alternatives; everything else must hold.
        let name_ok = masks.is_empty()
            || masks
                .iter()
                .any(|f| matches!(f, Filter::Mask { folded: m, .. } if wildcard_match(m, folded)));
        let rest_ok = filters.iter().all(|f| match f {
            Filter::Mask {
                folded: m,
                negate: true,
            } => !wildcard_match(m, folded),
            Filter::Mask { .. } => true,
            Filter::MoreUsersThan(n) => users > *n,
            Filter::FewerUsersThan(n) => users < *n,
        });
        if !(name_ok && rest_ok) {
            continue;
        }
        let topic = channel
            .topic
            .as_ref()
            .map(|t| t.text.as_str())
            .unwrap_or("");
        me.send(
            &ctx.numeric(&me.nick, Response::RPL_LIST)
                .param(&channel.name)
                .param(&users.to_string())
                .trailing(topic),
        );
    }
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_LISTEND)
            .trailing("End of /LIST"),
    );
    Flow::Continue
}
