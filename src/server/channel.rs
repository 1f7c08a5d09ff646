//! A channel's state: members with their prefixes, modes, lists and topic.

mod saved;

pub use saved::{RestartWait, Returning};

use std::cell::OnceCell;

use super::maps::{HashMap, HashSet};
use super::unsaved::UnsavedChannels;

use bytes::Bytes;
use smallvec::SmallVec;

use super::caps::Cap;
use super::outbox::{Outbox, Recipient};
use super::stamped::StampedLine;
use super::world::{line_from, ClientId, Clients};
use crate::proto::mask::wildcard_match;
use crate::proto::tags::TagMask;

/// Recipients of a channel message looked up before they are queued.
const BROADCAST_CHUNK: usize = 32;

/// A member of a channel: its status there, and its outbox, kept here so
/// that a message to the channel reaches each member without looking it
/// up among all clients (see [`Channel::broadcast_message`]).
#[derive(Debug, Clone)]
pub struct Member {
    pub status: Membership,
    pub outbox: Outbox,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub op: bool,
    pub voice: bool,
}

impl Membership {
    /// The statuses held in either.
    pub fn union(self, other: Membership) -> Membership {
        Membership {
            op: self.op || other.op,
            voice: self.voice || other.voice,
        }
    }

    /// The MODE by which `source` gives `nick` these statuses on
    /// `channel`, if there are any.
    pub fn granted_line(self, source: &str, channel: &str, nick: &str) -> Option<Bytes> {
        let line = |modes: &str| line_from(source, None, "MODE").param(channel).param(modes);
        Some(match (self.op, self.voice) {
            (true, true) => line("+ov").param(nick).last(nick),
            (true, false) => line("+o").last(nick),
            (false, true) => line("+v").last(nick),
            (false, false) => return None,
        })
    }

    /// The statuses held here and not in `other`.
    pub fn beyond(self, other: Membership) -> Membership {
        Membership {
            op: self.op && !other.op,
            voice: self.voice && !other.voice,
        }
    }

    /// The prefix shown before a nick: the highest one, or all of them for
    /// clients with `multi-prefix`.
    pub fn prefix(self, multi_prefix: bool) -> &'static str {
        match (self.op, self.voice, multi_prefix) {
            (true, true, true) => "@+",
            (true, _, _) => "@",
            (false, true, _) => "+",
            (false, false, _) => "",
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChannelModes {
    pub invite_only: bool,
    pub moderated: bool,
    pub no_external: bool,
    pub topic_lock: bool,
    pub secret: bool,
    pub private: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
}

impl ChannelModes {
    /// Modes a new channel starts with.
    pub fn new_channel() -> ChannelModes {
        ChannelModes {
            no_external: true,
            topic_lock: true,
            ..ChannelModes::default()
        }
    }

    /// The letters of the modes without a parameter that are set, e.g.
    /// `nt`, in the order they are shown and saved.
    pub fn flag_letters(&self) -> String {
        let flags = [
            (self.invite_only, 'i'),
            (self.moderated, 'm'),
            (self.no_external, 'n'),
            (self.private, 'p'),
            (self.secret, 's'),
            (self.topic_lock, 't'),
        ];
        flags.iter().filter(|(on, _)| *on).map(|(_, c)| c).collect()
    }

    /// `+ntk key` style: the mode word followed by its parameters. The key
    /// is only shown to members.
    pub fn describe(&self, show_key: bool) -> Vec<String> {
        let mut word = String::from("+");
        word.push_str(&self.flag_letters());
        let mut params = Vec::new();
        if let Some(key) = &self.key {
            word.push('k');
            params.push(if show_key {
                key.clone()
            } else {
                "*".to_owned()
            });
        }
        if let Some(limit) = self.limit {
            word.push('l');
            params.push(limit.to_string());
        }
        let mut out = vec![word];
        out.extend(params);
        out
    }
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

/// One entry of a ban, exception or invite-exception list.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub mask: String,
    /// The casefolded mask, matched against casefolded `nick!user@host`.
    pub folded: String,
    pub set_by: String,
    pub set_at: u64,
}

#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub created: u64,
    pub topic: Option<Topic>,
    pub members: HashMap<ClientId, Member>,
    pub modes: ChannelModes,
    pub bans: Vec<ListEntry>,
    pub excepts: Vec<ListEntry>,
    pub invex: Vec<ListEntry>,
    /// Clients a channel operator (or server operator) invited: they may
    /// join once past +i, +k, +l and +b. Used up by that JOIN.
    pub invited: HashSet<ClientId>,
    /// The history this channel shows starts after this message id. An
    /// unregistered channel that emptied is gone, and whoever creates it
    /// again must not read what was said in the old one: its history
    /// starts at its creation. A registered channel's goes back to the
    /// start (0).
    pub history_after: u64,
    /// Set on a channel brought back by a restart until its wait ends:
    /// the members it waits for (see `server/restore.rs`).
    pub restart_wait: Option<Box<RestartWait>>,
}

impl Channel {
    pub fn new(name: String, created: u64) -> Channel {
        Channel {
            name,
            created,
            topic: None,
            members: HashMap::default(),
            modes: ChannelModes::new_channel(),
            bans: Vec::new(),
            excepts: Vec::new(),
            invex: Vec::new(),
            invited: HashSet::default(),
            history_after: crate::proto::tags::MessageId::latest().0,
            restart_wait: None,
        }
    }

