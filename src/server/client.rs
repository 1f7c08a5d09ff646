//! A client as the network state knows it: its identity, modes,
//! channels and capabilities, and the lines it is the source of.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

use super::caps::Caps;
use super::host::address_host;
use super::maps::{HashSet, SparseNames, SparseSet};
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
    /// `+Z`: the connection is encrypted. Set by the server, never by the
    /// user.
    pub secure: bool,
}

impl UserModes {
    pub fn describe(self) -> String {
        let mut out = String::from("+");
        let modes = [
            (self.invisible, 'i'),
            (self.oper, 'o'),
            (self.wallops, 'w'),
            (self.secure, 'Z'),
        ];
        for (on, c) in modes {
            if on {
                out.push(c);
            }
        }
        out
    }
}

/// A client's login to an account.
#[derive(Debug)]
pub struct LoggedIn {
    /// The account's display name.
    pub name: Box<str>,
    /// The account's uid: with the name, what identifies it, since an
    /// account dropped and registered again under the same name is
    /// someone else's.
    pub uid: i64,
    /// When the account's previous connection ended (ms; 0: unknown), so
    /// that join replay shows only what it has not seen.
    pub last_seen_ms: u64,
}

#[derive(Debug)]
pub struct Client {
    pub id: ClientId,
    /// `*` until the client picks one. Changed only through
    /// [`Client::set_nick`], which keeps `mask` current.
    pub nick: Box<str>,
    pub realname: Box<str>,
    pub ip: IpAddr,
    /// `nick!user@host`, kept current so each message needs no formatting
    /// of its source. The username and host are read out of it, not kept
    /// again: every client holds one.
    mask: Box<str>,
    /// Where the username and the host start in `mask`. A line is at most
    /// 512 bytes, so a nick and a username are far shorter than `u16::MAX`.
    /// Kept as fields of their own rather than a [`Mask`]: packed with the
    /// other small fields they keep `Client` at 192 bytes, where a `Mask`
    /// (24 bytes with its padding) would take it to 200.
    user_at: u16,
    host_at: u16,
    pub registered: bool,
    pub modes: UserModes,
    pub away: Option<Box<str>>,
    /// Casefolded names of the channels the client is in.
    pub channels: HashSet<String>,
    /// Casefolded names of the channels whose `invited` set holds this
    /// client, so leaving needs no scan of every channel.
    pub invited_to: SparseSet,
    /// The nicks the client watches with MONITOR, as it added them, keyed
    /// casefolded.
    pub monitoring: SparseNames,
    pub caps: Caps,
    /// The account logged in to, if any: one pointer in the clients that
    /// are not.
    pub login: Option<Box<LoggedIn>>,
    pub outbox: Outbox,
    /// Unix time of connection.
    pub signon: u64,
    /// When the client last sent a message (ms since the Unix epoch), for
    /// WHOIS idle time.
    /// Atomic: a private message sets it under the state's shared lock.
    pub last_active_ms: AtomicU64,
}

impl Client {
    pub fn new(id: ClientId, ip: IpAddr, outbox: Outbox, signon: u64) -> Client {
        // An IPv4 client reaching an IPv6 socket is shown as itself.
        let ip = ip.to_canonical();
        let mut client = Client {
            id,
            nick: "*".into(),
            realname: "".into(),
            mask: "".into(),
            user_at: 0,
            host_at: 0,
            ip,
            registered: false,
            modes: UserModes {
                secure: outbox.wire().is_secure(),
                ..UserModes::default()
            },
            away: None,
            channels: HashSet::default(),
            invited_to: SparseSet::default(),
            monitoring: SparseNames::default(),
            caps: Caps::default(),
            login: None,
            outbox,
            signon,
            last_active_ms: AtomicU64::new(signon.saturating_mul(1000)),
        };
        client.set_host(&address_host(ip));
        client
    }

    /// The account logged in to (its display name).
    pub fn account(&self) -> Option<&str> {
        self.login.as_deref().map(|login| &*login.name)
    }

    /// When its account's previous connection ended (ms; 0: unknown or
    /// not logged in).
    pub fn last_seen_ms(&self) -> u64 {
        self.login.as_ref().map_or(0, |login| login.last_seen_ms)
    }

