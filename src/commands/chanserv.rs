//! ChanServ: a channel registered to an account keeps its founder, an
//! access list applied when people join, and its topic, modes and lists
//! across restarts. `/msg ChanServ REGISTER`, `ACCESS`, `OP`, `DEOP`,
//! `INFO`, `DROP`, `HELP`; also reachable as `/CHANSERV` and `/CS`.

use std::sync::Arc;

use super::services::Service;
use super::{account, Ctx, Flow};
use crate::accounts::http_date;
use crate::proto::Message;
use crate::server::channel::{Channel, Membership};
use crate::server::world::{line_from, Client, ClientId, World};
use crate::server::{unix_now, Server};
use crate::store::{AccessLevel, RegisteredChannel};

/// The service's nick; no client may take it.
pub const NICK: &str = "ChanServ";

const SERVICE: Service = Service {
    nick: NICK,
    source: "ChanServ!ChanServ@services.",
    help: HELP,
};

const HELP: &[&str] = &[
    "ChanServ keeps registered channels: their founder, who gets ops or voice, and their topic, modes and lists.",
    "  REGISTER <#channel>                      register a channel you are an operator of",
    "  ACCESS <#channel> LIST                   show who gets what",
    "  ACCESS <#channel> ADD <account> op|voice give an account ops or voice on join",
    "  ACCESS <#channel> DEL <account>          take it back",
    "  OP <#channel> [nick]                     op yourself or someone",
    "  DEOP <#channel> [nick]                   deop yourself or someone",
    "  INFO <#channel>                          show a registration",
    "  DROP <#channel>                          unregister a channel you founded",
    "  HELP                                     this text",
];

pub fn command(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    handle(ctx, &Service::text_of(msg))
}

/// One line of text sent to ChanServ.
pub fn handle(ctx: &mut Ctx<'_>, text: &str) -> Flow {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return reply(ctx, "Tell me what to do: /msg ChanServ HELP");
    };
    let verb = verb.to_ascii_uppercase();
    let sub = |i: usize| args.get(i).map(|s| s.to_ascii_uppercase());
    match (verb.as_str(), args) {
        ("HELP", _) => SERVICE.send_help(ctx),
        ("REGISTER", [channel]) => register(ctx, channel),
        ("ACCESS", [channel, _]) if sub(1).as_deref() == Some("LIST") => access_list(ctx, channel),
        ("ACCESS", [channel, _, account, level]) if sub(1).as_deref() == Some("ADD") => {
            let level = match level.to_ascii_lowercase().as_str() {
                "op" => AccessLevel::Op,
                "voice" => AccessLevel::Voice,
                _ => return reply(ctx, "The level is op or voice"),
            };
            set_access(ctx, channel, account, Some(level))
        }
        ("ACCESS", [channel, _, account]) if sub(1).as_deref() == Some("DEL") => {
            set_access(ctx, channel, account, None)
        }
        ("OP", [channel]) => set_op(ctx, channel, None, true),
        ("OP", [channel, nick]) => set_op(ctx, channel, Some(nick), true),
        ("DEOP", [channel]) => set_op(ctx, channel, None, false),
        ("DEOP", [channel, nick]) => set_op(ctx, channel, Some(nick), false),
        ("INFO", [channel]) => info(ctx, channel),
        ("DROP", [channel]) => drop_channel(ctx, channel),
        (verb, _) => SERVICE.misused(ctx, verb),
    }
}

fn register(ctx: &mut Ctx<'_>, name: &str) -> Flow {
    let (Some(account), Some(login)) = (
        account::logged_in(ctx),
        account::login_of(ctx.server, ctx.id()),
    ) else {
        return reply(ctx, "Log in first: /msg NickServ IDENTIFY <password>");
    };
    let (server, id) = (ctx.server.clone(), ctx.id());
    let folded = server.fold(name);
    let (name, state) = {
        let world = server.world();
        if world.registered_channels.contains_key(&folded) {
            drop(world);
            return reply(ctx, &format!("{name} is already registered"));
        }
        let founded = world
            .registered_channels
            .values()
            .filter(|c| c.founder == login.folded)
            .count();
        if founded >= MAX_CHANNELS_PER_FOUNDER {
            drop(world);
            return reply(
                ctx,
                &format!("You have registered {MAX_CHANNELS_PER_FOUNDER} channels already, the most one account may"),
            );
        }
        match world.channels.get(&folded) {
            Some(channel) if channel.is_op(id) => (channel.name.clone(), channel.saved_state()),
            _ => {
                drop(world);
                return reply(
                    ctx,
                    &format!("You must be a channel operator in {name} to register it"),
                );
            }
        }
    };
    Flow::Wait(Box::pin(async move {
        let founder = server.fold(&account);
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        let stored = server
            .accounts
            .store()
            .register_channel(&name, &folded, &founder, &state, now)
            .await;
        match stored {
            Ok(true) => {
                tracing::info!(channel = %name, account = %account, "channel registered");
                let mut world = server.world();
                world.registry_accounts.insert(founder.clone(), login.uid);
                world.registered_channels.insert(
                    folded.clone(),
                    RegisteredChannel {
                        name: name.clone(),
                        name_folded: folded.clone(),
                        founder,
                        registered_at: now,
                        state,
                        access: Vec::new(),
                    },
                );
                // Changes made while the store wrote are saved too.
                remember(&server, &mut world, &folded);
                drop(world);
                notice(
                    &server,
                    id,
                    &format!("{name} is now registered to {account}"),
                );
            }
            Ok(false) => notice(&server, id, &format!("{name} is already registered")),
            Err(_) => notice(&server, id, UNAVAILABLE),
        }
        None
    }))
}

