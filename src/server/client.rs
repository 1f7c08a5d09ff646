//! A client as the network state knows it: its identity, modes,
//! channels and capabilities, and the lines it is the source of.

use std::net::IpAddr;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::caps::Caps;
use super::host::address_host;
use super::maps::{HashSet, SparseSet};
use super::outbox::Outbox;
use super::world::ClientId;
use crate::proto::serialize::escape_tag_value_into;
use crate::proto::tags::{self, Stamp};
use crate::proto::LineBuilder;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UserModes {
    pub invisible: bool,
    pub oper: bool,
    pub wallops: bool,
}

impl UserModes {
    pub fn describe(self) -> String {
        let mut out = String::from("+");
        for (on, c) in [(self.invisible, 'i'), (self.oper, 'o'), (self.wallops, 'w')] {
            if on {
                out.push(c);
            }
        }
        out
    }
}

#[derive(Debug)]
pub struct Client {
    pub id: ClientId,
    /// `*` until the client picks one.
    pub nick: Box<str>,
    pub user: Box<str>,
    pub realname: Box<str>,
    pub host: Box<str>,
    pub ip: IpAddr,
    /// `nick!user@host`, kept current so each message needs no formatting
    /// of its source.
    pub mask: Box<str>,
    pub registered: bool,
    pub modes: UserModes,
    pub away: Option<Box<str>>,
    /// Casefolded names of the channels the client is in.
    pub channels: HashSet<String>,
    /// Casefolded names of the channels whose `invited` set holds this
    /// client, so leaving needs no scan of every channel.
    pub invited_to: SparseSet,
    /// Casefolded nicks the client watches with MONITOR.
    pub monitoring: SparseSet,
    pub caps: Caps,
    /// The account logged in to (its display name).
    pub account: Option<Box<str>>,
    /// That account's uid: with the name, what identifies it, since an
    /// account dropped and registered again under the same name is
    /// someone else's.
    pub account_uid: i64,
    /// When its account's previous connection ended (ms; 0: unknown), so
    /// that join replay shows only what it has not seen.
    pub last_seen_ms: u64,
    pub outbox: Outbox,
    /// Unix time of connection.
    pub signon: u64,
    /// Last time the client sent a message, for WHOIS idle time.
    pub last_active: Instant,
}

impl Client {
    pub fn new(id: ClientId, ip: IpAddr, outbox: Outbox, signon: u64) -> Client {
        // An IPv4 client reaching an IPv6 socket is shown as itself.
        let ip = ip.to_canonical();
        let host = address_host(ip);
        Client {
            id,
            nick: "*".into(),
            user: "".into(),
            realname: "".into(),
            mask: "".into(),
            host: host.into(),
            ip,
            registered: false,
            modes: UserModes::default(),
            away: None,
            channels: HashSet::default(),
            invited_to: SparseSet::default(),
            monitoring: SparseSet::default(),
            caps: Caps::default(),
            account: None,
            account_uid: 0,
            last_seen_ms: 0,
            outbox,
            signon,
            last_active: Instant::now(),
        }
    }

    pub fn has_nick(&self) -> bool {
        &*self.nick != "*"
    }

    pub fn update_mask(&mut self) {
        self.mask = format!("{}!{}@{}", self.nick, self.user, self.host).into();
    }

    pub fn send(&self, line: &Bytes) {
        self.outbox.send(line);
    }

    /// A line from this client, stamped with `time` and `msgid`, and with
    /// the `account` tag when it is logged in. Each recipient gets the tags
    /// of the capabilities it enabled (see `Outbox::send`).
    pub fn line(&self, command: &str) -> LineBuilder {
        line_from(&self.mask, self.account.as_deref(), command)
    }

    /// Its JOIN to `channel`, plain and in the extended-join form (with the
    /// account, or `*`, and the realname): one event, one msgid.
    pub fn join_lines(&self, channel: &str) -> [Bytes; 2] {
        let stamp = Stamp::now();
        let account = self.account.as_deref();
        let join = || line_stamped(&self.mask, account, "JOIN", stamp);
        [
            join().last(channel),
            join()
                .param(channel)
                .param(account.unwrap_or("*"))
                .trailing(&self.realname),
        ]
    }
}

/// A line from the client `mask`, logged in to `account` if any: see
/// [`Client::line`]. (Messages are built as a
/// [`StampedLine`](super::stamped::StampedLine) instead, which formats the
/// tags only for recipients that take them.)
pub fn line_from(mask: &str, account: Option<&str>, command: &str) -> LineBuilder {
    line_stamped(mask, account, command, Stamp::now())
}

/// [`line_from`] with a given stamp, for the forms of one event.
fn line_stamped(mask: &str, account: Option<&str>, command: &str, stamp: Stamp) -> LineBuilder {
    // Most of the line is tags: room for them and a message.
    let mut buf = BytesMut::with_capacity(256);
    buf.put_slice(b"@time=");
    buf.put_slice(&tags::format_time(stamp.time_ms));
    buf.put_slice(b";msgid=");
    buf.put_slice(&stamp.id.encode());
    if let Some(account) = account {
        buf.put_slice(b";account=");
        escape_tag_value_into(account, &mut buf);
    }
    buf.put_u8(b' ');
    LineBuilder::after_tags(buf, Some(mask), command)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client holds one, boxed: at 256 bytes or less it takes the
    /// allocator's 256-byte class. It took 384 before MONITOR and
    /// invitations moved into sparse sets, 320 before its strings became
    /// `Box<str>` (no capacity to keep: they are replaced, never grown).
    #[test]
    fn a_client_stays_small() {
        let size = std::mem::size_of::<Client>();
        assert!(size <= 256, "a client takes {size} bytes");
    }
}
