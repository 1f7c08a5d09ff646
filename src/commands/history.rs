//! CHATHISTORY (IRCv3 draft/chathistory): stored lines of a channel,
//! before, after, around or between references, and the targets with
//! recent messages. Replies come in a `chathistory` batch for clients with
//! batch; events (JOIN, PART, …) only for clients with
//! draft/event-playback.

use std::sync::Arc;

use bytes::Bytes;

use super::chanserv::{self, Status};
use super::{is_channel_name, Ctx, Flow};
use crate::proto::tags::{self, MessageId};
use crate::proto::{LineBuilder, Message};
use crate::server::batch::Batch;
use crate::server::caps::{Cap, Caps};
use crate::server::flush::FlushScope;
use crate::server::history::{self, Written};
use crate::server::outbox::Outbox;
use crate::server::Server;
use crate::store::{Kinds, StoredMessage};

/// A bound of a query: a message id, or a time turned into one (ids are
/// the time in milliseconds shifted left by 16, see `tags::MessageId`).
#[derive(Debug, Clone, Copy)]
enum Reference {
    Msgid(u64),
    Time(u64),
    /// `*`: no bound (LATEST only).
    Unbounded,
}

impl Reference {
    fn parse(text: &str) -> Option<Reference> {
        if text == "*" {
            return Some(Reference::Unbounded);
        }
        match text.split_once('=')? {
            ("msgid", id) => tags::MessageId::decode(id).map(|id| Reference::Msgid(id.0)),
            ("timestamp", time) => tags::parse_time(time).map(Reference::Time),
            _ => None,
        }
    }

    /// Ids below this come before the reference.
    fn lower_id(self) -> u64 {
        match self {
            Reference::Msgid(id) => id,
            Reference::Time(ms) => ms << 16,
            Reference::Unbounded => 0,
        }
    }

    /// Ids above this come after the reference.
    fn upper_id(self) -> u64 {
        match self {
            Reference::Msgid(id) => id,
            Reference::Time(ms) => ((ms + 1) << 16) - 1,
            Reference::Unbounded => 0,
        }
    }
}

/// What one request reads: ids strictly between `after` and `before`,
/// the `limit` nearest `before` if `newest`, else nearest `after`.
struct Query {
    after: u64,
    before: u64,
    limit: usize,
    newest: bool,
}

/// What a client may read of a target.
struct Readable {
    /// The history target: a casefolded channel or a conversation key.
    key: String,
    /// The name to show for it.
    name: String,
    /// Ids at or below this are not its to read (an earlier channel of
    /// the same name).
    floor: u64,
    written: Written,
}

