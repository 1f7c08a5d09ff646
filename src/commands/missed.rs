//! What a returning account missed. When a logged-in client's connection
//! ends, its account's last-seen time is stored; when the account logs in
//! again (`account::log_in` reads it with the account), joining a channel
//! replays the lines it has not seen (up to the replay count) instead of
//! the last day's.
//!
//! Direct messages to a registered nick whose owner is offline are kept
//! for the account (`history.offline_messages`), and an account that logs
//! in is shown the direct messages it missed (`replay_direct`).

use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use super::{replies, SessionUpdate};
use crate::proto::numeric::Response;
use crate::proto::tags::{self, MessageId, Stamp};
use crate::proto::LineBuilder;
use crate::server::batch::Batch;
use crate::server::caps::{Cap, Caps};
use crate::server::flush::FlushScope;
use crate::server::history;
use crate::server::outbox::Outbox;
use crate::server::stamped::StampedLine;
use crate::server::world::ClientId;
use crate::server::Server;
use crate::store::{Kinds, StoreError};

/// Records that `account_folded`'s connection ended now.
pub fn remember_departure(
    server: &Arc<Server>,
    account_folded: String,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let store = server.accounts.store().clone();
    let now = tags::Stamp::now().time_ms;
    async move {
        if let Err(error) = store.set_last_seen(&account_folded, now).await {
            tracing::warn!(%error, account = %account_folded, "cannot store when the account left");
        }
    }
}

/// Whether `line` was sent by the nick `folded_nick`.
pub(super) fn is_own(line: &[u8], folded_nick: &str, server: &Server) -> bool {
    let body = match line.first() {
        Some(b'@') => memchr::memchr(b' ', line).map_or(line, |space| &line[space + 1..]),
        _ => line,
    };
    let Some(source) = body.strip_prefix(b":") else {
        return false;
    };
    let end = memchr::memchr2(b'!', b' ', source).unwrap_or(source.len());
    std::str::from_utf8(&source[..end]).is_ok_and(|nick| server.fold(nick) == folded_nick)
}

/// A direct message to a nick nobody is using, waiting for the database to
/// say whether an account owns the nick.
pub(super) struct OfflineMessage {
    pub target: String,
    pub command: &'static str,
    pub stamp: Stamp,
    /// As a client with every tag capability gets it.
    pub line: Bytes,
}

/// Who sent [`OfflineMessage`]s, to answer.
pub(super) struct OfflineSender {
    pub nick: String,
    /// See `World::history_identity`.
    pub identity: String,
    pub outbox: Outbox,
    pub echo: bool,
    /// False for NOTICE, which never gets an automatic reply.
    pub errors: bool,
}

/// The answers to a message's sender (errors, echoes, `301`), in the order
/// of its targets. Once one target waits for the database, the answers
/// after it wait too.
pub(super) struct SenderReplies<'o> {
    outbox: &'o Outbox,
    waiting: SmallVec<[Waiting; 2]>,
}

/// An answer held back behind a lookup.
pub(super) enum Waiting {
    /// Queued as it is, already in the sender's view.
    Line(Bytes),
    /// Kept, delivered or refused once its nick's owner is known.
    Offline(OfflineMessage),
}

impl<'o> SenderReplies<'o> {
    pub fn new(outbox: &'o Outbox) -> Self {
        SenderReplies {
            outbox,
            waiting: SmallVec::new(),
        }
    }

    pub fn send(&mut self, line: Bytes) {
        if self.waiting.is_empty() {
            self.outbox.send(&line);
        } else {
            self.waiting.push(Waiting::Line(line));
        }
    }

    pub fn echo(&mut self, line: &StampedLine<'_>) {
        if self.waiting.is_empty() {
            self.outbox.send_stamped(line);
        } else {
            self.waiting
                .push(Waiting::Line(self.outbox.view(line.tagged())));
        }
    }

    pub fn wait_for_owner(&mut self, message: OfflineMessage) {
        self.waiting.push(Waiting::Offline(message));
    }

    /// What must wait, if anything does.
    pub fn into_waiting(self) -> Option<SmallVec<[Waiting; 2]>> {
        (!self.waiting.is_empty()).then_some(self.waiting)
    }
}

