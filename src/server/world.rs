//! The network's state: clients, the nick index, channels, WHOWAS and
//! MONITOR. It lives behind one mutex in [`super::Server`]; every operation
//! here is synchronous, so the lock is never held across an `.await`, and
//! because each fan-out happens under it, every member of a channel sees
//! that channel's events in the same order.

use std::time::Instant;

use bytes::Bytes;

use super::caps::Cap;
use super::channel::remove_member;
use super::channel::Channel;
use super::history::{HistoryLog, RecentLines};
use super::maps::{HashMap, HashSet};
use super::per_address::ConnectionsPerAddress;
use super::unsaved::UnsavedChannels;
pub use super::whowas::{Whowas, WhowasEntry};
use crate::casemap::CaseMapping;
use crate::proto::numeric::Response;
use crate::proto::LineBuilder;
use crate::store::RegisteredChannel;

// Defined with the client; the network state is where callers find them.
pub use super::client::{line_from, Client, LoggedIn, UserModes};

pub type ClientId = u64;

// Boxed: a growing map then moves 16-byte entries, not whole clients, and
// its spare capacity costs 16 bytes per slot instead of a `Client`.
pub type Clients = HashMap<ClientId, Box<Client>>;

/// Registered users, and how many of them are invisible or operators.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserCounts {
    pub registered: usize,
    pub invisible: usize,
    pub operators: usize,
}

impl UserCounts {
    fn add(&mut self, modes: UserModes, sign: isize) {
        let apply = |count: &mut usize, on: bool| {
            if on {
                *count = count.checked_add_signed(sign).unwrap_or(0);
            }
        };
        apply(&mut self.registered, true);
        apply(&mut self.invisible, modes.invisible);
        apply(&mut self.operators, modes.oper);
    }
}

#[derive(Debug)]
pub struct World {
    pub casemapping: CaseMapping,
    pub server_name: String,
    pub clients: Clients,
    /// Casefolded nick → client, registered or not.
    pub nicks: HashMap<String, ClientId>,
    /// Casefolded name → channel.
    pub channels: HashMap<String, Channel>,
    pub whowas: Whowas,
    /// Stores channel lines in the background.
    pub history: HistoryLog,
    /// Each channel's last lines, replayed on join.
    pub recent_lines: RecentLines,
    /// Casefolded nick → clients watching it.
    pub monitors: HashMap<String, HashSet<ClientId>>,
    /// Connections per address group (IPv6 by prefix).
    pub connections_per_ip: ConnectionsPerAddress,
    /// Set when the server stops: everyone is leaving, so nobody is told
    /// about anybody else's QUIT (that would be N² lines for nothing).
    pub shutting_down: bool,
    /// Most registered users seen at once, for LUSERS.
    pub peak_users: usize,
    /// Kept as clients come, go and change modes, so LUSERS (sent to every
    /// client that registers) never has to count everyone.
    pub counts: UserCounts,
    /// Clients using a registered nick without being logged in to its
    /// account: they must identify or lose the nick (see `nick_claims.rs`).
    pub nick_claims: HashMap<ClientId, Vec<NickClaim>>,
    /// Registered channels by folded name (see `chanserv.rs`), loaded from
    /// the store at start and kept in step with it.
    pub registered_channels: HashMap<String, RegisteredChannel>,
    /// The uid of each founder and access-list account (folded name →
    /// uid): a login grants channel rights only if it is to that same
    /// account, not to a dropped one of the same name.
    pub registry_accounts: HashMap<String, i64>,
    /// Channels whose snapshot for a restart is out of date (see
    /// `restore.rs`).
    pub unsaved_channels: UnsavedChannels,
    /// Channels brought back by a restart and still waiting for their
    /// members (folded names).
    pub waiting_channels: Vec<String>,
    /// Clients logged in, per account (folded): its length is the
    /// accounts online, for the metrics.
    pub logins: HashMap<String, u32>,
}