pub fn chathistory(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let subcommand = msg.param(0).unwrap_or("").to_ascii_uppercase();
    let max = ctx.server.config().history.chathistory_max;
    let params = &msg.params[1..];
    let fail = |code: &str, context: &[&str], text: &str| {
        let line = LineBuilder::new(Some(&ctx.server.name), "FAIL")
            .param("CHATHISTORY")
            .param(code)
            .params(context.iter().copied())
            .trailing(text);
        ctx.session.outbox.send(&line);
        Flow::Continue
    };
    // As Ergo does: 0 and anything past the maximum mean the maximum.
    let limit = |text: Option<&&str>| {
        text.and_then(|t| t.parse::<usize>().ok())
            .map(|n| if n == 0 { max } else { n.min(max) })
    };
    let reference = |text: Option<&&str>| text.and_then(|t| Reference::parse(t));
    let expected_params = if subcommand == "BETWEEN" { 4 } else { 3 };
    if params.len() > expected_params {
        return fail("INVALID_PARAMS", &[&subcommand], "Too many parameters");
    }
    if subcommand == "TARGETS" {
        let (Some(first), Some(second), Some(limit)) = (
            reference(params.first()),
            reference(params.get(1)),
            limit(params.get(2)),
        ) else {
            return fail("INVALID_PARAMS", &["TARGETS"], "Invalid parameters");
        };
        // Both bounds are exclusive, as BETWEEN's are.
        let (low, high) = ordered(first, second);
        return targets(ctx, low.upper_id(), high.lower_id(), limit);
    }
    if !matches!(
        subcommand.as_str(),
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "BETWEEN"
    ) {
        return fail("INVALID_PARAMS", &[&subcommand], "Unknown command");
    }
    let Some(target) = params.first().copied() else {
        return fail("INVALID_PARAMS", &[&subcommand], "Invalid parameters");
    };
    let first = reference(params.get(1));
    let query = match (subcommand.as_str(), first) {
        ("LATEST", Some(reference)) => limit(params.get(2)).map(|limit| Query {
            after: reference.upper_id(),
            before: u64::MAX,
            limit,
            newest: true,
        }),
        (_, Some(Reference::Unbounded)) | (_, None) => None,
        ("BEFORE", Some(reference)) => limit(params.get(2)).map(|limit| Query {
            after: 0,
            before: reference.lower_id(),
            limit,
            newest: true,
        }),
        ("AFTER", Some(reference)) => limit(params.get(2)).map(|limit| Query {
            after: reference.upper_id(),
            before: u64::MAX,
            limit,
            newest: false,
        }),
        ("AROUND", Some(reference)) => limit(params.get(2)).map(|limit| Query {
            // Resolved in two halves by `read`.
            after: reference.lower_id(),
            before: reference.upper_id(),
            limit,
            newest: false,
        }),
        (_, Some(first)) => match (reference(params.get(2)), limit(params.get(3))) {
            (Some(second), Some(limit)) if !matches!(second, Reference::Unbounded) => {
                let forwards = first.lower_id() <= second.lower_id();
                let (low, high) = ordered(first, second);
                Some(Query {
                    after: low.upper_id(),
                    before: high.lower_id(),
                    limit,
                    newest: !forwards,
                })
            }
            _ => None,
        },
    };
    let Some(query) = query else {
        let unparsable = params[1..]
            .iter()
            .take(params.len().saturating_sub(2))
            .find(|text| Reference::parse(text).is_none());
        return match unparsable {
            Some(text) => fail(
                "INVALID_PARAMS",
                &[&subcommand, text],
                "Invalid timestamp or msgid",
            ),
            None => fail("INVALID_PARAMS", &[&subcommand], "Invalid parameters"),
        };
    };
    let Some(Readable {
        key: folded,
        name,
        floor,
        written,
    }) = readable_target(ctx, target)
    else {
        return fail(
            "INVALID_TARGET",
            &[&subcommand, target],
            "Messages could not be retrieved",
        );
    };
    // A msgid that is not in this history names no place in it: the
    // answer is empty, as Ergo's is.
    let msgids: Vec<u64> = params[1..]
        .iter()
        .filter_map(|text| match Reference::parse(text) {
            Some(Reference::Msgid(id)) => Some(id),
            _ => None,
        })
        .collect();
    let around = subcommand == "AROUND";
    let (outbox, caps) = own(ctx);
    let server = ctx.server.clone();
    let target = target.to_owned();
    Flow::Wait(Box::pin(async move {
        written.wait().await;
        let rows = async {
            let store = server.accounts.store();
            for &id in &msgids {
                if !store.history_has(&folded, id).await? {
                    return Ok(Vec::new());
                }
            }
            read(&server, &folded, &query, floor, around, caps).await
        };
        match rows.await {
            Ok(rows) => send_batch(&server, &outbox, caps, &name, rows),
            Err(error) => {
                tracing::error!(%error, "cannot read history");
                let line = LineBuilder::new(Some(&server.name), "FAIL")
                    .param("CHATHISTORY")
                    .param("MESSAGE_ERROR")
                    .param(&subcommand)
                    .param(&target)
                    .trailing("Messages could not be retrieved");
                outbox.send(&line);
            }
        }
        None
    }))
}

fn ordered(first: Reference, second: Reference) -> (Reference, Reference) {
    if first.lower_id() <= second.lower_id() {
        (first, second)
    } else {
        (second, first)
    }
}