/// Channels one account may register: each is kept in memory and loaded
/// at every start.
const MAX_CHANNELS_PER_FOUNDER: usize = 20;

const UNAVAILABLE: &str = "Channel registration is unavailable right now; please try again later";

/// The registration of `name` if the client may manage it (its founder),
/// or `Err` with the reason.
fn founded_by_me(ctx: &Ctx<'_>, name: &str) -> Result<RegisteredChannel, String> {
    if account::logged_in(ctx).is_none() {
        return Err("Log in first: /msg NickServ IDENTIFY <password>".into());
    }
    let world = ctx.world();
    let me = genuine_account(ctx.server, &world, ctx.id());
    match world.registered_channels.get(&ctx.server.fold(name)) {
        None => Err(format!("{name} is not registered")),
        Some(channel) if me.as_deref() == Some(channel.founder.as_str()) => Ok(channel.clone()),
        Some(_) => Err(format!("Only the founder of {name} may do that")),
    }
}

/// The folded account client `id` is logged in to, if channel rights may
/// be granted by it: a login made to an account of the same name that was
/// since dropped (and perhaps registered again by someone else) grants
/// nothing.
fn genuine_account(server: &Server, world: &World, id: ClientId) -> Option<String> {
    let login = world.clients.get(&id)?.login.as_deref()?;
    let account = server.fold(&login.name);
    (world.registry_accounts.get(&account) == Some(&login.uid)).then_some(account)
}

fn set_access(ctx: &mut Ctx<'_>, name: &str, target: &str, level: Option<AccessLevel>) -> Flow {
    let channel = match founded_by_me(ctx, name) {
        Ok(channel) => channel,
        Err(reason) => return reply(ctx, &reason),
    };
    let (server, id) = (ctx.server.clone(), ctx.id());
    let target = target.to_owned();
    Flow::Wait(Box::pin(async move {
        let store = server.accounts.store();
        let account = server.fold(&target);
        let created_at = match store.account(&account).await {
            Ok(Some(found)) => found.uid,
            Ok(None) => {
                notice(
                    &server,
                    id,
                    &format!("{target} is not a registered account"),
                );
                return None;
            }
            Err(_) => {
                notice(&server, id, UNAVAILABLE);
                return None;
            }
        };
        match store
            .set_access(&channel.name_folded, &account, level)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // Dropped behind the server's back (`parlor account delete`
                // of its founder): forget it here too.
                server
                    .world()
                    .registered_channels
                    .remove(&channel.name_folded);
                notice(&server, id, &format!("{} is not registered", channel.name));
                return None;
            }
            Err(_) => {
                notice(&server, id, UNAVAILABLE);
                return None;
            }
        }
        let mut world = server.world();
        world.registry_accounts.insert(account.clone(), created_at);
        if let Some(registered) = world.registered_channels.get_mut(&channel.name_folded) {
            registered.access.retain(|(who, _)| *who != account);
            if let Some(level) = level {
                registered.access.push((account.clone(), level));
            }
        }
        drop(world);
        let done = match level {
            Some(level) => format!(
                "{target} now gets {} on {}",
                level_name(level),
                channel.name
            ),
            None => format!("{target} has no access to {} any more", channel.name),
        };
        notice(&server, id, &done);
        None
    }))
}

/// The registration of `name`, or the reply that it has none.
fn registration(ctx: &Ctx<'_>, name: &str) -> Result<RegisteredChannel, Flow> {
    let registered = ctx
        .world()
        .registered_channels
        .get(&ctx.server.fold(name))
        .cloned();
    registered.ok_or_else(|| reply(ctx, &format!("{name} is not registered")))
}

fn access_list(ctx: &mut Ctx<'_>, name: &str) -> Flow {
    let channel = match registration(ctx, name) {
        Ok(channel) => channel,
        Err(replied) => return replied,
    };
    notice(
        ctx.server,
        ctx.id(),
        &format!("Access to {}:", channel.name),
    );
    notice(
        ctx.server,
        ctx.id(),
        &format!("  {} (founder)", channel.founder),
    );
    for (account, level) in &channel.access {
        notice(
            ctx.server,
            ctx.id(),
            &format!("  {account} ({})", level_name(*level)),
        );
    }
    reply(ctx, "End of access list")
}

