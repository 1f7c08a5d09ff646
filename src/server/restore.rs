//! Channels that outlive a restart.
//!
//! Every channel's snapshot (topic, modes, lists, creation time, where its
//! history starts, and the members it would want back) is saved a moment
//! after it changes: a change marks the channel unsaved, and one task
//! writes the marked channels once per `history.commit_interval_ms`, so a
//! hard kill loses no more of a channel than of its history. A clean stop
//! saves every channel before anyone is disconnected.
//!
//! At start each saved channel is created again, empty, and waits
//! `channels.restart_wait_secs` for its people, staying even while nobody
//! is in it. The members it remembers get their status back when they
//! join again (by account, or by nick and address) and pass its +i, +k
//! and +l, as if they had never left; bans still hold. Anyone else joins
//! it as an existing channel, so nobody gains ops by being first. When the
//! wait ends, a channel nobody is in goes, as a channel that empties does,
//! and the rest forget whom they were waiting for. A restart during the
//! wait does not lengthen it: the snapshot keeps when it ends. A channel
//! that empties while the server runs (and is not waiting) is gone at
//! once, its snapshot with it: whoever creates it again gets a new
//! channel, with none of the old one's history.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::channel::{Channel, Membership, RestartWait, Returning};
use super::persist::ChannelSaver;
use super::world::{ClientId, World};
use super::{unix_now, Server};
use crate::store::{ChannelSnapshot, MemberKey};

/// Work allowed in one hold of the lock while saving: each channel counts
/// one, and each member it saves one more, so a burst of changes or one
/// huge channel never holds up the network for long.
const SAVE_WORK_PER_HOLD: usize = 2_048;

impl World {
    /// Marks channel `folded` for saving: its state or its remembered
    /// members changed, or it is gone.
    pub fn channel_changed(&mut self, folded: &str) {
        self.unsaved_channels.mark(folded);
    }

    /// Marks for saving the channels that remember client `id` by name:
    /// its nick or its account changed.
    pub fn member_changed(&mut self, id: ClientId) {
        let World {
            clients,
            channels,
            unsaved_channels,
            ..
        } = self;
        let Some(client) = clients.get(&id) else {
            return;
        };
        for folded in &client.channels {
            let remembered = channels
                .get(folded)
                .and_then(|c| Some(c.remembers(c.members.get(&id)?.status)));
            if remembered == Some(true) {
                unsaved_channels.mark(folded);
            }
        }
    }

    /// The snapshot to save for channel `folded`, or `None` if it is gone.
    fn snapshot(&self, folded: &str) -> Option<ChannelSnapshot> {
        let channel = self.channels.get(folded)?;
        let wait_until = channel
            .restart_wait
            .as_ref()
            .filter(|_| channel.members.is_empty())
            .map(|wait| wait.until);
        Some(ChannelSnapshot {
            name: channel.name.clone(),
            created: channel.created,
            history_after: channel.history_after,
            state: channel.saved_state(),
            members: channel.saved_members(&self.clients, self.casemapping),
            wait_until,
        })
    }

    /// Creates the channels saved when the server last stopped, empty,
    /// waiting until `now + wait` for their members (or less, for those
    /// already waiting before). Returns how many came back.
    pub fn bring_back(&mut self, snapshots: Vec<ChannelSnapshot>, now: u64, wait: u64) -> usize {
        let fresh_until = now.saturating_add(wait);
        let mut brought = 0;
        for saved in snapshots {
            // Folded again: the casemapping may have changed since.
            let folded = self.casemapping.fold(&saved.name);
            let until = saved.wait_until.unwrap_or(fresh_until);
            if until <= now || self.channels.contains_key(&folded) {
                self.unsaved_channels.mark(&folded);
                continue;
            }
            let mut channel = Channel::new(saved.name, saved.created);
            channel.history_after = saved.history_after;
            channel.apply_saved_state(&saved.state, |mask| self.casemapping.fold(mask));
            // What ChanServ saved is written at once, the snapshot a
            // moment later: after a crash the registration is the newer.
            self.apply_registration(&folded, &mut channel);
            let members = saved
                .members
                .into_iter()
                .map(|m| {
                    let returning = Returning {
                        status: Membership {
                            op: m.op,
                            voice: m.voice,
                        },
                        until: m.wait_until.unwrap_or(fresh_until).min(until),
                    };
                    (m.who, returning)
                })
                .filter(|(_, returning)| returning.until > now)
                .collect();
            channel.restart_wait = Some(Box::new(RestartWait { until, members }));
            self.channels.insert(folded.clone(), channel);
            self.waiting_channels.push(folded);
            brought += 1;
        }
        brought
    }

    /// Puts a registered channel's saved topic, modes and lists on
    /// `channel`, and all of its history: it is the same channel again.
    pub fn apply_registration(&self, folded: &str, channel: &mut Channel) {
        let Some(registered) = self.registered_channels.get(folded) else {
            return;
        };
        channel.history_after = 0;
        channel.apply_saved_state(&registered.state, |mask| self.casemapping.fold(mask));
    }