/// Keeps each message for the account that owns its target nick (the
/// sender gets `301`, as for someone away), hands it at once to that
/// account's clients if it is online under other nicks, and answers `401`
/// for a nick no account owns.
pub(super) async fn leave_for_owners(
    server: Arc<Server>,
    sender: OfflineSender,
    waiting: SmallVec<[Waiting; 2]>,
) -> Option<SessionUpdate> {
    let store = server.accounts.store();
    for answer in waiting {
        let message = match answer {
            Waiting::Line(line) => {
                sender.outbox.send_as_is(line);
                continue;
            }
            Waiting::Offline(message) => message,
        };
        let owner = match store
            .account_owning_nick(&server.fold(&message.target))
            .await
        {
            Ok(owner) => owner,
            Err(error) => {
                // Refused, so the sender knows it did not get through.
                tracing::error!(%error, "cannot look up who owns a nick");
                None
            }
        };
        let _batch = FlushScope::enter();
        let world = server.world();
        let Some(owner) = owner else {
            if sender.errors {
                sender.outbox.send(&replies::no_such_nick_from(
                    &server,
                    &sender.nick,
                    &message.target,
                ));
            }
            continue;
        };
        let key = history::direct_key(&sender.identity, &owner);
        world
            .history
            .record_direct(&key, message.command, message.stamp, &message.line);
        let mut delivered = false;
        for client in world.clients.values().filter(|client| {
            client.registered
                && client
                    .account()
                    .is_some_and(|account| server.fold(account) == owner)
        }) {
            client.outbox.send(&message.line);
            delivered = true;
        }
        if sender.echo {
            sender.outbox.send(&message.line);
        }
        if !delivered && sender.errors {
            sender.outbox.send(
                &LineBuilder::numeric(&server.name, Response::RPL_AWAY, &sender.nick)
                    .param(&message.target)
                    .trailing("Offline; your message will be delivered when they return"),
            );
        }
    }
    None
}

/// Starts showing client `id`, logged in and registered, the direct
/// messages its account was sent since its previous connection ended,
/// unless its client fetches history itself.
pub fn replay_direct(server: &Arc<Server>, id: ClientId) {
    let config = &server.config().history;
    let max = config.missed_direct_lines;
    if max == 0 || !config.enabled || !config.direct_messages {
        return;
    }
    let world = server.world();
    let Some(me) = world.clients.get(&id) else {
        return;
    };
    if me.login.is_none()
        || !me.registered
        || me.caps.has(Cap::Chathistory)
        || me.caps.has(Cap::Playback)
    {
        return;
    }
    let replay = DirectReplay {
        identity: world.history_identity(me),
        after: MessageId::first_of(me.last_seen_ms()),
        max,
        caps: me.caps,
        own_nick: world.fold(&me.nick),
        outbox: me.outbox.clone(),
    };
    let written = world.history.written();
    drop(world);
    let server = server.clone();
    tokio::spawn(async move {
        written.wait().await;
        if let Err(error) = replay.run(&server).await {
            tracing::error!(%error, "cannot replay missed direct messages");
        }
    });
}

struct DirectReplay {
    identity: String,
    /// The id the missed messages come after.
    after: u64,
    max: usize,
    caps: Caps,
    own_nick: String,
    outbox: Outbox,
}

impl DirectReplay {
    async fn run(&self, server: &Server) -> Result<(), StoreError> {
        let store = server.accounts.store();
        let mut missed = Vec::new();
        for (key, _) in store
            .direct_targets_of(&self.identity, self.after, u64::MAX)
            .await?
        {
            let Some(partner) = history::direct_partner(&key, &self.identity) else {
                continue;
            };
            let partner = partner.trim_start_matches('~').to_owned();
            let rows = store
                .history_range(&key, self.after, u64::MAX, self.max, true, Kinds::Messages)
                .await?;
            for row in rows {
                let line = Bytes::from(row.line + "\r\n");
                if self.caps.has(Cap::SelfMessage) || !is_own(&line, &self.own_nick, server) {
                    missed.push((row.msgid, partner.clone(), line));
                }
            }
        }
        missed.sort_unstable_by_key(|(msgid, _, _)| *msgid);
        let newest = missed.split_off(missed.len().saturating_sub(self.max));
        // One conversation after another, each in the order of its first
        // missed message, as one write.
        let mut partners: Vec<&str> = Vec::new();
        for (_, partner, _) in &newest {
            if !partners.contains(&partner.as_str()) {
                partners.push(partner);
            }
        }
        let mask = self.caps.tag_mask();
        let _scope = FlushScope::enter();
        for partner in partners {
            let batch = self
                .caps
                .has(Cap::Batch)
                .then(|| Batch::start(&server.name, "chathistory", &[partner]));
            if let Some(batch) = &batch {
                self.outbox.send_as_is(batch.start_line());
            }
            for (_, _, line) in newest.iter().filter(|(_, p, _)| p == partner) {
                let line = tags::view(line, mask);
                self.outbox.send_as_is(match &batch {
                    Some(batch) => batch.wrap(&line),
                    None => line,
                });
            }
            if let Some(batch) = batch {
                self.outbox.send_as_is(batch.end_line());
            }
        }
        Ok(())
    }
}