fn level_name(level: AccessLevel) -> &'static str {
    match level {
        AccessLevel::Op => "op",
        AccessLevel::Voice => "voice",
    }
}

fn set_op(ctx: &mut Ctx<'_>, name: &str, nick: Option<&str>, op: bool) -> Flow {
    let id = ctx.id();
    let folded = ctx.server.fold(name);
    if status_on_join(ctx.server, &ctx.world(), &folded, id) != Status::Op {
        return reply(ctx, &format!("You need op access to {name}"));
    }
    let mut world = ctx.world();
    let target = match nick {
        Some(nick) => world.client_by_nick(nick).map(|c| c.id),
        None => Some(id),
    };
    let World {
        channels,
        clients,
        history,
        ..
    } = &mut *world;
    let (Some(channel), Some(target)) = (channels.get_mut(&folded), target) else {
        drop(world);
        return reply(ctx, &format!("Nobody by that name is in {name}"));
    };
    let Some(membership) = channel.members.get_mut(&target).map(|m| &mut m.status) else {
        drop(world);
        return reply(ctx, &format!("Nobody by that name is in {name}"));
    };
    if membership.op != op {
        membership.op = op;
        let line = line_from(SERVICE.source, None, "MODE")
            .param(&channel.name)
            .param(if op { "+o" } else { "-o" })
            .last(&clients[&target].nick);
        channel.broadcast(clients, &line, None);
        history.record_event([&folded], "MODE", &line);
        world.channel_changed(&folded);
    }
    Flow::Continue
}

fn info(ctx: &mut Ctx<'_>, name: &str) -> Flow {
    let channel = match registration(ctx, name) {
        Ok(channel) => channel,
        Err(replied) => return replied,
    };
    notice(ctx.server, ctx.id(), &format!("Channel: {}", channel.name));
    notice(
        ctx.server,
        ctx.id(),
        &format!("Founder: {}", channel.founder),
    );
    notice(
        ctx.server,
        ctx.id(),
        &format!("Registered: {}", http_date(channel.registered_at)),
    );
    reply(ctx, &format!("Access entries: {}", channel.access.len()))
}

fn drop_channel(ctx: &mut Ctx<'_>, name: &str) -> Flow {
    let channel = match founded_by_me(ctx, name) {
        Ok(channel) => channel,
        Err(reason) => return reply(ctx, &reason),
    };
    let (server, id) = (ctx.server.clone(), ctx.id());
    Flow::Wait(Box::pin(async move {
        match server
            .accounts
            .store()
            .drop_channel(&channel.name_folded)
            .await
        {
            Ok(_) => {
                server
                    .world()
                    .registered_channels
                    .remove(&channel.name_folded);
                tracing::info!(channel = %channel.name, "channel dropped");
                notice(
                    &server,
                    id,
                    &format!("{} is no longer registered", channel.name),
                );
            }
            Err(_) => notice(&server, id, UNAVAILABLE),
        }
        None
    }))
}

/// What a client gets when it joins a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The channel is not registered: its creator gets ops, as usual.
    Unregistered,
    Op,
    Voice,
    /// Registered, and this client has no access.
    Plain,
}

/// The status client `id` has on the channel `folded` by its registration.
pub fn status_on_join(server: &Server, world: &World, folded: &str, id: ClientId) -> Status {
    let Some(channel) = world.registered_channels.get(folded) else {
        return Status::Unregistered;
    };
    let Some(account) = genuine_account(server, world, id) else {
        return Status::Plain;
    };
    if channel.founder == account {
        return Status::Op;
    }
    match channel.access.iter().find(|(who, _)| *who == account) {
        Some((_, AccessLevel::Op)) => Status::Op,
        Some((_, AccessLevel::Voice)) => Status::Voice,
        None => Status::Plain,
    }
}

/// The MODE ChanServ sends when `member` joins with ops or voice.
pub fn join_mode(channel: &Channel, member: &Client, status: Status) -> Option<bytes::Bytes> {
    let granted = Membership {
        op: status == Status::Op,
        voice: status == Status::Voice,
    };
    granted.granted_line(SERVICE.source, &channel.name, &member.nick)
}

/// Saves the state of channel `folded` after a change of its topic, modes
/// or lists: its snapshot for a restart soon, and at once in the
/// background, its registration's state if it is registered.
pub fn remember(server: &Arc<Server>, world: &mut World, folded: &str) {
    world.channel_changed(folded);
    let Some(channel) = world.channels.get(folded) else {
        return;
    };
    let Some(registered) = world.registered_channels.get_mut(folded) else {
        return;
    };
    let state = channel.saved_state();
    registered.state = state.clone();
    server.channel_saver.save(folded.to_owned(), state);
}

fn reply(ctx: &Ctx<'_>, text: &str) -> Flow {
    SERVICE.reply(ctx, text)
}

fn notice(server: &Server, id: ClientId, text: &str) {
    SERVICE.notice(server, id, text);
}