    pub fn is_member(&self, id: ClientId) -> bool {
        self.members.contains_key(&id)
    }

    pub fn is_op(&self, id: ClientId) -> bool {
        self.members.get(&id).is_some_and(|m| m.status.op)
    }

    /// Whether a client known by these casefolded masks (see
    /// `World::folded_masks`) is banned by one and excepted by none.
    pub fn is_banned(&self, folded_masks: &[String]) -> bool {
        let matches = |list: &[ListEntry]| {
            list.iter().any(|e| {
                folded_masks
                    .iter()
                    .any(|mask| wildcard_match(&e.folded, mask))
            })
        };
        matches(&self.bans) && !matches(&self.excepts)
    }

    pub fn is_invite_excepted(&self, folded_masks: &[String]) -> bool {
        self.invex.iter().any(|e| {
            folded_masks
                .iter()
                .any(|mask| wildcard_match(&e.folded, mask))
        })
    }

    /// Whether the channel is hidden from people outside it.
    pub fn is_hidden(&self) -> bool {
        self.modes.secret || self.modes.private
    }

    /// Whether a viewer may see this channel's details (topic, modes,
    /// lists, members): members and server operators always, others only
    /// when it is not `+s`/`+p`.
    pub fn is_visible_to(&self, viewer: ClientId, viewer_is_oper: bool) -> bool {
        !self.is_hidden() || viewer_is_oper || self.is_member(viewer)
    }

    /// Whether `id` may speak here: members unless `+m` (then only voiced
    /// and ops), outsiders only without `+n`; banned members may not.
    /// `folded_mask` is only called when there are bans to check, which
    /// keeps the common case free of allocation.
    pub fn may_speak(
        &self,
        id: ClientId,
        folded_masks: impl FnOnce() -> SmallVec<[String; 2]>,
    ) -> bool {
        let banned = || !self.bans.is_empty() && self.is_banned(&folded_masks());
        match self.members.get(&id).map(|m| m.status) {
            Some(m) if m.op || m.voice => true,
            Some(_) => !self.modes.moderated && !banned(),
            None => !self.modes.no_external && !self.modes.moderated && !banned(),
        }
    }

    /// Queues `line` for every member but `except`, in one pass.
    pub fn broadcast(&self, clients: &Clients, line: &Bytes, except: Option<ClientId>) {
        for &member in self.members.keys() {
            if Some(member) == except {
                continue;
            }
            if let Some(client) = clients.get(&member) {
                client.outbox.send(line);
            }
        }
    }

