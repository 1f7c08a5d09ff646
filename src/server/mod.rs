//! The running server: listeners, connections, shared state and shutdown.

pub mod batch;
pub mod caps;
pub mod channel;
pub mod client;
mod connection;
pub mod flood;
pub mod flush;
pub mod history;
pub mod host;
pub mod isupport;
mod keepalive;
pub mod labeled;
mod listeners;
pub mod lock_timing;
pub mod maps;
pub mod outbox;
pub mod per_address;
pub mod persist;
pub mod proxy;
pub mod reload;
pub mod restore;
mod second_writer;
pub mod settings;
pub mod stamped;
pub mod unsaved;
pub mod whowas;
pub mod wire;
pub mod world;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::accounts::Accounts;
use crate::config::Config;
use crate::password::PasswordChecker;
use crate::store::Store;
use flush::DelayedWrites;
use lock_timing::WorldLock;
pub use lock_timing::{WorldRead, WorldWrite};
use world::World;

/// TLS handshakes under way at once: at 10 s each at most, enough for a
/// thousand clients a second to connect; more are closed unanswered.
const MAX_TLS_HANDSHAKES: usize = 10_000;

/// How long a shutdown waits for clients to take their last lines.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Everything the connections share.
pub struct Server {
    /// Swapped whole by REHASH and SIGHUP; read with [`Server::config`].
    settings: arc_swap::ArcSwap<settings::Settings>,
    pub name: String,
    // One lock for the network state. Critical sections are short and
    // synchronous (no `.await` inside), so a blocking lock is the right
    // tool. Whatever changes the state or fans out to a channel holds it
    // alone, which gives every channel one order of events; private
    // messages only read it, and share it (see `commands/message.rs`).
    // Each hold can be timed (see `lock_timing.rs`).
    world: WorldLock,
    pub created: SystemTime,
    pub version: &'static str,
    pub passwords: PasswordChecker,
    pub accounts: Accounts,
    /// The certificate TLS listeners serve, when any listen.
    pub tls: arc_swap::ArcSwapOption<crate::tls::Acceptor>,
    /// Certificates from an ACME CA (`[tls.acme]`), and the http-01
    /// challenges the HTTP door answers for it.
    pub acme: Option<Arc<crate::tls::acme::Acme>>,
    /// Where the configuration came from, for a reload to read again.
    source: Option<crate::config::ConfigSource>,
    listeners: listeners::Listeners,
    /// TLS handshakes under way, bounded (see `listeners.rs`).
    handshakes: Arc<tokio::sync::Semaphore>,
    /// Every task of the server's, for the listeners a reload opens.
    tracker: TaskTracker,
    /// Writes registered channels' state in the background.
    pub channel_saver: persist::ChannelSaver,
    channel_writer: Mutex<Option<persist::ChannelWriter>>,
    history_writer: Mutex<Option<history::HistoryWriter>>,
    /// The history writer's counts, for the metrics.
    history_stats: Arc<history::HistoryStats>,
    /// Lines that may wait a moment for company (see `Outbox::send_delayed`).
    pub delayed_writes: DelayedWrites,
    /// Nicks waiting to be checked against the accounts that own nicks.
    pub nick_checks: crate::commands::NickChecks,
    /// The port `sts` sends plaintext clients to: `tls.sts_port`, or the
    /// first TLS listener's once bound.
    first_tls_port: std::sync::OnceLock<u16>,
    next_client_id: AtomicU64,
    connections: AtomicUsize,
    shutdown: CancellationToken,
}

impl Server {
    /// Computes the password decoys: call it off the async runtime.
    pub fn new(config: Config, store: Store) -> anyhow::Result<Server> {
        Server::with_source(config, None, store)
    }

