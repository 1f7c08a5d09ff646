//! Changing the host a client is shown with (the login host of
//! `accounts.login_host`): `CHGHOST` to those who share a channel with it
//! and enabled `chghost`, and to the others the reconnection the chghost
//! spec's fallback simulates (QUIT, then JOIN and the prefix modes in each
//! shared channel), so that every client's idea of the mask stays right.

use std::net::IpAddr;

use smallvec::SmallVec;

use super::caps::Cap;
use super::world::{line_from, Client, ClientId, World};
use crate::proto::numeric::Response;
use crate::proto::LineBuilder;

impl World {
    /// The casefolded masks bans and exceptions are matched against: the
    /// one `client` is shown with, and the one of its address when a login
    /// host hides it (a ban on an address holds behind the login host).
    pub fn folded_masks(&self, client: &Client) -> SmallVec<[String; 2]> {
        let mut masks = SmallVec::new();
        masks.push(self.fold(client.mask()));
        // Only a login replaces the address.
        if client.login.is_none() {
            return masks;
        }
        let address = address_host(client.ip);
        if client.host() != address {
            masks.push(self.fold(&format!("{}!{}@{address}", client.nick, client.user())));
        }
        masks
    }

    /// Shows client `id` with `host` from now on. A client still
    /// registering only has it set: its welcome shows it.
    pub fn change_host(&mut self, server_name: &str, id: ClientId, host: String) {
        let Some(me) = self.clients.get_mut(&id) else {
            return;
        };
        if me.host() == host {
            return;
        }
        let account = me.account();
        let chghost = line_from(me.mask(), account, "CHGHOST")
            .param(me.user())
            .last(&host);
        let quit = line_from(me.mask(), account, "QUIT").trailing("Changing hostname");
        me.set_host(&host);
        if !me.registered {
            return;
        }
        let me = &self.clients[&id];
        if me.caps.has(Cap::Chghost) {
            me.send(&chghost);
        }
        me.send(
            &LineBuilder::numeric(server_name, Response::RPL_HOSTHIDDEN, &me.nick)
                .param(me.host())
                .trailing("is now your displayed host"),
        );
        let peers = self.peers(id);
        for peer in &peers {
            if let Some(client) = self.clients.get(peer) {
                client.send(if client.caps.has(Cap::Chghost) {
                    &chghost
                } else {
                    &quit
                });
            }
        }
        self.rejoin_for_fallback(server_name, id);
    }

    /// The JOIN (and modes, and away status) that follow a simulated QUIT,
    /// for the members of `id`'s channels without `chghost`.
    fn rejoin_for_fallback(&self, server_name: &str, id: ClientId) {
        let me = &self.clients[&id];
        let away = me.away.as_ref().map(|away| me.line("AWAY").trailing(away));
        for folded in &me.channels {
            let Some(channel) = self.channels.get(folded) else {
                continue;
            };
            let [join, extended_join] = me.join_lines(&channel.name);
            let modes = channel.members.get(&id).and_then(|member| {
                let letters = match (member.status.op, member.status.voice) {
                    (true, true) => "+ov",
                    (true, false) => "+o",
                    (false, true) => "+v",
                    (false, false) => return None,
                };
                let line = LineBuilder::new(Some(server_name), "MODE")
                    .param(&channel.name)
                    .param(letters);
                Some(if letters == "+ov" {
                    line.param(&me.nick).last(&me.nick)
                } else {
                    line.last(&me.nick)
                })
            });
            for member in channel.members.keys().filter(|&&member| member != id) {
                let Some(client) = self.clients.get(member) else {
                    continue;
                };
                if client.caps.has(Cap::Chghost) {
                    continue;
                }
                client.send(if client.caps.has(Cap::ExtendedJoin) {
                    &extended_join
                } else {
                    &join
                });
                if let Some(modes) = &modes {
                    client.send(modes);
                }
                if let Some(away) = away.as_ref().filter(|_| client.caps.has(Cap::AwayNotify)) {
                    client.send(away);
                }
            }
        }
    }
}

/// The host a client at `ip` is shown with when nothing replaces it.
pub fn address_host(ip: IpAddr) -> String {
    let host = ip.to_string();
    // A host must be able to stand as a middle parameter (`::1` cannot).
    if host.starts_with(':') {
        format!("0{host}")
    } else {
        host
    }
}
