//! Command dispatch. One table names every command with its minimum
//! parameter count and when it may be used, so `421`, `451`, `461` and `462`
//! are answered here and never in a handler.

mod account;
mod cap;
mod chanserv;
mod history;
mod info;
mod listing;
mod membership;
mod message;
mod missed;
mod mode;
mod nick_claims;
mod nickserv;
mod oper;
mod plaintext;
mod playback;
mod presence;
mod query;
mod registration;
mod replies;
mod sasl;
mod services;
mod sliced;
mod stats;
mod topic;
mod webirc;

pub use message::may_run;
pub use missed::remember_departure;
pub use nick_claims::{run as run_nick_claims, NickChecks};
pub use registration::{is_valid_nick, quit_reason};
pub use sasl::plain_fields;
pub use sliced::set_slice_entries;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use crate::proto::numeric::{Numeric, Response};
use crate::proto::{tags, LineBuilder, Message};
use crate::server::outbox::Outbox;
use crate::server::world::{ClientId, World};
use crate::server::Server;

/// Connection-local state that is not part of the shared network state.
pub struct Session {
    pub id: ClientId,
    pub outbox: Outbox,
    pub registered: bool,
    /// `CAP LS`/`REQ` was sent and `CAP END` not yet: registration waits.
    pub cap_negotiating: bool,
    /// `CAP LS 302` (or later) was sent: cap-notify stays on.
    pub cap_302: bool,
    /// What the client sent before registering that matters only until
    /// then; one pointer, and none once it is registered.
    pub prelude: Option<Box<Prelude>>,
    pub got_user: bool,
    /// OPER attempts made on this connection.
    pub oper_attempts: u8,
    /// The SASL exchange under way, if any.
    pub sasl: Option<Box<sasl::Exchange>>,
    /// Failed logins on this connection (SASL, REGISTER, NickServ).
    pub login_failures: u8,
    /// When the input being handled came in (or was let through by flood
    /// control): one clock read per batch of lines, not several per line.
    pub now: Instant,
    /// The wall clock (ms since the Unix epoch) read with `now`: the time
    /// of the messages in the batch (see `Stamp::at`).
    pub clock_ms: u64,
    /// A WEBIRC gateway was heard on this connection (accepted or not): a
    /// second WEBIRC is refused.
    pub webirc_heard: bool,
}

impl Session {
    pub fn new(id: ClientId, outbox: Outbox) -> Session {
        Session {
            id,
            outbox,
            registered: false,
            cap_negotiating: false,
            cap_302: false,
            prelude: None,
            got_user: false,
            oper_attempts: 0,
            sasl: None,
            login_failures: 0,
            now: Instant::now(),
            clock_ms: tags::clock_ms(),
            webirc_heard: false,
        }
    }

    /// Input came in (or was let through): reads the clocks for it.
    pub fn mark_input(&mut self) {
        self.now = Instant::now();
        self.clock_ms = tags::clock_ms();
    }
}

/// What a client sent before registering that matters only until then.
#[derive(Default)]
pub struct Prelude {
    /// The password given with PASS, checked when registration completes.
    pub pass: Option<Box<str>>,
    /// The nick the client's last NICK asked for, when it was refused: what
    /// `REGISTER *` names while the client has no nick.
    pub refused_nick: Option<Box<str>>,
}

impl Session {
    /// The prelude, made when first needed.
    pub fn prelude(&mut self) -> &mut Prelude {
        self.prelude.get_or_insert_default()
    }

    /// The nick the client's last NICK asked for, if it was refused.
    pub fn refused_nick(&self) -> Option<&str> {
        self.prelude.as_ref()?.refused_nick.as_deref()
    }
}

/// What the connection does after a command.
pub enum Flow {
    Continue,
    /// The client leaves with this reason, shown to others as given.
    Quit(String),
    /// Slow work (Argon2, the database) that must finish before the next
    /// line is read, so that a client's commands still take effect in
    /// order. What it returns is applied to the session when it is done.
    Wait(Pin<Box<dyn Future<Output = Option<SessionUpdate>> + Send>>),
}