    /// [`Server::new`], remembering where the configuration came from so
    /// that REHASH and SIGHUP can read it again.
    pub fn with_source(
        config: Config,
        source: Option<crate::config::ConfigSource>,
        store: Store,
    ) -> anyhow::Result<Server> {
        let motd_file = config.server.motd_file.clone();
        let settings = settings::Settings::load(config.clone())
            .with_context(|| format!("cannot read server.motd_file {motd_file:?}"))?;
        let acme = config
            .tls
            .acme
            .clone()
            .map(|acme| Arc::new(crate::tls::acme::Acme::new(acme, &config.server.data_dir)));
        let tls = if let Some(acme) = &acme {
            // No files: ACME serves into it, starting with what it stored
            // last time, before any listener opens.
            let acceptor = crate::tls::Acceptor::empty();
            acme.serve_stored(&acceptor);
            Some(Arc::new(acceptor))
        } else if config.serves_tls() {
            let files = crate::tls::CertFiles {
                cert: config.tls.cert_file.clone(),
                key: config.tls.key_file.clone(),
            };
            Some(Arc::new(
                crate::tls::Acceptor::load(files).context("cannot serve TLS")?,
            ))
        } else {
            None
        };
        let (channel_saver, channel_writer) = persist::channel_saver();
        let (history, history_writer) =
            history::history_log(&config.history, config.server.casemapping);
        let history_stats = history.stats().clone();
        let mut world = World::new(
            config.server.casemapping,
            config.server.name.clone(),
            config.limits.whowas_entries,
            history,
            unsaved::UnsavedChannels::new(config.channels.restart_wait_secs > 0),
        );
        world.connections_per_ip =
            per_address::ConnectionsPerAddress::new(config.limits.ipv6_prefix_len);
        Ok(Server {
            name: config.server.name.clone(),
            world: WorldLock::new(world),
            created: SystemTime::now(),
            version: concat!("parlor-", env!("CARGO_PKG_VERSION")),
            passwords: PasswordChecker::new(config.oper.first().map(|o| o.password_hash.as_str())),
            accounts: Accounts::new(store, &config),
            tls: arc_swap::ArcSwapOption::new(tls),
            acme,
            source,
            listeners: listeners::Listeners::default(),
            handshakes: Arc::new(tokio::sync::Semaphore::new(MAX_TLS_HANDSHAKES)),
            tracker: TaskTracker::new(),
            channel_saver,
            channel_writer: Mutex::new(Some(channel_writer)),
            history_writer: Mutex::new(Some(history_writer)),
            history_stats,
            delayed_writes: DelayedWrites::default(),
            nick_checks: Default::default(),
            first_tls_port: std::sync::OnceLock::new(),
            next_client_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            settings: arc_swap::ArcSwap::from_pointee(settings),
        })
    }

    /// The settings now in force: the configuration's keys
    /// (`server.config().limits`), the MOTD and the ISUPPORT tokens. Hold
    /// it for one piece of work, not across an `.await`.
    pub fn config(&self) -> arc_swap::Guard<Arc<settings::Settings>> {
        self.settings.load()
    }

    /// Where the configuration is read from, as an operator is told.
    pub fn config_source_name(&self) -> String {
        self.source
            .as_ref()
            .map_or_else(|| "in-process".to_owned(), |s| s.describe())
    }

    /// Puts new settings in force.
    pub(crate) fn set_settings(&self, settings: settings::Settings) {
        self.settings.store(Arc::new(settings));
    }

    /// Resolves when the server starts shutting down.
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await
    }

    /// `name` folded with the network's casemapping.
    pub fn fold(&self, name: &str) -> String {
        self.config().server.casemapping.fold(name)
    }

    /// Locks the network state. Never hold the guard across an `.await`.
    pub fn world(&self) -> WorldWrite<'_> {
        self.world.write()
    }

    /// Locks the network state for reading only: for work that changes
    /// nothing in it and needs no order with other readers.
    pub fn world_shared(&self) -> WorldRead<'_> {
        self.world.read()
    }

    /// The port `sts` sends plaintext clients to, once TLS listens.
    pub fn sts_port(&self) -> Option<u16> {
        match self.config().tls.sts_port {
            0 => self.first_tls_port.get().copied(),
            port => Some(port),
        }
    }

    /// How long the state lock has been held, if timing is on.
    pub fn lock_timing(&self) -> Option<&lock_timing::Timing> {
        self.world.timing()
    }

    /// What the history writer has done: queue depth, lines written and
    /// dropped, failed writes, commit latency.
    pub fn history_stats(&self) -> &history::HistoryStats {
        &self.history_stats
    }
}

