//! Storing history without making anyone wait for the disk: commands hand
//! records to [`HistoryLog`], and one task ([`HistoryWriter`]) writes them
//! in one transaction per `history.commit_interval_ms` (sooner when a
//! reader waits for them). A shutdown writes everything queued; a hard
//! kill loses what was queued and not yet committed: the last interval
//! and the commit under way.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Notify};

use super::maps::{HashMap, HashSet};
use crate::casemap::CaseMapping;
use crate::config::HistoryConfig;
use crate::proto::tags::{self, MessageId, Stamp};
use crate::store::{HistoryRecord, Kinds, Store};

/// Most records one transaction writes.
const MAX_BATCH: usize = 5_000;

/// Tries to write one batch, and the pause before the next try (times the
/// number of tries so far).
const WRITE_ATTEMPTS: u32 = 4;
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// How often old lines are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// The sending side, kept with the network state.
#[derive(Debug)]
pub struct HistoryLog {
    queue: mpsc::UnboundedSender<HistoryRecord>,
    enabled: bool,
    /// Casefolded names of channels never stored.
    unlogged: HashSet<String>,
    direct_messages: bool,
    pub replay: ReplayPolicy,
    /// Records queued so far, and (from the writer) records written: a
    /// reader waits until what was queued before it is written, so that a
    /// client finds its own last message in the history.
    queued: Arc<AtomicU64>,
    written: watch::Receiver<u64>,
    /// The writer's count of records written, read on the hot path to
    /// bound the backlog (the watch above is for waiting).
    written_total: Arc<AtomicU64>,
    /// Records dropped because the backlog was full.
    dropped: AtomicU64,
    flush: Arc<Notify>,
}

/// Records queued and not yet written past which new ones are dropped
/// (and counted): a disk slower than the message rate must not grow
/// memory without bound. About 300 bytes each: ~150 MB.
pub const MAX_BACKLOG: u64 = 500_000;

/// A point in the log: everything queued before it.
pub struct Written {
    queued: u64,
    written: watch::Receiver<u64>,
    flush: Arc<Notify>,
}

impl Written {
    /// Resolves once everything queued before this point is written (or
    /// the writer has stopped), asking the writer not to wait for more.
    pub async fn wait(mut self) {
        let queued = self.queued;
        if *self.written.borrow() >= queued {
            return;
        }
        self.flush.notify_one();
        let _ = self.written.wait_for(|&written| written >= queued).await;
    }
}

/// What joining a channel replays.
#[derive(Debug, Clone)]
pub struct ReplayPolicy {
    /// Lines, by default and per casefolded channel.
    lines: usize,
    overrides: HashMap<String, usize>,
    pub max_age_ms: u64,
}

/// The writing side, run by its own task.
pub struct HistoryWriter {
    queue: mpsc::UnboundedReceiver<HistoryRecord>,
    written: watch::Sender<u64>,
    written_total: Arc<AtomicU64>,
    /// How long the first record of a batch waits for others.
    interval: Duration,
    flush: Arc<Notify>,
}

pub fn history_log(
    config: &HistoryConfig,
    casemapping: CaseMapping,
) -> (HistoryLog, HistoryWriter) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let (written_sender, written) = watch::channel(0);
    let written_total = Arc::new(AtomicU64::new(0));
    let flush = Arc::new(Notify::new());
    let (unlogged, replay) = policy(config, casemapping);
    (
        HistoryLog {
            queue: sender,
            enabled: config.enabled,
            unlogged,
            direct_messages: config.direct_messages,
            replay,
            queued: Arc::new(AtomicU64::new(0)),
            written,
            written_total: written_total.clone(),
            dropped: AtomicU64::new(0),
            flush: flush.clone(),
        },
        HistoryWriter {
            queue: receiver,
            written: written_sender,
            written_total,
            interval: Duration::from_millis(config.commit_interval_ms),
            flush,
        },
    )
}