/// A change slow work makes to the session it ran for.
pub type SessionUpdate = Box<dyn FnOnce(&mut Session) + Send>;

pub struct Ctx<'a> {
    pub server: &'a Arc<Server>,
    pub session: &'a mut Session,
}

type Handler = fn(&mut Ctx<'_>, &Message<'_>) -> Flow;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// Before and after registration.
    Always,
    /// Only to register: afterwards `462`.
    BeforeRegistration,
    /// Only once registered: before, `451`.
    Registered,
}

struct CommandSpec {
    name: &'static str,
    /// `name` as a [`command_key`], what the lookup compares.
    key: u128,
    min_params: usize,
    allowed: Allowed,
    handler: Handler,
}

const fn spec(
    name: &'static str,
    min_params: usize,
    allowed: Allowed,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        key: match command_key(name.as_bytes()) {
            Some(key) => key,
            None => panic!("a command name is longer than MAX_COMMAND_LEN"),
        },
        min_params,
        allowed,
        handler,
    }
}

/// Longer than any command in the table.
const MAX_COMMAND_LEN: usize = 16;

/// A command name, uppercased and zero-padded, as one big-endian number:
/// numbers compare in the order of the names (a shorter name's padding
/// sorts before any letter), so the lookup's comparisons are single
/// integer comparisons instead of calls to compare strings. `None` for a
/// name too long to be a command, or with a NUL (which would pass for
/// padding).
const fn command_key(name: &[u8]) -> Option<u128> {
    if name.len() > MAX_COMMAND_LEN {
        return None;
    }
    let mut key = 0u128;
    let mut i = 0;
    while i < MAX_COMMAND_LEN {
        let byte = if i < name.len() {
            if name[i] == 0 {
                return None;
            }
            name[i].to_ascii_uppercase()
        } else {
            0
        };
        key = key << 8 | byte as u128;
        i += 1;
    }
    Some(key)
}

use Allowed::{Always, BeforeRegistration, Registered};

/// Every command, sorted by name for binary search.
static COMMANDS: &[CommandSpec] = &[
    spec("ADMIN", 0, Registered, info::admin),
    spec("AUTHENTICATE", 1, Always, sasl::authenticate),
    spec("AWAY", 0, Registered, presence::away),
    spec("CAP", 1, Always, cap::cap),
    spec("CHANSERV", 1, Registered, chanserv::command),
    spec("CHATHISTORY", 1, Registered, history::chathistory),
    spec("CS", 1, Registered, chanserv::command),
    spec("INFO", 0, Registered, info::info),
    spec("INVITE", 0, Registered, membership::invite),
    spec("ISON", 1, Registered, presence::ison),
    spec("JOIN", 1, Registered, membership::join),
    spec("KICK", 2, Registered, membership::kick),
    spec("KILL", 2, Registered, oper::kill),
    spec("LIST", 0, Registered, listing::list),
    spec("LUSERS", 0, Registered, info::lusers),
    spec("MODE", 1, Registered, mode::mode),
    spec("MONITOR", 1, Registered, presence::monitor),
    spec("MOTD", 0, Registered, info::motd),
    spec("NAMES", 0, Registered, listing::names),
    spec("NICK", 0, Always, registration::nick),
    spec("NICKSERV", 1, Registered, nickserv::command),
    spec("NOTICE", 0, Registered, message::notice),
    spec("NS", 1, Registered, nickserv::command),
    spec("OPER", 2, Registered, oper::oper),
    spec("PART", 1, Registered, membership::part),
    spec("PASS", 1, BeforeRegistration, registration::pass),
    spec("PING", 1, Always, registration::ping),
    spec("PONG", 0, Always, registration::pong),
    spec("PRIVMSG", 0, Registered, message::privmsg),
    spec("QUIT", 0, Always, registration::quit),
    spec("REGISTER", 3, Always, account::register),
    spec("REHASH", 0, Registered, oper::rehash),
    spec("SETNAME", 0, Registered, presence::setname),
    spec("STATS", 1, Registered, stats::stats),
    spec("TAGMSG", 0, Registered, message::tagmsg),
    spec("TIME", 0, Registered, info::time),
    spec("TOPIC", 1, Registered, topic::topic),
    spec("USER", 4, BeforeRegistration, registration::user),
    spec("USERHOST", 1, Registered, query::userhost),
    spec("VERSION", 0, Registered, info::version),
    spec("WALLOPS", 1, Registered, oper::wallops),
    spec("WEBIRC", 4, BeforeRegistration, webirc::webirc),
    spec("WHO", 0, Registered, query::who),
    spec("WHOIS", 1, Registered, query::whois),
    spec("WHOWAS", 1, Registered, query::whowas),
];