/// A server started in this process.
pub struct ServerHandle {
    server: Arc<Server>,
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    http: crate::http::HttpDoor,
    tracker: TaskTracker,
    writer_stop: CancellationToken,
    channel_writer: Option<tokio::task::JoinHandle<()>>,
    history_writer: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The TLS addresses actually bound (port 0 resolved).
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The running server, for tests and admin commands in this process.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// The HTTP door's `http.listen` addresses actually bound.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        self.http.local_addrs()
    }

    /// The HTTP door's `http.tls_listen` addresses actually bound.
    pub fn https_addrs(&self) -> &[SocketAddr] {
        self.http.https_addrs()
    }

    /// The HTTP door's `http.metrics_listen` addresses actually bound.
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        self.http.metrics_addrs()
    }

    /// Stops accepting, tells every client `ERROR`, and waits (bounded) for
    /// their queued output to be written.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        self.server.shutdown.cancel();
        // No new HTTP requests; those under way are answered.
        self.http.stop();
        {
            let mut world = self.server.world();
            world.shutting_down = true;
            // Before anyone leaves: the next start brings every channel
            // back as it is now.
            restore::save_all(&mut world, &self.server.channel_saver);
            // Connections wait on their outbox, not on the token: a waiter
            // on the token would make every idle connection bigger.
            for client in world.clients.values() {
                client
                    .outbox
                    .request_disconnect(connection::SHUTDOWN_REASON.to_owned());
            }
        }
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_FLUSH, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("some clients did not take their last lines in time");
        }
        self.writer_stop.cancel();
        if let Some(writer) = self.channel_writer.take() {
            let _ = writer.await;
        }
        if let Some(writer) = self.history_writer.take() {
            let _ = writer.await;
        }
        // Its handlers use the store.
        self.http.wait(SHUTDOWN_FLUSH).await;
        self.server.accounts.store().close().await;
    }
}

/// Binds every listen address, creates the data directory and starts
/// accepting connections.
pub async fn spawn(config: Config) -> anyhow::Result<ServerHandle> {
    spawn_with_source(config, None).await
}

