//! What of a channel is saved, and how it is put back: its state (topic,
//! modes, lists), kept for registered channels and for every channel
//! across a restart, and the members it waits for after one.

use std::net::IpAddr;

use super::{Channel, ChannelModes, ListEntry as MaskEntry, Membership, Topic};
use crate::casemap::CaseMapping;
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
    /// restart still waits for.
    pub fn saved_members(
        &self,
        clients: &super::Clients,
        casemapping: CaseMapping,
    ) -> Vec<SavedMember> {
        let mut saved: Vec<SavedMember> = self
            .members
            .iter()
            .filter(|(_, member)| self.remembers(member.status))
            .filter_map(|(id, member)| {
                let client = clients.get(id)?;
                Some(SavedMember {
                    who: member_key(client, casemapping),
                    op: member.status.op,
                    voice: member.status.voice,
                })
            })
            .collect();
        for waiting in &self.returning {
            if !saved.iter().any(|s| s.who == waiting.who) {
                saved.push(waiting.clone());
            }
        }
        saved
    }

    /// Where `client` is among the members a restart waits for, if it is.
    pub fn returning_index(&self, client: &Client, casemapping: CaseMapping) -> Option<usize> {
        if self.returning.is_empty() {
            return None;
        }
        let by_address = address_key(client, casemapping);
        let by_account = account_key(client, casemapping);
        self.returning
            .iter()
            .position(|saved| saved.who == by_address || Some(&saved.who) == by_account.as_ref())
    }

    /// Takes the entry [`Channel::returning_index`] found: the status it
    /// had when the server stopped.
    pub fn take_returning(&mut self, index: usize) -> Membership {
        let saved = self.returning.swap_remove(index);
        Membership {
            op: saved.op,
            voice: saved.voice,
        }
    }
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
    let ip: IpAddr = client.ip;
    MemberKey::Address {
        nick: casemapping.fold(&client.nick),
        ip,
    }
}
