//! What of a channel is saved, and how it is put back: its state (topic,
//! modes, lists), kept for registered channels and for every channel
//! across a restart, and the members it waits for after one.

use super::{Channel, ChannelModes, Clients, ListEntry as MaskEntry, Membership, Topic};
use crate::casemap::CaseMapping;
use crate::server::maps::HashMap;
use crate::server::world::Client;
use crate::store::{ChannelState, ListEntry, MemberKey, SavedMember};

impl Channel {
    /// The state a restart or a registration keeps.
    pub fn saved_state(&self) -> ChannelState {
        let m = &self.modes;
        let lists = [('b', &self.bans), ('e', &self.excepts), ('I', &self.invex)];
        ChannelState {
            topic: self.topic.as_ref().map(|t| crate::store::Topic {
                text: t.text.clone(),
                set_by: t.set_by.clone(),
                set_at: i64::try_from(t.set_at).unwrap_or(i64::MAX),
            }),
            modes: m.flag_letters(),
            key: m.key.clone(),
            limit: m.limit.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
            lists: lists
                .iter()
                .flat_map(|(mode, entries)| {
                    entries.iter().map(|e| ListEntry {
                        mode: *mode,
                        mask: e.mask.clone(),
                        set_by: e.set_by.clone(),
                        set_at: i64::try_from(e.set_at).unwrap_or(i64::MAX),
                    })
                })
                .collect(),
        }
    }

    /// Puts saved state back: topic, modes and lists replace the current
    /// ones. `fold` folds a mask with the network's casemapping.
    pub fn apply_saved_state(&mut self, state: &ChannelState, fold: impl Fn(&str) -> String) {
        let has = |letter| state.modes.contains(letter);
        self.modes = ChannelModes {
            invite_only: has('i'),
            moderated: has('m'),
            no_external: has('n'),
            private: has('p'),
            secret: has('s'),
            topic_lock: has('t'),
            key: state.key.clone(),
            limit: state.limit.map(|l| l as usize),
        };
        self.topic = state.topic.as_ref().map(|t| Topic {
            text: t.text.clone(),
            set_by: t.set_by.clone(),
            set_at: u64::try_from(t.set_at).unwrap_or(0),
        });
        self.bans.clear();
        self.excepts.clear();
        self.invex.clear();
        for entry in &state.lists {
            let list = match entry.mode {
                'b' => &mut self.bans,
                'e' => &mut self.excepts,
                _ => &mut self.invex,
            };
            list.push(MaskEntry {
                mask: entry.mask.clone(),
                folded: fold(&entry.mask),
                set_by: entry.set_by.clone(),
                set_at: u64::try_from(entry.set_at).unwrap_or(0),
            });
        }
    }

    /// Whether a member with this status is among those a restart brings
    /// back by name: anyone with ops or voice, and everyone in a channel
    /// that only lets people in by invitation or key, where a returning
    /// member would otherwise be shut out.
    pub fn remembers(&self, status: Membership) -> bool {
        status.op || status.voice || self.modes.invite_only || self.modes.key.is_some()
    }

    /// The members to save: those [`Channel::remembers`], and those a
    /// restart still waits for, with the end of that wait.
    pub fn saved_members(&self, clients: &Clients, casemapping: CaseMapping) -> Vec<SavedMember> {
        let mut saved: HashMap<MemberKey, SavedMember> = HashMap::default();
        if let Some(wait) = &self.restart_wait {
            for (who, returning) in &wait.members {
                let member = SavedMember {
                    who: who.clone(),
                    op: returning.status.op,
                    voice: returning.status.voice,
                    wait_until: Some(returning.until),
                };
                saved.insert(who.clone(), member);
            }
        }
        // Someone back since is saved as there now, not as awaited.
        for (id, member) in &self.members {
            let Some(client) = clients.get(id).filter(|_| self.remembers(member.status)) else {
                continue;
            };
            let who = member_key(client, casemapping);
            let member = SavedMember {
                who: who.clone(),
                op: member.status.op,
                voice: member.status.voice,
                wait_until: None,
            };
            saved.insert(who, member);
        }
        saved.into_values().collect()
    }

    /// The key under which the channel waits for `client`, if it does.
    pub fn returning_key(&self, client: &Client, casemapping: CaseMapping) -> Option<MemberKey> {
        let wait = self
            .restart_wait
            .as_ref()
            .filter(|w| !w.members.is_empty())?;
        [
            Some(address_key(client, casemapping)),
            account_key(client, casemapping),
        ]
        .into_iter()
        .flatten()
        .find(|key| wait.members.contains_key(key))
    }
}

/// A channel brought back by a restart, waiting for its people.
#[derive(Debug)]
pub struct RestartWait {
    /// When the wait ends (Unix seconds). Until then the channel stays
    /// even while nobody is in it.
    pub until: u64,
    /// The members it waits for.
    pub members: HashMap<MemberKey, Returning>,
}

/// A member a restarted channel waits for.
#[derive(Debug, Clone, Copy)]
pub struct Returning {
    /// The status it gets back.
    pub status: Membership,
    /// When the channel stops waiting for it (Unix seconds).
    pub until: u64,
}

/// How a member is recognised after a restart: its account when it is
/// logged in to one, otherwise its nick and address.
fn member_key(client: &Client, casemapping: CaseMapping) -> MemberKey {
    account_key(client, casemapping).unwrap_or_else(|| address_key(client, casemapping))
}

fn account_key(client: &Client, casemapping: CaseMapping) -> Option<MemberKey> {
    let login = client.login.as_ref()?;
    Some(MemberKey::Account {
        account: casemapping.fold(&login.name),
        uid: login.uid,
    })
}

fn address_key(client: &Client, casemapping: CaseMapping) -> MemberKey {
    MemberKey::Address {
        nick: casemapping.fold(&client.nick),
        ip: client.ip,
    }
}