/// The channels never stored, and what a join replays, as `config` says.
fn policy(config: &HistoryConfig, casemapping: CaseMapping) -> (HashSet<String>, ReplayPolicy) {
    let unlogged = config
        .unlogged_channels
        .iter()
        .map(|name| casemapping.fold(name))
        .collect();
    let overrides = config
        .join_replay_overrides
        .iter()
        .map(|(name, &lines)| (casemapping.fold(name), lines))
        .collect();
    let replay = ReplayPolicy {
        // Nothing is replayed from a log that is not kept.
        lines: if config.enabled {
            config.join_replay_lines
        } else {
            0
        },
        overrides,
        max_age_ms: config.join_replay_max_age_secs.saturating_mul(1000),
    };
    (unlogged, replay)
}

impl HistoryLog {
    /// Puts a reloaded `[history]` in force for what is logged and
    /// replayed from now on.
    pub fn set_policy(&mut self, config: &HistoryConfig, casemapping: CaseMapping) {
        let (unlogged, replay) = policy(config, casemapping);
        self.enabled = config.enabled;
        self.direct_messages = config.direct_messages;
        self.unlogged = unlogged;
        self.replay = replay;
    }

    /// Whether lines of the channel `folded` are stored.
    pub fn logs(&self, folded: &str) -> bool {
        self.enabled && !self.unlogged.contains(folded)
    }

    /// Lines not stored because the backlog was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records queued and not yet written (for the metrics).
    pub fn backlog(&self) -> u64 {
        let queued = self.queued.load(Ordering::Relaxed);
        queued.saturating_sub(self.written_total.load(Ordering::Relaxed))
    }

    /// The point reached so far, to wait for with [`Written::wait`].
    pub fn written(&self) -> Written {
        Written {
            queued: self.queued.load(Ordering::Relaxed),
            written: self.written.clone(),
            flush: self.flush.clone(),
        }
    }

    /// How many lines joining the channel `folded` replays.
    pub fn replay_lines(&self, folded: &str) -> usize {
        if self.logs(folded) {
            self.replay.lines(folded)
        } else {
            0
        }
    }

    /// Queues a direct message (tagged) under `key` (see [`direct_key`]).
    pub fn record_direct(&self, key: &str, command: &'static str, stamp: Stamp, line: &Bytes) {
        if self.enabled && self.direct_messages {
            self.push(key, command, stamp, line);
        }
    }

    /// Queues an event line (from `Client::line`, which stamps it) for
    /// each of the channels `folded`.
    pub fn record_event<'a>(
        &self,
        folded: impl IntoIterator<Item = &'a String>,
        command: &'static str,
        line: &Bytes,
    ) {
        if !self.enabled {
            return;
        }
        let Some(stamp) = tags::stamp_of(line) else {
            return;
        };
        for channel in folded {
            self.record(channel, command, stamp, line);
        }
    }

    /// Queues `line` (tagged, as sent to a client with every capability)
    /// as a message or event of the channel `folded`.
    pub fn record(&self, folded: &str, command: &'static str, stamp: Stamp, line: &Bytes) {
        if self.logs(folded) {
            self.push(folded, command, stamp, line);
        }
    }

    fn push(&self, target: &str, command: &'static str, stamp: Stamp, line: &Bytes) {
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        // Lines are built from UTF-8 input and UTF-8 names.
        let Ok(text) = std::str::from_utf8(text) else {
            return;
        };
        let queued = self.queued.load(Ordering::Relaxed);
        if queued.saturating_sub(self.written_total.load(Ordering::Relaxed)) >= MAX_BACKLOG {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped % 10_000 == 0 {
                tracing::warn!(
                    dropped = dropped + 1,
                    "history writer is {MAX_BACKLOG} lines behind; lines are not being stored"
                );
            }
            return;
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        // The writer only goes away once the server has stopped.
        let _ = self.queue.send(HistoryRecord {
            target: target.to_owned(),
            msgid: stamp.id.0,
            command,
            line: text.to_owned(),
        });
    }
}

