//! Listing channels and their members: NAMES and LIST.

use super::sliced::{self, Budget, Sliced};
use super::{pack_into_lines, split_list, Ctx, Flow};
use crate::proto::mask::wildcard_match;
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::caps::Cap;
use crate::server::channel::Channel;
use crate::server::world::{Client, ClientId, World};
use crate::server::Server;

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

/// The names of the channels there were when LIST came (casefolded), one
/// string for all of them: a copy of thousands of names is one
/// allocation, under the hold that takes it.
struct ChannelNames {
    text: String,
    ends: Vec<usize>,
}

impl ChannelNames {
    fn of(world: &World) -> ChannelNames {
        let mut names = ChannelNames {
            text: String::new(),
            ends: Vec::with_capacity(world.channels.len()),
        };
        for folded in world.channels.keys() {
            names.text.push_str(folded);
            names.ends.push(names.text.len());
        }
        names
    }

    fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        Some(&self.text[start..end])
    }
}

/// LIST, in slices (see `sliced.rs`): each channel as it is when its
/// slice comes, if it still exists.
struct ListReply {
    filters: Vec<Filter>,
    names: ChannelNames,
    next: usize,
}

impl ListReply {
    /// Whether `channel`, named `folded`, passes the conditions.
    fn wanted(&self, folded: &str, users: usize) -> bool {
        // Positive masks are alternatives; everything else must hold.
        let mut masks = self
            .filters
            .iter()
            .filter(|f| matches!(f, Filter::Mask { negate: false, .. }))
            .peekable();
        let name_ok = masks.peek().is_none()
            || masks
                .any(|f| matches!(f, Filter::Mask { folded: m, .. } if wildcard_match(m, folded)));
        let rest_ok = self.filters.iter().all(|f| match f {
            Filter::Mask {
                folded: m,
                negate: true,
            } => !wildcard_match(m, folded),
            Filter::Mask { .. } => true,
            Filter::MoreUsersThan(n) => users > *n,
            Filter::FewerUsersThan(n) => users < *n,
        });
        name_ok && rest_ok
    }
}

impl Sliced for ListReply {
    fn next_slice(
        &mut self,
        server: &Server,
        world: &World,
        me: &Client,
        budget: &mut Budget,
    ) -> bool {
        while let Some(folded) = self.names.get(self.next) {
            self.next += 1;
            let mut sent = 0;
            let channel = (world.channels.get(folded))
                .filter(|channel| channel.is_visible_to(me.id, me.modes.oper));
            if let Some(channel) = channel {
                let users = channel.members.len();
                if self.wanted(folded, users) {
                    let topic = channel.topic.as_ref().map_or("", |t| t.text.as_str());
                    let line = LineBuilder::numeric(&server.name, Response::RPL_LIST, &me.nick)
                        .param(&channel.name)
                        .param(&users.to_string())
                        .trailing(topic);
                    me.send(&line);
                    sent = line.len();
                }
            }
            if !budget.spend(sent) && self.next < self.names.ends.len() {
                return false;
            }
        }
        me.send(
            &LineBuilder::numeric(&server.name, Response::RPL_LISTEND, &me.nick)
                .trailing("End of /LIST"),
        );
        true
    }

    /// Masks are matched against every channel's name.
    fn slow_entries(&self) -> bool {
        (self.filters.iter()).any(|filter| matches!(filter, Filter::Mask { .. }))
    }
}

pub fn list(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let world = ctx.server.world_shared();
    let me = &world.clients[&ctx.id()];
    // `LIST [channels-or-masks] [conditions]`; clients also put
    // conditions in the first parameter (`/list >5`), so both are read
    // the same way.
    let spec = [msg.param(0), msg.param(1)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(",");
    me.send(
        &ctx.numeric(&me.nick, Response::RPL_LISTSTART)
            .param("Channel")
            .trailing("Users  Name"),
    );
    let reply = ListReply {
        filters: parse_filters(&world, &spec),
        names: ChannelNames::of(&world),
        next: 0,
    };
    sliced::reply(ctx, &world, reply)
}