    /// Ends the waits that are over at `now`: a channel whose wait ended
    /// with nobody in it goes; the others forget the members whose wait
    /// ended. Returns when the next wait ends, if any is left.
    pub fn end_waits(&mut self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut still_waiting = Vec::new();
        for folded in std::mem::take(&mut self.waiting_channels) {
            let Some(channel) = self.channels.get_mut(&folded) else {
                continue;
            };
            let Some(wait) = channel.restart_wait.as_mut() else {
                continue;
            };
            let before = wait.members.len();
            wait.members.retain(|_, returning| returning.until > now);
            let changed = wait.members.len() != before || wait.until <= now;
            if wait.until <= now {
                channel.restart_wait = None;
                if channel.members.is_empty() {
                    self.channels.remove(&folded);
                }
            } else {
                let soonest = wait
                    .members
                    .values()
                    .map(|r| r.until)
                    .fold(wait.until, u64::min);
                next = Some(next.map_or(soonest, |n| n.min(soonest)));
                still_waiting.push(folded.clone());
            }
            if changed {
                self.unsaved_channels.mark(&folded);
            }
        }
        self.waiting_channels = still_waiting;
        next
    }

    /// The key under which channel `folded` waits for client `id`, if it
    /// does.
    pub fn returning_key(&self, folded: &str, id: ClientId) -> Option<MemberKey> {
        let client = self.clients.get(&id)?;
        self.channels
            .get(folded)?
            .returning_key(client, self.casemapping)
    }

    /// The status awaited under `key` in channel `folded`, taken off the
    /// channel's list.
    pub fn take_returning(&mut self, folded: &str, key: &MemberKey) -> Option<Membership> {
        let wait = self.channels.get_mut(folded)?.restart_wait.as_mut()?;
        let returning = wait.members.remove(key)?;
        self.unsaved_channels.mark(folded);
        Some(returning.status)
    }
}

/// Gives client `id`, which just logged in, its status back in the
/// channels it is in that were waiting for its account: a client may join
/// before it identifies (NickServ IDENTIFY after the autojoin).
pub fn give_back_on_login(world: &mut World, server_name: &str, id: ClientId) {
    let Some(client) = world.clients.get(&id) else {
        return;
    };
    let waiting: Vec<(String, MemberKey)> = client
        .channels
        .iter()
        .filter_map(|folded| {
            let channel = world.channels.get(folded)?;
            Some((
                folded.clone(),
                channel.returning_key(client, world.casemapping)?,
            ))
        })
        .collect();
    for (folded, key) in waiting {
        let Some(restored) = world.take_returning(&folded, &key) else {
            continue;
        };
        let World {
            channels,
            clients,
            history,
            ..
        } = &mut *world;
        let (Some(channel), Some(client)) = (channels.get_mut(&folded), clients.get(&id)) else {
            continue;
        };
        let Some(member) = channel.members.get_mut(&id) else {
            continue;
        };
        let gained = restored.beyond(member.status);
        member.status = member.status.union(gained);
        if let Some(mode) = gained.granted_line(server_name, &channel.name, &client.nick) {
            channel.broadcast(clients, &mode, None);
            history.record_event([&folded], "MODE", &mode);
        }
    }
}

/// Saves every channel as it is now, and stops saving: the server is
/// stopping, and what its clients do from now on (leaving) must not
/// change what the next start brings back.
pub fn save_all(world: &mut World, saver: &ChannelSaver) {
    if !world.unsaved_channels.tracking {
        return;
    }
    world.unsaved_channels.tracking = false;
    for folded in std::mem::take(&mut world.unsaved_channels.names) {
        if !world.channels.contains_key(&folded) {
            saver.save_snapshot(folded, None);
        }
    }
    for folded in world.channels.keys() {
        saver.save_snapshot(folded.clone(), world.snapshot(folded));
    }
}

/// Saves the channels marked unsaved, once per `interval`, until the
/// server stops.
pub async fn keep_saved(server: Arc<Server>, interval: Duration) {
    let due = server.world_shared().unsaved_channels.due.clone();
    loop {
        tokio::select! {
            () = server.shutdown_requested() => return,
            () = due.notified() => {}
        }
        // Changes come in bursts (a netsplit of clients, a mass MODE):
        // wait for the rest of the burst, and save each channel once. While
        // the writer is behind, changes gather in the set, where a channel
        // is one name however often it changes, not in the writer's queue.
        loop {
            tokio::select! {
                () = server.shutdown_requested() => return,
                () = tokio::time::sleep(interval) => {}
            }
            if server
                .channel_saver
                .snapshots_queued
                .load(Ordering::Acquire)
                == 0
            {
                break;
            }
        }
        while save_some(&server) {}
    }
}

/// Saves some of the channels marked unsaved, in one hold of the lock, so
/// that none of them is ever out of the set and not yet queued (a stop
/// meanwhile would miss it). Returns whether any are left.
fn save_some(server: &Server) -> bool {
    let mut world = server.world();
    if world.shutting_down {
        return false;
    }
    let mut work = 0;
    let mut taken = Vec::new();
    for folded in &world.unsaved_channels.names {
        if work >= SAVE_WORK_PER_HOLD {
            break;
        }
        let members = world.channels.get(folded).map_or(0, |c| c.members.len());
        work += 1 + members;
        taken.push(folded.clone());
    }
    for folded in &taken {
        world.unsaved_channels.names.remove(folded);
        server
            .channel_saver
            .save_snapshot(folded.clone(), world.snapshot(folded));
    }
    !world.unsaved_channels.names.is_empty()
}

/// Ends the waits of the channels brought back at start as each one's
/// time comes.
pub async fn end_waits(server: Arc<Server>) {
    let mut next = Some(unix_now());
    while let Some(at) = next {
        let delay = Duration::from_secs(at.saturating_sub(unix_now()));
        tokio::select! {
            () = server.shutdown_requested() => return,
            () = tokio::time::sleep(delay) => {}
        }
        next = server.world().end_waits(unix_now());
    }
}