/// A registered nick used by someone not logged in to its account.
#[derive(Debug)]
pub struct NickClaim {
    pub nick_folded: String,
    /// The owning account, folded.
    pub owner: String,
    pub deadline: Instant,
}

impl World {
    pub fn new(
        casemapping: CaseMapping,
        server_name: String,
        whowas_limit: usize,
        history: HistoryLog,
        unsaved_channels: UnsavedChannels,
    ) -> World {
        World {
            history,
            casemapping,
            server_name,
            clients: HashMap::default(),
            nicks: HashMap::default(),
            channels: HashMap::default(),
            whowas: Whowas::new(whowas_limit),
            recent_lines: RecentLines::default(),
            monitors: HashMap::default(),
            connections_per_ip: ConnectionsPerAddress::default(),
            peak_users: 0,
            counts: UserCounts::default(),
            shutting_down: false,
            nick_claims: HashMap::default(),
            registered_channels: HashMap::default(),
            registry_accounts: HashMap::default(),
            unsaved_channels,
            waiting_channels: Vec::new(),
            logins: HashMap::default(),
        }
    }

    pub fn fold(&self, name: &str) -> String {
        self.casemapping.fold(name)
    }

    /// A client logged in to the account `folded`.
    pub fn count_login(&mut self, folded: String) {
        *self.logins.entry(folded).or_insert(0) += 1;
    }

    /// A client logged out of the account `folded`, or left.
    pub fn uncount_login(&mut self, folded: &str) {
        if let Some(clients) = self.logins.get_mut(folded) {
            *clients -= 1;
            if *clients == 0 {
                self.logins.remove(folded);
            }
        }
    }

    pub fn add_client(&mut self, client: Client) {
        self.connections_per_ip.add(client.ip);
        self.clients.insert(client.id, Box::new(client));
    }