    /// Seconds since it last sent a message.
    pub fn idle_secs(&self) -> u64 {
        let last_active_ms = self.last_active_ms.load(Ordering::Relaxed);
        tags::clock_ms().saturating_sub(last_active_ms) / 1000
    }

    pub fn has_nick(&self) -> bool {
        &*self.nick != "*"
    }

    /// `nick!user@host`.
    pub fn mask(&self) -> &str {
        &self.mask
    }

    /// The username given with USER (empty before it).
    pub fn user(&self) -> &str {
        let (user_at, host_at) = (usize::from(self.user_at), usize::from(self.host_at));
        self.mask
            .get(user_at..host_at.saturating_sub(1))
            .unwrap_or_default()
    }

    /// The host it is shown with.
    pub fn host(&self) -> &str {
        self.mask
            .get(usize::from(self.host_at)..)
            .unwrap_or_default()
    }

    /// Gives it `nick`; returns the one it had.
    pub fn set_nick(&mut self, nick: &str) -> Box<str> {
        let mask = Mask::of(nick, self.user(), self.host());
        self.take_mask(mask);
        std::mem::replace(&mut self.nick, nick.into())
    }

    pub fn set_user(&mut self, user: &str) {
        self.take_mask(Mask::of(&self.nick, user, self.host()));
    }

    pub fn set_host(&mut self, host: &str) {
        self.take_mask(Mask::of(&self.nick, self.user(), host));
    }

    fn take_mask(&mut self, mask: Mask) {
        (self.mask, self.user_at, self.host_at) = (mask.text, mask.user_at, mask.host_at);
    }

    pub fn send(&self, line: &Bytes) {
        self.outbox.send(line);
    }

    /// A line from this client, stamped with `time` and `msgid`, and with
    /// the `account` tag when it is logged in. Each recipient gets the tags
    /// of the capabilities it enabled (see `Outbox::send`).
    pub fn line(&self, command: &str) -> LineBuilder {
        line_from(self.mask(), self.account(), command)
    }

    /// Its JOIN to `channel`, plain and in the extended-join form (with the
    /// account, or `*`, and the realname): one event, one msgid.
    pub fn join_lines(&self, channel: &str) -> [Bytes; 2] {
        let stamp = Stamp::now();
        let account = self.account();
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

/// `nick!user@host`, and where its username and host start.
struct Mask {
    text: Box<str>,
    user_at: u16,
    host_at: u16,
}

impl Mask {
    /// Built from parts borrowed from the mask it replaces, which is why
    /// it is made apart from the client.
    fn of(nick: &str, user: &str, host: &str) -> Mask {
        let user_at = nick.len() + 1;
        let host_at = user_at + user.len() + 1;
        Mask {
            text: format!("{nick}!{user}@{host}").into(),
            user_at: u16::try_from(user_at).unwrap_or(u16::MAX),
            host_at: u16::try_from(host_at).unwrap_or(u16::MAX),
        }
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

    /// Every client holds one, boxed: at 192 bytes or less it takes the
    /// allocator's 192-byte class. It took 384 before MONITOR and
    /// invitations moved into sparse sets, 320 before its strings became
    /// `Box<str>` (no capacity to keep: they are replaced, never grown),
    /// 256 before the username and host were read out of the mask and the
    /// login fields moved into one box.
    #[test]
    fn a_client_stays_small() {
        let size = std::mem::size_of::<Client>();
        assert!(size <= 192, "a client takes {size} bytes");
    }

    #[tokio::test]
    async fn the_mask_follows_the_nick_the_username_and_the_host() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (socket, _) = listener.accept().await.unwrap();
        let outbox = Outbox::new(1 << 20, socket);
        let mut client = Client::new(1, "192.0.2.7".parse().unwrap(), outbox, 1_700_000_000);
        assert_eq!(client.mask(), "*!@192.0.2.7");
        assert_eq!((client.user(), client.host()), ("", "192.0.2.7"));
        assert_eq!(&*client.set_nick("ana"), "*");
        client.set_user("~ana");
        assert_eq!(client.mask(), "ana!~ana@192.0.2.7");
        client.set_host("ana.users.example");
        assert_eq!(&*client.set_nick("anabel"), "ana");
        assert_eq!(client.mask(), "anabel!~ana@ana.users.example");
        assert_eq!(
            (client.user(), client.host()),
            ("~ana", "ana.users.example")
        );
    }
}
