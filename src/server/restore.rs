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
//! `channels.restart_wait_secs` for its people. The members it remembers
//! get their status back when they join again (ops and voice by account,
//! or by nick and address) and pass its +i, +k, +l and bans, as if they
//! had never left; anyone else joins it as an existing channel, so nobody
//! gains ops by being first. When the wait ends, a channel nobody came
//! back to goes, as a channel that empties does, and the rest forget whom
//! they were waiting for. A channel that empties while the server runs is
//! gone at once and its snapshot with it: whoever creates it again gets a
//! new channel, with none of the old one's history.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::channel::{Channel, Membership};
use super::maps::{HashMap, HashSet};
use super::persist::ChannelSaver;
use super::world::{line_from, Client, ClientId, World};
use super::Server;
use crate::store::ChannelSnapshot;

/// Snapshots built in one hold of the shared lock, so that a burst of
/// changes never holds up the network for long.
const SNAPSHOTS_PER_HOLD: usize = 32;

/// The channels whose saved snapshot is out of date, by folded name.
#[derive(Debug)]
pub struct UnsavedChannels {
    names: HashSet<String>,
    /// Wakes the task that saves them when the first is marked.
    due: Arc<Notify>,
    /// Off when channels do not outlive a restart, and once the server is
    /// stopping (every channel was saved then).
    tracking: bool,
}

impl UnsavedChannels {
    pub fn new(tracking: bool) -> UnsavedChannels {
        UnsavedChannels {
            names: HashSet::default(),
            due: Arc::default(),
            tracking,
        }
    }

    pub fn mark(&mut self, folded: &str) {
        if !self.tracking || self.names.contains(folded) {
            return;
        }
        if self.names.is_empty() {
            self.due.notify_one();
        }
        self.names.insert(folded.to_owned());
    }
}

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
        Some(ChannelSnapshot {
            name: channel.name.clone(),
            created: channel.created,
            history_after: channel.history_after,
            state: channel.saved_state(),
            members: channel.saved_members(&self.clients, self.casemapping),
        })
    }

    /// Creates the channels saved when the server last stopped, empty,
    /// waiting for their members.
    pub fn bring_back(&mut self, snapshots: Vec<(String, ChannelSnapshot)>) {
        for (folded, saved) in snapshots {
            let mut channel = Channel::new(saved.name, saved.created);
            channel.apply_saved_state(&saved.state, |mask| self.casemapping.fold(mask));
            channel.history_after = saved.history_after;
            channel.returning = saved.members;
            self.channels.insert(folded, channel);
        }
    }

    /// The wait after a restart is over: channels nobody came back to go,
    /// the others stop waiting for anyone.
    pub fn end_restart_wait(&mut self) {
        let waiting: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.members.is_empty() || !c.returning.is_empty())
            .map(|(folded, _)| folded.clone())
            .collect();
        for folded in waiting {
            if let Some(channel) = self.channels.get_mut(&folded) {
                channel.returning = Vec::new();
                if channel.members.is_empty() {
                    self.channels.remove(&folded);
                }
            }
            self.channel_changed(&folded);
        }
    }

    /// The status a joining client gets back if channel `folded` was
    /// waiting for it, taken off the channel's list.
    pub fn take_returning(&mut self, folded: &str, id: ClientId) -> Option<Membership> {
        let client = self.clients.get(&id)?;
        let channel = self.channels.get_mut(folded)?;
        let index = channel.returning_index(client, self.casemapping)?;
        self.unsaved_channels.mark(folded);
        Some(channel.take_returning(index))
    }
}

/// Takes client `id` out of channel `folded`; the channel goes when its
/// last member does. Marks the channel for saving if it is gone or
/// remembered the member. Returns whether the channel is gone.
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
    if channel.members.is_empty() {
        channels.remove(folded);
        unsaved.mark(folded);
        return true;
    }
    if status.is_some_and(|s| channel.remembers(s)) {
        unsaved.mark(folded);
    }
    false
}

/// The MODE the server sends for a member that came back after a restart
/// and gets back the status `restored`.
pub fn status_mode(
    server_name: &str,
    channel: &Channel,
    member: &Client,
    restored: Membership,
) -> Option<Bytes> {
    let line = line_from(server_name, None, "MODE").param(&channel.name);
    Some(match (restored.op, restored.voice) {
        (true, true) => line.param("+ov").param(&member.nick).last(&member.nick),
        (true, false) => line.param("+o").last(&member.nick),
        (false, true) => line.param("+v").last(&member.nick),
        (false, false) => return None,
    })
}

/// Gives client `id`, which just logged in, its status back in the
/// channels it is in that were waiting for its account: a client may join
/// before it identifies (NickServ IDENTIFY after the autojoin).
pub fn give_back_on_login(world: &mut World, server_name: &str, id: ClientId) {
    let Some(client) = world.clients.get(&id) else {
        return;
    };
    let waiting: Vec<String> = client
        .channels
        .iter()
        .filter(|folded| {
            world
                .channels
                .get(*folded)
                .is_some_and(|c| !c.returning.is_empty())
        })
        .cloned()
        .collect();
    for folded in waiting {
        let Some(restored) = world.take_returning(&folded, id) else {
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
        if let Some(mode) = status_mode(server_name, channel, client, gained) {
            channel.broadcast(clients, &mode, None);
            history.record_event([&folded], "MODE", &mode);
        }
    }
}

/// Whether a channel is waiting for client `id` after a restart.
pub fn is_returning(world: &World, folded: &str, id: ClientId) -> bool {
    let (Some(channel), Some(client)) = (world.channels.get(folded), world.clients.get(&id)) else {
        return false;
    };
    channel.returning_index(client, world.casemapping).is_some()
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
        // wait for the rest of the burst, and save each channel once.
        tokio::select! {
            () = server.shutdown_requested() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let names: Vec<String> = std::mem::take(&mut server.world().unsaved_channels.names)
            .into_iter()
            .collect();
        for chunk in names.chunks(SNAPSHOTS_PER_HOLD) {
            let world = server.world_shared();
            // Queued under the lock, so a snapshot never overtakes a later
            // one, nor the ones `save_all` queues.
            if world.shutting_down {
                return;
            }
            for folded in chunk {
                server
                    .channel_saver
                    .save_snapshot(folded.clone(), world.snapshot(folded));
            }
        }
    }
}

/// Ends the wait after a restart once `wait` has passed.
pub async fn end_wait(server: Arc<Server>, wait: Duration) {
    tokio::select! {
        () = server.shutdown_requested() => {}
        () = tokio::time::sleep(wait) => server.world().end_restart_wait(),
    }
}