impl ReplayPolicy {
    fn lines(&self, folded: &str) -> usize {
        self.overrides.get(folded).copied().unwrap_or(self.lines)
    }
}

impl HistoryWriter {
    /// Writes until `stop` resolves, then writes what is still queued.
    pub async fn run(mut self, store: Store, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut batch = Vec::new();
        loop {
            // Stopping wins: what is queued then is written in full
            // batches below, not a record per transaction.
            let first = tokio::select! {
                biased;
                () = &mut stop => None,
                received = self.queue.recv() => received,
            };
            let Some(first) = first else {
                break;
            };
            batch.push(first);
            // Company for the first record: one transaction per interval
            // instead of one per message, unless a reader is waiting.
            let deadline = tokio::time::Instant::now() + self.interval;
            while batch.len() < MAX_BATCH {
                tokio::select! {
                    biased;
                    () = self.flush.notified() => break,
                    () = &mut stop => break,
                    () = tokio::time::sleep_until(deadline) => break,
                    received = self.queue.recv() => match received {
                        Some(record) => batch.push(record),
                        None => break,
                    },
                }
            }
            self.write(&store, &mut batch).await;
        }
        while let Ok(record) = self.queue.try_recv() {
            batch.push(record);
            if batch.len() >= MAX_BATCH {
                self.write(&store, &mut batch).await;
            }
        }
        self.write(&store, &mut batch).await;
    }

    async fn write(&mut self, store: &Store, batch: &mut Vec<HistoryRecord>) {
        if batch.is_empty() {
            return;
        }
        // A busy database (the admin CLI, pruning) is waited out; a batch
        // is dropped only after several tries.
        for attempt in 1..=WRITE_ATTEMPTS {
            match store.append_history(batch).await {
                Ok(()) => break,
                Err(error) if attempt == WRITE_ATTEMPTS => {
                    tracing::error!(%error, records = batch.len(), "cannot store history; lines lost");
                    crate::metrics::history_rows_dropped(batch.len());
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot store history yet; retrying");
                    tokio::time::sleep(RETRY_PAUSE * attempt).await;
                }
            }
        }
        let count = batch.len() as u64;
        self.written_total.fetch_add(count, Ordering::Relaxed);
        self.written.send_modify(|written| *written += count);
        batch.clear();
    }
}

/// The history target of the conversation between the identities `a`
/// and `b` (see `World::history_identity`): the same whoever sent.
pub fn direct_key(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("{DIRECT_PREFIX}{first} {second}")
}

pub use crate::store::DIRECT_PREFIX;

/// The other side of the conversation `key`, for `me`; `None` if `me` is
/// not part of it.
pub fn direct_partner<'k>(key: &'k str, me: &str) -> Option<&'k str> {
    let (first, second) = key.strip_prefix(DIRECT_PREFIX)?.split_once(' ')?;
    if first == me {
        Some(second)
    } else if second == me {
        Some(first)
    } else {
        None
    }
}

