//! Looking people up: WHO (with WHOX), WHOIS, WHOWAS, USERHOST.

use super::info::names_this_server;
use super::sliced::{self, Budget, Sliced};
use super::{is_channel_name, replies, split_list, Ctx, Flow};
use crate::casemap::CaseMapping;
use crate::proto::mask::wildcard_match;
use crate::proto::numeric::{Extra, Response};
use crate::proto::{LineBuilder, Message};
use crate::server::caps::Cap;
use crate::server::channel::{Channel, Membership};
use crate::server::world::{Client, ClientId, World};
use crate::server::Server;
use smallvec::SmallVec;

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

/// Sends one 352 (or 354) line about `target` to `me`; returns its length.
fn send_who_line(
    server: &Server,
    me: &Client,
    target: &Client,
    channel: Option<&Channel>,
    whox: Option<&Whox>,
) -> usize {
    let channel_name = channel.map(|c| c.name.as_str()).unwrap_or("*");
    let membership = channel.and_then(|c| c.members.get(&target.id).map(|m| m.status));
    let flags = who_flags(target, membership, me.caps.has(Cap::MultiPrefix));
    let Some(whox) = whox else {
        let line = LineBuilder::numeric(&server.name, Response::RPL_WHOREPLY, &me.nick)
            .param(channel_name)
            .param(target.user())
            .param(target.host())
            .param(&server.name)
            .param(&target.nick)
            .param(&flags)
            .trailing(&format!("0 {}", target.realname));
        me.send(&line);
        return line.len();
    };
    // WHOX fields always come back in this order, whatever order they
    // were asked in.
    let mut builder = LineBuilder::numeric(&server.name, Extra::RPL_WHOSPCRPL, &me.nick);
    let mut realname = None;
    for field in "tcuihsnfdlaor".chars().filter(|f| whox.fields.contains(*f)) {
        let value = match field {
            't' => whox.token.clone(),
            'c' => channel_name.to_owned(),
            'u' => target.user().to_string(),
            'i' => target.ip.to_string(),
            'h' => target.host().to_string(),
            's' => server.name.clone(),
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
    let line = match realname {
        Some(realname) => builder.trailing(realname),
        None => builder.finish(),
    };
    me.send(&line);
    line.len()
}

/// What a WHO asked for, whatever it lists.
struct WhoAsk {
    whox: Option<Whox>,
    opers_only: bool,
    /// The mask as sent, for 315.
    mask: String,
}

impl WhoAsk {
    fn end(&self, server: &Server, me: &Client) {
        me.send(
            &LineBuilder::numeric(&server.name, Response::RPL_ENDOFWHO, &me.nick)
                .param(&self.mask)
                .trailing("End of WHO list"),
        );
    }
}

/// `WHO #channel`: the members it had when asked, each as it is when its
/// slice comes, if still a member.
struct ChannelWho {
    folded: String,
    members: Vec<ClientId>,
    next: usize,
    ask: WhoAsk,
}

impl Sliced for ChannelWho {
    fn next_slice(
        &mut self,
        server: &Server,
        world: &World,
        me: &Client,
        budget: &mut Budget,
    ) -> bool {
        // A channel that went away, or went secret, ends the list.
        let channel = (world.channels.get(&self.folded))
            .filter(|channel| channel.is_visible_to(me.id, me.modes.oper));
        if let Some(channel) = channel {
            let member = channel.is_member(me.id);
            let ask = &self.ask;
            let done = walk(
                world,
                &self.members,
                &mut self.next,
                budget,
                |id, target| {
                    // Someone who left meanwhile is no longer listed.
                    let target = target.filter(|_| channel.members.contains_key(&id));
                    let Some(target) = target else { return 0 };
                    let shown = member || !target.modes.invisible || me.modes.oper;
                    if !shown || (ask.opers_only && !target.modes.oper) {
                        return 0;
                    }
                    send_who_line(server, me, target, Some(channel), ask.whox.as_ref())
                },
            );
            if !done {
                return false;
            }
        }
        self.ask.end(server, me);
        true
    }
}

/// `WHO mask`: every client there was when asked, each looked at as it is
/// when its slice comes.
struct MaskWho {
    ids: Vec<ClientId>,
    next: usize,
    mask: WhoMask,
    /// The registered user whose nick the mask is, shown even invisible.
    exact: Option<ClientId>,
    ask: WhoAsk,
}

/// The mask of a `WHO mask`, folded.
struct WhoMask {
    folded: String,
    /// The mask is only stars: every field matches, nothing is folded.
    matches_all: bool,
}

impl WhoMask {
    fn new(folded: String) -> WhoMask {
        WhoMask {
            matches_all: folded.bytes().all(|b| b == b'*'),
            folded,
        }
    }

    fn matches(&self, casemapping: CaseMapping, target: &Client) -> bool {
        if self.matches_all {
            return true;
        }
        let fields = [
            &*target.nick,
            target.user(),
            target.host(),
            &*target.realname,
            target.mask(),
        ];
        // Most fields are folded already: then nothing is copied.
        fields
            .iter()
            .any(|field| wildcard_match(&self.folded, &casemapping.fold_cow(field)))
    }
}

impl Sliced for MaskWho {
    fn next_slice(
        &mut self,
        server: &Server,
        world: &World,
        me: &Client,
        budget: &mut Budget,
    ) -> bool {
        let done = walk(world, &self.ids, &mut self.next, budget, |id, target| {
            let Some(target) = target.filter(|c| c.registered) else {
                return 0;
            };
            let exact = Some(id) == self.exact;
            if (self.ask.opers_only && !target.modes.oper)
                || !(exact || is_visible_to(me, target))
                || !(exact || self.mask.matches(world.casemapping, target))
            {
                return 0;
            }
            let channel = shared_channel(world, me, target);
            send_who_line(server, me, target, channel, self.ask.whox.as_ref())
        });
        if done {
            self.ask.end(server, me);
        }
        done
    }

    fn slow_entries(&self) -> bool {
        !self.mask.matches_all
    }
}

/// A channel `me` and `target` are both in, if any.
fn shared_channel<'w>(world: &'w World, me: &Client, target: &Client) -> Option<&'w Channel> {
    if me.channels.is_empty() {
        return None;
    }
    let shared = target.channels.iter().find(|c| me.channels.contains(*c))?;
    world.channels.get(shared)
}