/// [`spawn`] with where the configuration came from, so that REHASH and
/// SIGHUP can read it again.
pub async fn spawn_with_source(
    config: Config,
    source: Option<crate::config::ConfigSource>,
) -> anyhow::Result<ServerHandle> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let store = Store::open(&config.server.data_dir).await?;
    // Server::new hashes the password decoys: keep it off the runtime.
    let server = Arc::new(
        tokio::task::spawn_blocking(move || Server::with_source(config, source, store)).await??,
    );
    let tracker = server.tracker.clone();
    let store = server.accounts.store();
    let registered = store.registered_channels().await?;
    let mut accounts = std::collections::HashMap::new();
    for channel in &registered {
        let named = std::iter::once(&channel.founder).chain(channel.access.iter().map(|(a, _)| a));
        for account in named {
            if let Some(found) = store.account(account).await? {
                accounts.insert(account.clone(), found.uid);
            }
        }
    }
    let replay = server.world().history.replay.clone();
    let recent_lines = history::load(store, &replay).await?;
    let restart_wait = Duration::from_secs(server.config().channels.restart_wait_secs);
    let saved_channels = if restart_wait.is_zero() {
        store.clear_channel_snapshots().await?;
        Vec::new()
    } else {
        store.channel_snapshots().await?
    };
    {
        let mut world = server.world();
        world.recent_lines = recent_lines;
        world.registered_channels = registered
            .into_iter()
            .map(|channel| (channel.name_folded.clone(), channel))
            .collect();
        world.registry_accounts.extend(accounts);
        let brought = world.bring_back(saved_channels, unix_now(), restart_wait.as_secs());
        if brought > 0 {
            info!(
                channels = brought,
                "channels brought back from the last run"
            );
        }
    }
    let channel_writer = server
        .channel_writer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    // Outside the tracker, and stopped only after every connection has
    // ended: a change a connection makes while the server stops is saved.
    let writer_stop = CancellationToken::new();
    let channel_writer = channel_writer.map(|writer| {
        let store = server.accounts.store().clone();
        let stop = writer_stop.clone();
        tokio::spawn(async move { writer.run(store, stop.cancelled_owned()).await })
    });
    let history_writer = server
        .history_writer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .map(|writer| {
            let store = server.accounts.store().clone();
            let stop = writer_stop.clone();
            tokio::spawn(async move { writer.run(store, stop.cancelled_owned()).await })
        });
    tracker.spawn({
        let server = server.clone();
        let store = server.accounts.store().clone();
        async move {
            let forget = |before| server.world().recent_lines.forget_older_than(before);
            let config = server.config().history.clone();
            history::prune(store, config, forget, server.shutdown.cancelled()).await
        }
    });
    if !restart_wait.is_zero() {
        let interval = Duration::from_millis(server.config().history.commit_interval_ms);
        tracker.spawn(restore::keep_saved(server.clone(), interval));
        tracker.spawn(restore::end_waits(server.clone()));
    }
    tracker.spawn(keepalive::run(server.clone()));
    tracker.spawn(crate::commands::run_nick_claims(server.clone()));
    tracker.spawn({
        let server = server.clone();
        async move { server.delayed_writes.run(server.shutdown.cancelled()).await }
    });
    tracker.spawn(reload::watch_certificate(server.clone()));
    if let (Some(acme), Some(acceptor)) = (server.acme.clone(), server.tls.load_full()) {
        tracker.spawn(acme.run(acceptor, server.shutdown.clone()));
    }
    let wanted = listeners::wanted(&server.config());
    server.listeners.apply(&server, &wanted, &tracker)?;
    let bound_of = |tls: bool| {
        let keys: Vec<_> = wanted
            .iter()
            .map(|w| w.key)
            .filter(|key| key.tls == tls)
            .collect();
        server.listeners.bound(&keys)
    };
    let (addrs, tls_addrs) = (bound_of(false), bound_of(true));
    let http = crate::http::start(&server)?;
    Ok(ServerHandle {
        server,
        addrs,
        tls_addrs,
        http,
        tracker,
        writer_stop,
        channel_writer,
        history_writer,
    })
}

/// One counted connection. Given back when the client leaves the network,
/// not when its socket finally closes, so a peer that never reads its last
/// lines cannot hold a place that new clients need.
pub(crate) struct ConnectionSlot {
    server: Arc<Server>,
    released: bool,
}

impl ConnectionSlot {
    /// A slot, and the connections counted with it, this one included.
    fn take(server: &Arc<Server>) -> (ConnectionSlot, usize) {
        let count = server.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = ConnectionSlot {
            server: server.clone(),
            released: false,
        };
        (slot, count)
    }

    pub(crate) fn release(&mut self) {
        if !std::mem::replace(&mut self.released, true) {
            self.server.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts down cleanly;
/// SIGHUP reads the configuration from `source` again.
pub async fn run(config: Config, source: crate::config::ConfigSource) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // The handlers go in before the ports open: a signal sent as soon as
    // the server listens must still mean a clean shutdown, not the
    // default action of dying on the spot.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let handle = spawn_with_source(config, Some(source)).await?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => {
                // The outcome is logged as it is applied.
                let _ = reload::rehash(handle.server()).await;
            }
        }
    }
    handle.shutdown().await;
    Ok(())
}
