//! The server's metrics, served as Prometheus text by the HTTP door's
//! `/metrics` (`src/http/metrics.rs`).
//!
//! Three kinds of figures:
//! - **Counters the code bumps** as things happen, through the functions
//!   below (`metrics::delivered(n)`, `metrics::refused(Refusal::Full)`…).
//!   They are process-wide statics: one server runs per process, and a
//!   call site needs no handle. (Tests that run several servers in one
//!   process see their sum.)
//! - **Gauges read at scrape time** from the server's state (clients,
//!   channels, accounts online, the history writer's backlog), under one
//!   short shared hold of the state lock: nothing on the message path
//!   keeps them.
//! - **Process figures** (CPU, memory, file descriptors), read from the
//!   kernel at scrape time, off the runtime's threads.
//!
//! The counters on the fan-out path (messages relayed, deliveries, bytes
//! written) cost one uncontended atomic add per message or per write,
//! never one per recipient: each thread adds to a shard of its own, a
//! cache line no other thread writes, and a scrape sums the shards (see
//! [`hot`]).

mod histogram;
mod hot;
pub mod process;
mod text;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub use histogram::Histogram;
use hot::Hot;
pub use text::{render, State};

use crate::server::Server;

/// Everything, as `/metrics` serves it: the server's state read under one
/// shared hold of its lock, the process's figures read on the blocking
/// pool.
pub async fn scrape(server: &Server) -> String {
    let process = tokio::task::spawn_blocking(process::read)
        .await
        .unwrap_or_default();
    render(&State::read(server), &process)
}

impl State {
    /// The gauges of `server`'s state: one short shared hold of its lock,
    /// counts the state keeps, nothing walked.
    pub fn read(server: &Server) -> State {
        let start_time_seconds = server
            .created
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let world = server.world_shared();
        State {
            registered_clients: world.counts.registered as u64,
            channels: world.channels.len() as u64,
            accounts_online: world.logins.len() as u64,
            history_queue: world.history.backlog(),
            history_backlog_dropped: world.history.dropped(),
            start_time_seconds,
        }
    }
}

/// A command whose messages are relayed to others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    Privmsg,
    Notice,
    Tagmsg,
}

/// Messages relayed: `count` messages of `command`, each to one target (a
/// channel or a nick). A message to two targets counts twice.
#[inline]
pub fn relayed(command: Relayed, count: usize) {
    let counter = match command {
        Relayed::Privmsg => Hot::RelayedPrivmsg,
        Relayed::Notice => Hot::RelayedNotice,
        Relayed::Tagmsg => Hot::RelayedTagmsg,
    };
    hot::add(counter, count as u64);
}

/// Relayed lines queued for recipients (a channel message to 200 members
/// is 199 deliveries; an echo to the sender is not one). Call once per
/// fan-out with the total, not once per recipient.
#[inline]
pub fn delivered(count: usize) {
    hot::add(Hot::Deliveries, count as u64);
}

/// Bytes written to clients' sockets: to be called by the write path, once
/// per successful write (or gathered write) with the bytes the kernel
/// took, whatever the transport (for TLS, the plaintext bytes handed to
/// the session; the counter's help says "bytes of IRC lines").
#[inline]
pub fn bytes_written(count: usize) {
    hot::add(Hot::BytesWritten, count as u64);
}

/// How a connection reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
    WebSocket,
}

impl Transport {
    const ALL: [Transport; 3] = [Transport::Plain, Transport::Tls, Transport::WebSocket];