/// Clients looked up ahead of their turn in a WHO.
const READ_AHEAD: usize = 32;

/// Answers the clients of `ids` from `*next` on, in turn, within `budget`:
/// `answer` gets each id with its client (`None` if gone) and returns the
/// bytes it sent. `true` once every client was answered, `false` when the
/// slice must end first.
fn walk<'w>(
    world: &'w World,
    ids: &[ClientId],
    next: &mut usize,
    budget: &mut Budget,
    mut answer: impl FnMut(ClientId, Option<&'w Client>) -> usize,
) -> bool {
    while *next < ids.len() {
        let end = ids.len().min(*next + READ_AHEAD);
        let targets = read_ahead(world, &ids[*next..end]);
        for (&id, target) in ids[*next..end].iter().zip(targets) {
            *next += 1;
            let sent = answer(id, target);
            if !budget.spend(sent) && *next < ids.len() {
                return false;
            }
        }
    }
    true
}

/// The clients of `ids` (`None` for those gone), each read once before
/// any is answered: on a network too big for the cache each client is a
/// few cache misses (its record, its nick, its realname, its mask), and
/// loads alone let the CPU wait for many clients' misses at once, where
/// answering one by one (each line queued under a lock) waits for them
/// one after another.
fn read_ahead<'w>(
    world: &'w World,
    ids: &[ClientId],
) -> SmallVec<[Option<&'w Client>; READ_AHEAD]> {
    let targets: SmallVec<[Option<&Client>; READ_AHEAD]> = ids
        .iter()
        .map(|id| world.clients.get(id).map(|c| &**c))
        .collect();
    let mut seen = 0u8;
    for target in targets.iter().flatten() {
        for text in [&*target.nick, &*target.realname, target.mask()] {
            seen ^= text.as_bytes().first().copied().unwrap_or(0);
        }
    }
    std::hint::black_box(seen);
    targets
}