/// Looks `command` up in any case.
fn find(command: &str) -> Option<&'static CommandSpec> {
    let key = command_key(command.as_bytes())?;
    COMMANDS
        .binary_search_by_key(&key, |spec| spec.key)
        .ok()
        .map(|i| &COMMANDS[i])
}

/// Runs one parsed message from a client.
pub fn dispatch(server: &Arc<Server>, session: &mut Session, message: &Message<'_>) -> Flow {
    let Some(spec) = find(message.command) else {
        reply_numeric(server, session, Response::ERR_UNKNOWNCOMMAND, |b| {
            b.param(&echoed_command(message.command))
                .trailing("Unknown command")
        });
        return Flow::Continue;
    };
    match (spec.allowed, session.registered) {
        (Registered, false) => {
            reply_numeric(server, session, Response::ERR_NOTREGISTERED, |b| {
                b.trailing("You have not registered")
            });
            return Flow::Continue;
        }
        (BeforeRegistration, true) => {
            reply_numeric(server, session, Response::ERR_ALREADYREGISTRED, |b| {
                b.trailing("You may not reregister")
            });
            return Flow::Continue;
        }
        _ => {}
    }
    // An empty trailing parameter counts as missing for the parameters a
    // command needs: irssi sends `JOIN :` and `USER x 0 * :` is no name.
    let present = message.params.len();
    let last_empty = message.params.last().is_some_and(|p| p.is_empty());
    if present < spec.min_params
        || (present == spec.min_params && spec.min_params > 0 && last_empty)
    {
        reply_numeric(server, session, Response::ERR_NEEDMOREPARAMS, |b| {
            b.param(spec.name).trailing("Not enough parameters")
        });
        return Flow::Continue;
    }
    let mut ctx = Ctx { server, session };
    (spec.handler)(&mut ctx, message)
}

/// Most of an unknown command that `421` repeats: a line of 512 bytes can
/// hold a command word that would take the reply past 512.
const MAX_ECHOED_COMMAND: usize = 300;

/// An unknown command as `421` names it: uppercased, and cut (at a
/// character boundary) to [`MAX_ECHOED_COMMAND`] bytes.
fn echoed_command(command: &str) -> String {
    let mut end = command.len().min(MAX_ECHOED_COMMAND);
    while !command.is_char_boundary(end) {
        end -= 1;
    }
    command[..end].to_ascii_uppercase()
}

/// Relays messages a client sent one after another, `command` to `target`
/// (which [`may_run`]) with each of `texts`: what relaying them one by one
/// would do, with each recipient's lines queued as one piece.
pub fn relay_run(
    server: &Arc<Server>,
    session: &mut Session,
    command: &str,
    target: &str,
    texts: &[&str],
) -> Flow {
    let ctx = Ctx { server, session };
    message::relay_run(&ctx, command, target, texts)
}

/// Sends a numeric to the session's own client, addressed to its nick.
pub fn reply_numeric(
    server: &Server,
    session: &Session,
    numeric: impl Numeric,
    finish: impl FnOnce(LineBuilder) -> bytes::Bytes,
) {
    let nick = server
        .world()
        .clients
        .get(&session.id)
        .map(|c| c.nick.to_string())
        .unwrap_or_else(|| "*".to_owned());
    session
        .outbox
        .send(&finish(LineBuilder::numeric(&server.name, numeric, &nick)));
}

