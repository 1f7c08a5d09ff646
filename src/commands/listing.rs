//! Listing channels and their members: NAMES and LIST.

use super::sliced::{self, Budget, Sliced};
use super::{pack_into_lines, split_list, Ctx, Flow};
use crate::proto::mask::wildcard_match;
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::caps::Cap;
use crate::server::channel::{Channel, Membership};
use crate::server::maps::HashSet;
use crate::server::world::{Client, ClientId, World};
use crate::server::Server;
use bytes::Bytes;

/// Bytes of nicks per 353 line, leaving room for the prefix, the server
/// name, the numeric and the channel name within 512.
const NAMES_LINE_BUDGET: usize = 350;

/// The symbol a 353 line gives `channel`: secret, private or public.
fn names_symbol(channel: &Channel) -> &'static str {
    if channel.modes.secret {
        "@"
    } else if channel.modes.private {
        "*"
    } else {
        "="
    }
}

/// How `me` sees `member` in a NAMES of `channel` (where it has `status`):
/// its prefix and its nick (or whole mask, for `userhost-in-names`), or
/// `None` when outsiders may not see it.
fn names_entry<'c>(
    me: &Client,
    me_is_member: bool,
    member: &'c Client,
    status: Membership,
) -> Option<(&'static str, &'c str)> {
    if !me_is_member && member.modes.invisible && !me.modes.oper {
        return None;
    }
    let name = if me.caps.has(Cap::UserhostInNames) {
        member.mask()
    } else {
        &*member.nick
    };
    Some((status.prefix(me.caps.has(Cap::MultiPrefix)), name))
}

fn end_of_names(server: &Server, me: &Client, name: &str) -> Bytes {
    LineBuilder::numeric(&server.name, Response::RPL_ENDOFNAMES, &me.nick)
        .param(name)
        .trailing("End of /NAMES list")
}

/// 353 lines (split to fit) and 366 for one channel, as `viewer` may see
/// them: outsiders see no secret channel and no invisible members. Sent
/// on JOIN, in the JOIN's hold of the lock; the NAMES command answers in
/// slices instead ([`NamesReply`]).
pub fn send_names(ctx: &Ctx<'_>, world: &World, channel: &Channel, viewer: ClientId) {
    let me = &world.clients[&viewer];
    let is_member = channel.is_member(viewer);
    if channel.is_visible_to(viewer, me.modes.oper) {
        let entries = channel.members.iter().filter_map(|(id, membership)| {
            names_entry(me, is_member, world.clients.get(id)?, membership.status)
        });
        for line in pack_into_lines(entries, ' ', NAMES_LINE_BUDGET) {
            me.send(
                &ctx.numeric(&me.nick, Response::RPL_NAMREPLY)
                    .param(names_symbol(channel))
                    .param(&channel.name)
                    .trailing(&line),
            );
        }
    }
    me.send(&end_of_names(ctx.server, me, &channel.name));
}

pub fn names(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let world = ctx.server.world_shared();
    let me = &world.clients[&ctx.id()];
    let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
        // Listing every channel would be a flood on a big network; Modern
        // allows answering only the end.
        me.send(&end_of_names(ctx.server, me, "*"));
        return Flow::Continue;
    };
    // A channel named twice is answered once: `NAMES #big,#big,…` would
    // otherwise list a big channel as often as a line holds its name.
    let mut seen = HashSet::default();
    let targets = split_list(targets)
        .filter(|name| seen.insert(world.fold(name)))
        .map(str::to_owned)
        .collect();
    let reply = NamesReply {
        targets,
        next_target: 0,
        current: None,
    };
    sliced::reply(ctx, &world, reply)
}

/// NAMES, in slices (see `sliced.rs`): the channels in the order asked,
/// each with its members as they are when their slice comes.
struct NamesReply {
    /// The names as given, each channel once.
    targets: Vec<String>,
    next_target: usize,
    /// The channel being listed.
    current: Option<NamesOf>,
}

impl Sliced for NamesReply {
    fn next_slice(
        &mut self,
        server: &Server,
        world: &World,
        me: &Client,
        budget: &mut Budget,
    ) -> bool {
        loop {
            if let Some(names) = &mut self.current {
                if !names.next_part(server, world, me, budget) {
                    return false;
                }
                self.current = None;
            }
            let Some(name) = self.targets.get(self.next_target) else {
                return true;
            };
            if budget.is_spent() {
                return false;
            }
            self.next_target += 1;
            match world.channel(name) {
                Some(channel) if channel.is_visible_to(me.id, me.modes.oper) => {
                    self.current = Some(NamesOf {
                        folded: world.fold(name),
                        name: channel.name.clone(),
                        members: channel.members.keys().copied().collect(),
                        next: 0,
                        line: String::new(),
                    });
                }
                // Only the end, with the name as the channel spells it.
                channel => {
                    let line = end_of_names(server, me, channel.map_or(name, |c| &c.name));
                    me.send(&line);
                    budget.spend(line.len());
                }
            }
        }
    }
}

/// One channel's NAMES, part way through.
struct NamesOf {
    folded: String,
    /// As the channel spells it.
    name: String,
    /// Its members when its turn came.
    members: Vec<ClientId>,
    next: usize,
    /// Entries of the next 353, not sent yet.
    line: String,
}

impl NamesOf {
    /// Sends the channel's next lines within `budget`; `true` once its
    /// 366 is sent. A member who left meanwhile is left out; a channel
    /// that went away, or went secret, ends its list.
    fn next_part(
        &mut self,
        server: &Server,
        world: &World,
        me: &Client,
        budget: &mut Budget,
    ) -> bool {
        let channel = (world.channels.get(&self.folded))
            .filter(|channel| channel.is_visible_to(me.id, me.modes.oper));
        if let Some(channel) = channel {
            let is_member = channel.is_member(me.id);
            while let Some(&id) = self.members.get(self.next) {
                self.next += 1;
                let mut sent = 0;
                let entry = (world.clients.get(&id))
                    .zip(channel.members.get(&id))
                    .and_then(|(member, m)| names_entry(me, is_member, member, m.status));
                if let Some((prefix, name)) = entry {
                    let len = prefix.len() + name.len();
                    if !self.line.is_empty() && self.line.len() + 1 + len > NAMES_LINE_BUDGET {
                        sent = self.send_line(server, me, channel);
                    }
                    if !self.line.is_empty() {
                        self.line.push(' ');
                    }
                    self.line.push_str(prefix);
                    self.line.push_str(name);
                }
                if !budget.spend(sent) && self.next < self.members.len() {
                    return false;
                }
            }
            self.send_line(server, me, channel);
        }
        me.send(&end_of_names(server, me, &self.name));
        true
    }

    /// Sends the entries gathered as one 353; returns its length.
    fn send_line(&mut self, server: &Server, me: &Client, channel: &Channel) -> usize {
        if self.line.is_empty() {
            return 0;
        }
        let line = LineBuilder::numeric(&server.name, Response::RPL_NAMREPLY, &me.nick)
            .param(names_symbol(channel))
            .param(&channel.name)
            .trailing(&std::mem::take(&mut self.line));
        me.send(&line);
        line.len()
    }
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