/// Deletes lines past the configured age and count, and forgets replay
/// lines past the replay age (`forget_replay_before`, given a time in ms),
/// every [`PRUNE_INTERVAL`], until `stop` resolves.
pub async fn prune(
    store: Store,
    config: HistoryConfig,
    forget_replay_before: impl Fn(u64),
    stop: impl Future<Output = ()>,
) {
    let max_age =
        (config.max_age_days > 0).then(|| Duration::from_secs(config.max_age_days * 86_400));
    let max_per_target = (config.max_per_target > 0).then_some(config.max_per_target);
    let replay_age = config.join_replay_max_age_secs.saturating_mul(1000);
    tokio::pin!(stop);
    loop {
        let now = Stamp::now().time_ms;
        forget_replay_before(now.saturating_sub(replay_age));
        if max_age.is_some() || max_per_target.is_some() {
            let cutoff = max_age.map(|age| now.saturating_sub(age.as_millis() as u64));
            match store.prune_history(cutoff, max_per_target).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "old history deleted"),
                Err(error) => tracing::error!(%error, "cannot delete old history"),
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}

/// The last lines of each channel, for replay on join without a trip to
/// the database: a join is answered at once, in order, and a line spoken
/// right after it can never come before the replay.
#[derive(Debug, Default)]
pub struct RecentLines {
    /// Per channel: (time in ms, message id, tagged line), oldest first.
    by_channel: HashMap<String, VecDeque<(u64, u64, Bytes)>>,
}

impl RecentLines {
    /// Remembers `line` (tagged) of the channel `folded`, keeping at most
    /// `keep` lines of it.
    pub fn push(&mut self, folded: &str, stamp: Stamp, line: Bytes, keep: usize) {
        if keep == 0 {
            return;
        }
        let lines = match self.by_channel.get_mut(folded) {
            Some(lines) => lines,
            None => self.by_channel.entry(folded.to_owned()).or_default(),
        };
        while lines.len() >= keep {
            lines.pop_front();
        }
        lines.push_back((stamp.time_ms, stamp.id.0, line));
    }

    /// The channel's lines since `since_ms` and with ids above `after`,
    /// the last `count` of them at most, oldest first.
    pub fn since(
        &self,
        folded: &str,
        since_ms: u64,
        after: u64,
        count: usize,
    ) -> impl Iterator<Item = &Bytes> {
        let lines = self.by_channel.get(folded);
        let recent = lines.map_or(0, |lines| {
            lines
                .iter()
                .rev()
                .take(count)
                .take_while(|(time, id, _)| *time >= since_ms && *id > after)
                .count()
        });
        lines
            .into_iter()
            .flat_map(move |lines| lines.iter().skip(lines.len() - recent))
            .map(|(_, _, line)| line)
    }

    /// Forgets channels whose newest line is older than `before_ms`.
    pub fn forget_older_than(&mut self, before_ms: u64) {
        self.by_channel
            .retain(|_, lines| lines.back().is_some_and(|(time, _, _)| *time >= before_ms));
    }
}

/// At start: ids go on after the newest stored one, and the recent lines
/// of channels active within the replay age are loaded for join replay.
pub async fn load(store: &Store, replay: &ReplayPolicy) -> anyhow::Result<RecentLines> {
    if let Some(newest) = store.newest_msgid().await? {
        MessageId::ensure_after(MessageId(newest));
    }
    let mut recent = RecentLines::default();
    let since = Stamp::now().time_ms.saturating_sub(replay.max_age_ms);
    for folded in store.channels_active_since(since).await? {
        let keep = replay.lines(&folded);
        if keep == 0 {
            continue;
        }
        let rows = store
            .history_range(&folded, since << 16, u64::MAX, keep, true, Kinds::Messages)
            .await?;
        for row in rows {
            let line = Bytes::from(row.line + "\r\n");
            let stamp = Stamp {
                time_ms: row.time_ms,
                id: MessageId(row.msgid),
            };
            recent.push(&folded, stamp, line, keep);
        }
    }
    Ok(recent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn a_full_backlog_drops_and_counts_new_lines() {
        let config = Config::embedded();
        // No writer runs: everything queued stays in the backlog.
        let (log, _writer) = history_log(&config.history, config.server.casemapping);
        let stamp = Stamp::now();
        let line = Bytes::from_static(b":n!u@h PRIVMSG #c :hi\r\n");
        for _ in 0..MAX_BACKLOG + 3 {
            log.record("#c", "PRIVMSG", stamp, &line);
        }
        assert_eq!(log.dropped(), 3);
        assert_eq!(log.queued.load(Ordering::Relaxed), MAX_BACKLOG);
        // What was dropped is not waited for.
        assert_eq!(log.written().queued, MAX_BACKLOG);
    }
}