impl Ctx<'_> {
    pub fn id(&self) -> ClientId {
        self.session.id
    }

    /// The network state, locked for this handler alone.
    pub fn world(&self) -> crate::server::WorldWrite<'_> {
        self.server.world()
    }

    /// Sends a line to this client.
    pub fn send(&self, line: &bytes::Bytes) {
        self.session.outbox.send(line);
    }

    /// Sends a numeric to this client; locks the state to read its nick.
    pub fn reply(&self, numeric: impl Numeric, finish: impl FnOnce(LineBuilder) -> bytes::Bytes) {
        reply_numeric(self.server, self.session, numeric, finish)
    }

    /// Starts a numeric for `nick` (for use while the state is locked).
    pub fn numeric(&self, nick: &str, numeric: impl Numeric) -> LineBuilder {
        LineBuilder::numeric(&self.server.name, numeric, nick)
    }
}

/// The casefolded key of the existing channel `name`, or `None` after
/// answering `403`: the precondition of every command that acts on a
/// channel.
pub fn existing_channel(ctx: &Ctx<'_>, world: &World, name: &str) -> Option<String> {
    let folded = world.fold(name);
    if world.channels.contains_key(&folded) {
        return Some(folded);
    }
    if let Some(me) = world.clients.get(&ctx.id()) {
        me.send(&replies::no_such_channel(ctx, &me.nick, name));
    }
    None
}

/// Joins `entries` with `separator` into as few lines as keep each within
/// `budget` bytes (one entry longer than that gets a line of its own), for
/// replies that list many names. An entry is a prefix and a name (`@` and
/// `alice`), written straight into the line: NAMES on a big channel would
/// otherwise allocate once per member, on every JOIN.
pub fn pack_into_lines<'e>(
    entries: impl IntoIterator<Item = (&'e str, &'e str)>,
    separator: char,
    budget: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for (prefix, name) in entries {
        let len = prefix.len() + name.len();
        if !line.is_empty() && line.len() + 1 + len > budget {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(separator);
        }
        line.push_str(prefix);
        line.push_str(name);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Splits a comma-separated target list, dropping empty items.
pub fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|item| !item.is_empty())
}

/// Whether `name` could name a channel on this server.
pub fn is_channel_name(name: &str) -> bool {
    name.starts_with(|c| crate::server::isupport::CHANTYPES.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_found_in_any_case() {
        assert!(
            COMMANDS.windows(2).all(|w| w[0].name < w[1].name),
            "binary search needs COMMANDS in order, each once"
        );
        assert!(
            COMMANDS.windows(2).all(|w| w[0].key < w[1].key),
            "keys must sort as the names do"
        );
        for spec in COMMANDS {
            assert!(spec.name.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(spec.name.len() <= MAX_COMMAND_LEN);
            let lower = spec.name.to_ascii_lowercase();
            assert_eq!(find(&lower).map(|s| s.name), Some(spec.name));
        }
        assert!(find("NOSUCHCOMMAND").is_none());
        assert!(find(&"PRIVMSG".repeat(10)).is_none());
        assert!(find("").is_none());
        assert!(find("PING\0").is_none());
        assert!(find("PIN").is_none());
        assert!(find("PINGS").is_none());
        assert!(find("PRIV_MSG").is_none() && find("X-Y").is_none());
    }

    #[test]
    fn an_unknown_command_is_echoed_uppercased_and_cut() {
        assert_eq!(echoed_command("foo_bar"), "FOO_BAR");
        assert_eq!(echoed_command("x-y"), "X-Y");
        // Two-byte characters after one byte: byte 300 falls inside one.
        let long = format!("a{}", "\u{e9}".repeat(400));
        let echoed = echoed_command(&long);
        assert_eq!(echoed.len(), MAX_ECHOED_COMMAND - 1);
        assert!(long.to_ascii_uppercase().starts_with(&echoed));
    }
}