    /// Queues a membership change (JOIN, PART) for every member: at once
    /// for `actor`, who waits for it, and delayed for the others, so that
    /// a busy channel's churn costs each member one write per many changes.
    pub fn broadcast_membership(&self, clients: &Clients, line: &Bytes, actor: ClientId) {
        self.broadcast_join(clients, [line, line], actor);
    }

    /// [`Channel::broadcast_membership`] for a JOIN, with the extended-join
    /// form `[plain, extended]` for the members who asked for it.
    pub fn broadcast_join(&self, clients: &Clients, lines: [&Bytes; 2], actor: ClientId) {
        for &member in self.members.keys() {
            if let Some(client) = clients.get(&member) {
                let line = lines[usize::from(client.caps.has(Cap::ExtendedJoin))];
                if member == actor {
                    client.outbox.send(line);
                } else {
                    client.outbox.send_delayed(line);
                }
            }
        }
    }

    /// Queues `line` for every member and for `actor`, who may be an
    /// operator acting from outside: a granted request is always echoed to
    /// whoever made it.
    pub fn broadcast_and_echo(&self, clients: &Clients, line: &Bytes, actor: ClientId) {
        self.broadcast(clients, line, None);
        if !self.is_member(actor) {
            if let Some(client) = clients.get(&actor) {
                client.outbox.send(line);
            }
        }
    }

    /// PRIVMSGs or NOTICEs, one after another, for the members but their
    /// sender (`except`), with at least `min_status` if given (STATUSMSG:
    /// `@` ops, `+` voiced and ops). Several lines are queued for each
    /// member as one piece where its capabilities allow: one lock and one
    /// shared handle per member instead of one per line.
    pub fn broadcast_message(
        &self,
        lines: &[StampedLine<'_>],
        except: ClientId,
        min_status: Option<char>,
        tags_only: bool,
    ) {
        // Recipients are read a chunk at a time before any is queued: the
        // reading only loads, so the CPU overlaps the cache misses of many
        // recipients, while queueing takes each one's lock, an atomic
        // operation that would make every miss wait for the one before.
        let joined = OnceCell::new();
        let mut chunk: SmallVec<[Recipient; BROADCAST_CHUNK]> = SmallVec::new();
        let mut members = self.members.iter();
        // Counted once for the whole fan-out, not per recipient.
        let mut recipients = 0;
        loop {
            for (&id, member) in members.by_ref() {
                let qualifies = match min_status {
                    None => true,
                    Some('@') => member.status.op,
                    Some(_) => member.status.op || member.status.voice,
                };
                if id == except || !qualifies {
                    continue;
                }
                let recipient = member.outbox.recipient();
                // A message made only of tags means nothing without them.
                if tags_only && !recipient.tag_mask().contains(TagMask::MESSAGE_TAGS) {
                    continue;
                }
                chunk.push(recipient);
                if chunk.len() == BROADCAST_CHUNK {
                    break;
                }
            }
            if chunk.is_empty() {
                crate::metrics::delivered(recipients * lines.len());
                return;
            }
            recipients += chunk.len();
            for recipient in chunk.drain(..) {
                recipient.send_stamped_run(lines, &joined);
            }
        }
    }
}

/// Takes client `id` out of channel `folded`. The channel goes when its
/// last member does, unless it is waiting after a restart. Marks it for
/// saving if it is gone or remembered the member. Returns whether the
/// channel is gone.
pub fn remove_member(
    channels: &mut HashMap<String, Channel>,
    unsaved: &mut UnsavedChannels,
    folded: &str,
    id: ClientId,
) -> bool {
    let Some(channel) = channels.get_mut(folded) else {
        return false;
    };
    let status = channel.members.remove(&id).map(|m| m.status);
    if channel.members.is_empty() && channel.restart_wait.is_none() {
        channels.remove(folded);
        unsaved.mark(folded);
        return true;
    }
    if channel.members.is_empty() || status.is_some_and(|s| channel.remembers(s)) {
        unsaved.mark(folded);
    }
    false
}