    /// `name` casefolded, borrowed when it already was.
    pub fn fold_cow<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        self.casemapping.fold_cow(name)
    }

    pub fn client_by_nick(&self, nick: &str) -> Option<&Client> {
        self.client_by_folded_nick(&self.fold_cow(nick))
    }

    /// [`World::client_by_nick`] for a nick already folded.
    pub fn client_by_folded_nick(&self, folded: &str) -> Option<&Client> {
        let id = self.nicks.get(folded)?;
        self.clients.get(id).map(|client| &**client)
    }

    /// Registered clients only: an unregistered connection holding a nick is
    /// not someone you can message or look up.
    pub fn registered_by_nick(&self, nick: &str) -> Option<&Client> {
        self.registered_by_folded_nick(&self.fold_cow(nick))
    }

    /// [`World::registered_by_nick`] for a nick already folded.
    pub fn registered_by_folded_nick(&self, folded: &str) -> Option<&Client> {
        self.client_by_folded_nick(folded).filter(|c| c.registered)
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(&*self.fold_cow(name))
    }

    /// Everyone who shares at least one channel with `id`, each once.
    pub fn peers(&self, id: ClientId) -> HashSet<ClientId> {
        let mut peers = HashSet::default();
        if let Some(client) = self.clients.get(&id) {
            for name in &client.channels {
                if let Some(channel) = self.channels.get(name) {
                    peers.extend(channel.members.keys().copied());
                }
            }
        }
        peers.remove(&id);
        peers
    }

    /// Queues `line` for every peer of `id` once, and for `id` itself when
    /// `include_self`.
    pub fn send_to_peers(&self, id: ClientId, line: &Bytes, include_self: bool) {
        for peer in self.peers(id) {
            if let Some(client) = self.clients.get(&peer) {
                client.send(line);
            }
        }
        if include_self {
            if let Some(client) = self.clients.get(&id) {
                client.send(line);
            }
        }
    }

    /// Who `client` is in direct-message history: its account, casefolded,
    /// or `~` and its casefolded nick when it is not logged in (no account
    /// name starts with `~`).
    pub fn history_identity(&self, client: &Client) -> String {
        match client.account() {
            Some(account) => self.fold(account),
            None => format!("~{}", self.fold(&client.nick)),
        }
    }

    /// Announces a NICK change (`line`) to `id` and everyone sharing a
    /// channel with it, and stores it in those channels' history.
    pub fn announce_nick_change(&self, id: ClientId, line: &Bytes) {
        self.send_to_peers(id, line, true);
        if let Some(client) = self.clients.get(&id) {
            self.history
                .record_event(client.channels.iter(), "NICK", line);
        }
    }

    /// Sends `line` to everyone sharing a channel with `id` who enabled
    /// `cap`, and to `id` itself too if it did and `include_self`.
    pub fn send_to_peers_with(&self, id: ClientId, line: &Bytes, cap: Cap, include_self: bool) {
        let mut peers = self.peers(id);
        if include_self {
            peers.insert(id);
        }
        for peer in peers {
            if let Some(client) = self.clients.get(&peer).filter(|c| c.caps.has(cap)) {
                client.send(line);
            }
        }
    }

    /// A `Guest1234` nick nobody uses, for a client that must give its
    /// nick up.
    pub fn free_guest_nick(&self) -> String {
        use rand_core::RngCore;
        for _ in 0..100 {
            // Nine characters: within the shortest nick_length allowed.
            let nick = format!("Guest{}", 1_000 + rand_core::OsRng.next_u32() % 9_000);
            if !self.nicks.contains_key(&self.fold(&nick)) {
                return nick;
            }
        }
        // Unreachable in practice (most of 9,000 nicks taken): client ids
        // are never reused, but a client could be using this one.
        let mut id = self.clients.len();
        loop {
            let nick = format!("Guest-{id}");
            if !self.nicks.contains_key(&self.fold(&nick)) {
                return nick;
            }
            id += 1;
        }
    }

    /// Gives `id` the nick `new_nick` (already validated and known free).
    pub fn set_nick(&mut self, id: ClientId, new_nick: &str) {
        let folded_new = self.fold(new_nick);
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old_nick = client.set_nick(new_nick);
        let registered = client.registered;
        let old_folded = (&*old_nick != "*").then(|| self.casemapping.fold(&old_nick));
        if let Some(old_folded) = &old_folded {
            if self.nicks.get(old_folded) == Some(&id) {
                self.nicks.remove(old_folded);
            }
        }
        self.nicks.insert(folded_new.clone(), id);
        if registered && old_folded.as_deref() != Some(folded_new.as_str()) {
            if let Some(old_folded) = &old_folded {
                self.remember_whowas(id, &old_nick, old_folded);
                self.notify_monitors_offline(old_folded, &old_nick);
            }
            self.notify_monitors_online(id);
            // Members without an account are remembered by their nick.
            self.member_changed(id);
        }
    }

    /// Records a nick that is going away for WHOWAS.
    fn remember_whowas(&mut self, id: ClientId, nick: &str, folded: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let entry = WhowasEntry {
            nick: nick.to_owned(),
            user: client.user().to_string(),
            host: client.host().to_string(),
            realname: client.realname.to_string(),
            server: self.server_name.clone(),
            left_at: super::unix_now(),
        };
        self.whowas.remember(folded, entry);
    }

    /// Stops `watcher` watching the casefolded nick (the other half,
    /// `Client::monitoring`, is the caller's).
    pub fn unwatch(&mut self, folded: &str, watcher: ClientId) {
        if let Some(watchers) = self.monitors.get_mut(folded) {
            watchers.remove(&watcher);
            if watchers.is_empty() {
                self.monitors.remove(folded);
            }
        }
    }

    /// 730 to everyone watching the nick `id` now has.
    pub fn notify_monitors_online(&self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(watchers) = self.monitors.get(&self.fold(&client.nick)) else {
            return;
        };
        for watcher in watchers.iter().filter_map(|w| self.clients.get(w)) {
            let line =
                LineBuilder::numeric(&self.server_name, Response::RPL_MONONLINE, &watcher.nick)
                    .trailing(client.mask());
            watcher.send(&line);
        }
    }

    fn notify_monitors_offline(&self, folded: &str, nick: &str) {
        let Some(watchers) = self.monitors.get(folded) else {
            return;
        };
        for watcher in watchers.iter().filter_map(|w| self.clients.get(w)) {
            let line =
                LineBuilder::numeric(&self.server_name, Response::RPL_MONOFFLINE, &watcher.nick)
                    .trailing(nick);
            watcher.send(&line);
        }
    }

    /// Removes a client from the network: its peers see `QUIT :reason` once
    /// each (`reason` is shown as given: the QUIT command passes
    /// `Quit: text`), WHOWAS remembers it, watchers hear it went offline,
    /// its channels forget it, and its connection is closed after `ERROR`.
    /// Nothing happens if the client is already gone.
    ///
    /// Only the client's own connection task calls this, so a handler can
    /// count on its own client being present; other tasks ask a connection
    /// to end with [`Outbox::request_disconnect`].
    pub fn remove_client(&mut self, id: ClientId, reason: &str) {
        self.nick_claims.remove(&id);
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.registered && !self.shutting_down {
            let quit = client.line("QUIT").trailing(reason);
            self.history
                .record_event(client.channels.iter(), "QUIT", &quit);
            let nick = client.nick.clone();
            let folded = self.fold(&nick);
            // Delayed: nobody waits for a QUIT, and a mass disconnect then
            // costs each peer one write per many QUITs.
            for peer in self.peers(id) {
                if let Some(client) = self.clients.get(&peer) {
                    client.outbox.send_delayed(&quit);
                }
            }
            self.remember_whowas(id, &nick, &folded);
            self.notify_monitors_offline(&folded, &nick);
        }
        // Closed after the peers were told, so that by the time the quitter
        // sees its connection end, everyone else has the QUIT queued.
        let client = &self.clients[&id];
        let error = LineBuilder::new(None, "ERROR")
            .trailing(&format!("Closing link: {} ({reason})", client.host()));
        client.outbox.close_with(error);

        let client = self.clients.remove(&id).expect("checked above");
        if client.registered {
            self.counts.add(client.modes, -1);
        }
        if let Some(account) = client.account() {
            let folded = self.fold(account);
            self.uncount_login(&folded);
        }
        for name in &client.channels {
            remove_member(&mut self.channels, &mut self.unsaved_channels, name, id);
        }
        for name in &client.invited_to {
            if let Some(channel) = self.channels.get_mut(name) {
                channel.invited.remove(&id);
            }
        }
        for watched in &client.monitoring {
            self.unwatch(watched, id);
        }
        self.connections_per_ip.remove(client.ip);
        if client.has_nick() {
            let folded = self.fold(&client.nick);
            if self.nicks.get(&folded) == Some(&id) {
                self.nicks.remove(&folded);
            }
        }
    }

    /// Marks a client registered and counts it.
    pub fn mark_registered(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.registered {
            return;
        }
        client.registered = true;
        self.counts.add(client.modes, 1);
        self.peak_users = self.peak_users.max(self.counts.registered);
    }

    /// Changes a client's user modes: the one way to do it, so the counts
    /// stay right. Returns the modes before and after.
    pub fn update_modes(
        &mut self,
        id: ClientId,
        change: impl FnOnce(&mut UserModes),
    ) -> Option<(UserModes, UserModes)> {
        let client = self.clients.get_mut(&id)?;
        let before = client.modes;
        change(&mut client.modes);
        let after = client.modes;
        if client.registered {
            self.counts.add(before, -1);
            self.counts.add(after, 1);
        }
        Some((before, after))
    }
}