    fn label(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "tls",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Why a new connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_clients` reached.
    Full,
    /// `limits.max_clients_per_ip` reached for its address.
    PerAddress,
    /// The address is banned from the server.
    Banned,
}

impl Refusal {
    const ALL: [Refusal; 3] = [Refusal::Full, Refusal::PerAddress, Refusal::Banned];

    fn label(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::PerAddress => "per_address",
            Refusal::Banned => "banned",
        }
    }
}

/// How a client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// SASL PLAIN.
    Plain,
    /// SASL SCRAM-SHA-256.
    ScramSha256,
    /// `/msg NickServ IDENTIFY`.
    NickServ,
    /// SASL EXTERNAL, with a client certificate.
    External,
}

impl Mechanism {
    const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::NickServ,
        Mechanism::External,
    ];

    fn label(self) -> &'static str {
        match self {
            Mechanism::Plain => "plain",
            Mechanism::ScramSha256 => "scram-sha-256",
            Mechanism::NickServ => "nickserv",
            Mechanism::External => "external",
        }
    }
}

/// The counters bumped outside the fan-out path: a plain atomic each.
struct Counters {
    /// Connections open now, by transport (a gauge).
    open: [AtomicU64; 3],
    accepted: [AtomicU64; 3],
    refused: [AtomicU64; 3],
    /// By mechanism, then success (0) or failure (1).
    logins: [[AtomicU64; 2]; 4],
    registrations: AtomicU64,
    account_registrations: AtomicU64,
    sendq_disconnects: AtomicU64,
    flood_delayed: AtomicU64,
    tls_handshake_failures: AtomicU64,
    database_errors: AtomicU64,
    history_rows_written: AtomicU64,
    history_rows_dropped: AtomicU64,
    http_requests: AtomicU64,
    http_refused: AtomicU64,
}

static COUNTERS: Counters = Counters {
    open: [const { AtomicU64::new(0) }; 3],
    accepted: [const { AtomicU64::new(0) }; 3],
    refused: [const { AtomicU64::new(0) }; 3],
    logins: [const { [const { AtomicU64::new(0) }; 2] }; 4],
    registrations: AtomicU64::new(0),
    account_registrations: AtomicU64::new(0),
    sendq_disconnects: AtomicU64::new(0),
    flood_delayed: AtomicU64::new(0),
    tls_handshake_failures: AtomicU64::new(0),
    database_errors: AtomicU64::new(0),
    history_rows_written: AtomicU64::new(0),
    history_rows_dropped: AtomicU64::new(0),
    http_requests: AtomicU64::new(0),
    http_refused: AtomicU64::new(0),
};

/// How long one history transaction took, from its start to its commit.
static HISTORY_COMMIT: Histogram = Histogram::new();

/// A connection accepted by a listener of `transport`, before any limit
/// is applied (refused ones included).
pub fn accepted(transport: Transport) {
    COUNTERS.accepted[transport as usize].fetch_add(1, Relaxed);
}

/// A client's connection of `transport` begins (its wire is made).
pub fn connection_opened(transport: Transport) {
    COUNTERS.open[transport as usize].fetch_add(1, Relaxed);
}

/// A client's connection of `transport` is gone (its wire is dropped).
pub fn connection_closed(transport: Transport) {
    COUNTERS.open[transport as usize].fetch_sub(1, Relaxed);
}

/// A new connection turned away.
pub fn refused(reason: Refusal) {
    COUNTERS.refused[reason as usize].fetch_add(1, Relaxed);
}

/// A password checked: `success` if it logged the client in.
pub fn login(mechanism: Mechanism, success: bool) {
    COUNTERS.logins[mechanism as usize][usize::from(!success)].fetch_add(1, Relaxed);
}

/// A connection completed its registration (NICK, USER, CAP END).
pub fn registered() {
    COUNTERS.registrations.fetch_add(1, Relaxed);
}

/// An account was created (REGISTER or NickServ REGISTER).
pub fn account_registered() {
    COUNTERS.account_registrations.fetch_add(1, Relaxed);
}

/// A client cut off because its sendq overflowed.
pub fn sendq_exceeded() {
    COUNTERS.sendq_disconnects.fetch_add(1, Relaxed);
}

/// A line held back by flood control.
pub fn flood_delayed() {
    COUNTERS.flood_delayed.fetch_add(1, Relaxed);
}

/// A TLS handshake that did not complete (bad client hello, no common
/// cipher, timeout, a client that went away during it).
pub fn tls_handshake_failed() {
    COUNTERS.tls_handshake_failures.fetch_add(1, Relaxed);
}

/// A database operation that failed (counted where an error from SQLite
/// becomes a `StoreError`, so each failure counts once).
pub fn database_error() {
    COUNTERS.database_errors.fetch_add(1, Relaxed);
}

/// A history transaction committed: `rows` rows, in `took`.
pub fn history_committed(rows: usize, took: Duration) {
    COUNTERS
        .history_rows_written
        .fetch_add(rows as u64, Relaxed);
    HISTORY_COMMIT.observe(took);
}

/// History rows given up after they were queued (a batch the database
/// would not take after its retries). Rows refused because the backlog
/// was full are counted by the history log itself and read at scrape
/// time (`HistoryLog::dropped`): do not count them here too.
pub fn history_rows_dropped(rows: usize) {
    COUNTERS
        .history_rows_dropped
        .fetch_add(rows as u64, Relaxed);
}

/// An HTTP request answered by the HTTP door.
pub fn http_request() {
    COUNTERS.http_requests.fetch_add(1, Relaxed);
}

/// An HTTP connection turned away because the door had its
/// `http.max_connections`.
pub fn http_refused() {
    COUNTERS.http_refused.fetch_add(1, Relaxed);
}