/// WHO, in slices (see `sliced.rs`): a mask walks every client, and a
/// channel may have thousands of members.
pub fn who(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let id = ctx.id();
    let world = ctx.server.world_shared();
    let me = &world.clients[&id];
    let mask = msg.param(0).filter(|m| !m.is_empty()).unwrap_or("*");
    let ask = WhoAsk {
        whox: parse_whox(msg.param(1)),
        opers_only: msg
            .param(1)
            .is_some_and(|p| !p.starts_with('%') && p.contains('o')),
        mask: mask.to_owned(),
    };
    if is_channel_name(mask) {
        let folded = world.fold(mask);
        let members = match world.channels.get(&folded) {
            Some(channel) if channel.is_visible_to(id, me.modes.oper) => {
                channel.members.keys().copied().collect()
            }
            _ => Vec::new(),
        };
        let reply = ChannelWho {
            folded,
            members,
            next: 0,
            ask,
        };
        return sliced::reply(ctx, &world, reply);
    }
    let folded_mask = world.fold(if mask == "0" { "*" } else { mask });
    let reply = MaskWho {
        ids: world.clients.keys().copied().collect(),
        next: 0,
        mask: WhoMask::new(folded_mask),
        exact: world.registered_by_nick(mask).map(|c| c.id),
        ask,
    };
    sliced::reply(ctx, &world, reply)
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
    let max_targets = ctx.server.config().limits.targets_per_message;
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
            .trailing(&ctx.server.config().server.description),
    );
    if target.modes.oper {
        me.send(
            &reply(Response::RPL_WHOISOPERATOR)
                .param(nick)
                .trailing("is an IRC operator"),
        );
    }
    if target.modes.secure {
        me.send(
            &ctx.numeric(&me.nick, Extra::RPL_WHOISSECURE)
                .param(nick)
                .trailing("is using a secure connection"),
        );
    }
    if let Some(certfp) = target.outbox.wire().certfp() {
        // Like the actual host: the user's own business, and the operators'.
        if me.id == target.id || me.modes.oper {
            me.send(
                &reply(Response::RPL_WHOISCERTFP)
                    .param(nick)
                    .trailing(&format!("has client certificate fingerprint {certfp}")),
            );
        }
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

/// The most entries one WHOWAS returns, whatever count it asks for: a
/// nick can fill the whole list (up to 20,000 entries, two lines each),
/// which would pass the sendq at once.
const WHOWAS_MAX: usize = 100;

/// WHOWAS: the nick's newest entries, found by nick and shared out of one
/// shared hold (see `server/whowas.rs`); the lines are made after it.
pub fn whowas(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let nick_query = msg.params[0];
    // "If given, <count> SHOULD be a positive number. Otherwise, a full
    // search is done": a full search, like a larger count, gives the most
    // one reply holds.
    let count = msg
        .param(1)
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .map_or(WHOWAS_MAX, |c| c.min(WHOWAS_MAX));
    let (nick, entries) = {
        let world = ctx.server.world_shared();
        let entries = world.whowas.find(&world.fold(nick_query), count);
        (world.clients[&ctx.id()].nick.to_string(), entries)
    };
    if entries.is_empty() {
        ctx.send(
            &ctx.numeric(&nick, Response::ERR_WASNOSUCHNICK)
                .param(nick_query)
                .trailing("There was no such nickname"),
        );
    }
    for entry in entries {
        ctx.send(
            &ctx.numeric(&nick, Response::RPL_WHOWASUSER)
                .param(&entry.nick)
                .param(&entry.user)
                .param(&entry.host)
                .param("*")
                .trailing(&entry.realname),
        );
        ctx.send(
            &ctx.numeric(&nick, Response::RPL_WHOISSERVER)
                .param(&entry.nick)
                .param(&entry.server)
                .trailing(&httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.left_at),
                )),
        );
    }
    ctx.send(
        &ctx.numeric(&nick, Response::RPL_ENDOFWHOWAS)
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