fn own(ctx: &Ctx<'_>) -> (Outbox, Caps) {
    let caps = ctx
        .world()
        .clients
        .get(&ctx.id())
        .map(|me| me.caps)
        .unwrap_or_default();
    (ctx.session.outbox.clone(), caps)
}

/// The history target of `target` and the name to show for it, if this
/// client may read it, and the point its history must be written up to.
///
/// A channel's history may be read by its members, and by others if the
/// channel is neither secret nor invite-only or if they have access to it
/// as a registered channel. A conversation with a nick may be read by a
/// logged-in participant.
fn readable_target(ctx: &Ctx<'_>, target: &str) -> Option<Readable> {
    let world = ctx.world();
    let me = world.clients.get(&ctx.id())?;
    if !is_channel_name(target) {
        me.login.as_ref()?;
        let (partner, name) = match world.registered_by_nick(target) {
            Some(partner) => (world.history_identity(partner), partner.nick.to_string()),
            // Offline: the conversation with the account of that name.
            None => (world.fold(target), target.to_owned()),
        };
        return Some(Readable {
            key: history::direct_key(&world.history_identity(me), &partner),
            name,
            floor: 0,
            written: world.history.written(),
        });
    }
    let folded = world.fold(target);
    let member = me.channels.contains(&folded);
    let channel = world.channels.get(&folded);
    // Open to everyone: no secret, no invitation, no key, no ban on them.
    let public = channel.is_some_and(|channel| {
        !channel.modes.secret
            && !channel.modes.invite_only
            && channel.modes.key.is_none()
            && !channel.is_banned(&world.folded_masks(me))
    });
    let has_access = matches!(
        chanserv::status_on_join(ctx.server, &world, &folded, ctx.id()),
        Status::Op | Status::Voice
    );
    if !(member || public || has_access) {
        return None;
    }
    let registered = world.registered_channels.get(&folded);
    // An unregistered channel shows only its own life's history; one with
    // no life now shows none.
    let floor = match (channel, registered) {
        (_, Some(_)) => 0,
        (Some(channel), None) => channel.history_after,
        (None, None) => return None,
    };
    let name = match (channel, registered) {
        (Some(channel), _) => channel.name.clone(),
        (None, Some(registered)) => registered.name.clone(),
        (None, None) => target.to_owned(),
    };
    Some(Readable {
        key: folded,
        name,
        floor,
        written: world.history.written(),
    })
}

async fn read(
    server: &Server,
    folded: &str,
    query: &Query,
    floor: u64,
    around: bool,
    caps: Caps,
) -> Result<Vec<StoredMessage>, crate::store::StoreError> {
    let store = server.accounts.store();
    let kinds = if caps.has(Cap::EventPlayback) {
        Kinds::Everything
    } else {
        Kinds::Messages
    };
    let mut rows = if around {
        // Half before the reference, the rest from it on.
        let before = query.limit / 2;
        let mut rows = store
            .history_range(folded, floor, query.after, before, true, kinds)
            .await?;
        let from = query.after.saturating_sub(1).max(floor);
        rows.extend(
            store
                .history_range(folded, from, u64::MAX, query.limit - before, false, kinds)
                .await?,
        );
        rows
    } else {
        store
            .history_range(
                folded,
                query.after.max(floor),
                query.before,
                query.limit,
                query.newest,
                kinds,
            )
            .await?
    };
    if !caps.has(Cap::MessageTags) {
        // A TAGMSG is nothing without its tags (event-playback brings
        // them in).
        rows.retain(|row| row.command != "TAGMSG");
    }
    Ok(rows)
}

fn send_batch(
    server: &Server,
    outbox: &Outbox,
    caps: Caps,
    target: &str,
    rows: Vec<StoredMessage>,
) {
    // One write for the whole batch, not one per line.
    let _scope = FlushScope::enter();
    let batch = caps
        .has(Cap::Batch)
        .then(|| Batch::start(&server.name, "chathistory", &[target]));
    if let Some(batch) = &batch {
        outbox.send_as_is(batch.start_line());
    }
    let mask = caps.tag_mask();
    for row in rows {
        let line = tags::view(&Bytes::from(row.line + "\r\n"), mask);
        match &batch {
            Some(batch) => outbox.send_as_is(batch.wrap(&line)),
            None => outbox.send_as_is(line),
        };
    }
    if let Some(batch) = batch {
        outbox.send_as_is(batch.end_line());
    }
}

/// `CHATHISTORY TARGETS`: the client's channels and conversations whose
/// latest message is between the two bounds (ids strictly between `after`
/// and `before`), ordered by it, oldest first (as irctest expects); the
/// limit keeps the earliest. One that went on after `before` is not listed:
/// its latest message is not in the window.
fn targets(ctx: &Ctx<'_>, after: u64, before: u64, limit: usize) -> Flow {
    let (channels, identity, written) = {
        let world = ctx.world();
        let Some(me) = world.clients.get(&ctx.id()) else {
            return Flow::Continue;
        };
        // Each with the id its history starts after (see
        // `Channel::history_after`).
        let channels: Vec<(String, String, u64)> = me
            .channels
            .iter()
            .filter_map(|folded| {
                let channel = world.channels.get(folded)?;
                Some((folded.clone(), channel.name.clone(), channel.history_after))
            })
            .collect();
        // Conversations are listed for a logged-in client only.
        let identity = me.login.as_ref().map(|_| world.history_identity(me));
        (channels, identity, world.history.written())
    };
    let (outbox, caps) = own(ctx);
    let server: Arc<Server> = ctx.server.clone();
    Flow::Wait(Box::pin(async move {
        written.wait().await;
        let folded: Vec<String> = channels
            .iter()
            .map(|(folded, _, _)| folded.clone())
            .collect();
        let store = server.accounts.store();
        let found = async {
            let mut found: Vec<(String, u64)> = store
                .history_targets(&folded, after, before, limit)
                .await?
                .into_iter()
                .filter_map(|(folded, latest)| {
                    let (_, name, floor) = channels.iter().find(|(f, _, _)| *f == folded)?;
                    // Only the earlier channel of that name spoke since
                    // (`latest` is in ms, the floor an id).
                    if MessageId::first_of(latest + 1) <= *floor {
                        return None;
                    }
                    Some((name.clone(), latest))
                })
                .collect();
            if let Some(identity) = &identity {
                for (key, latest) in store.direct_targets_of(identity, after, before).await? {
                    if let Some(partner) = history::direct_partner(&key, identity) {
                        found.push((partner.trim_start_matches('~').to_owned(), latest));
                    }
                }
            }
            found.sort_by_key(|&(_, latest)| latest);
            found.truncate(limit);
            Ok::<_, crate::store::StoreError>(found)
        };
        let found = match found.await {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(%error, "cannot read history targets");
                let line = LineBuilder::new(Some(&server.name), "FAIL")
                    .param("CHATHISTORY")
                    .param("MESSAGE_ERROR")
                    .param("TARGETS")
                    .trailing("Messages could not be retrieved");
                outbox.send(&line);
                return None;
            }
        };
        let _scope = FlushScope::enter();
        let batch = caps
            .has(Cap::Batch)
            .then(|| Batch::start(&server.name, "draft/chathistory-targets", &[]));
        if let Some(batch) = &batch {
            outbox.send_as_is(batch.start_line());
        }
        for (name, latest) in found {
            let time = tags::format_time(latest);
            let line = LineBuilder::new(Some(&server.name), "CHATHISTORY")
                .param("TARGETS")
                .param(&name)
                .last(std::str::from_utf8(&time).unwrap_or_default());
            match &batch {
                Some(batch) => outbox.send_as_is(batch.wrap(&line)),
                None => outbox.send_as_is(line),
            };
        }
        if let Some(batch) = batch {
            outbox.send_as_is(batch.end_line());
        }
        None
    }))
}
