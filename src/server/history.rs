//! Storing history without making anyone wait for the disk: commands hand
//! records to [`HistoryLog`], which queues them (`history/pending.rs`),
//! and one task ([`HistoryWriter`], `history/writer.rs`) writes them in
//! batches, riding out a database that refuses writes. A shutdown writes
//! everything queued; a hard kill loses what was queued and not yet
//! committed: the last interval and the commit under way.
//! [`HistoryStats`] counts what the writer did, for the metrics.

mod pending;
mod stats;
mod writer;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use super::maps::{HashMap, HashSet};
use crate::casemap::CaseMapping;
use crate::config::HistoryConfig;
use crate::proto::tags::{self, MessageId, Stamp};
use crate::store::{HistoryRecord, Kinds, Store};
use pending::Pending;
pub use stats::{HistoryStats, LatencyHistogram, LATENCY_BOUNDS_MICROS};
pub(super) use writer::Stop;
pub use writer::{HistoryWriter, MAX_RETRY_PAUSE};

/// How often old lines are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// The sending side, kept with the network state.
#[derive(Debug)]
pub struct HistoryLog {
    pending: Arc<Pending>,
    enabled: bool,
    /// Casefolded names of channels never stored.
    unlogged: HashSet<String>,
    direct_messages: bool,
    pub replay: ReplayPolicy,
    /// Lines queued, written and dropped so far: a reader waits until
    /// what was queued before it is settled, so that a client finds its
    /// own last message in the history.
    stats: Arc<HistoryStats>,
    progress: watch::Receiver<u64>,
    flush: Arc<Notify>,
}

/// A point in the log: everything queued before it.
pub struct Written {
    queued: u64,
    stats: Arc<HistoryStats>,
    progress: watch::Receiver<u64>,
    flush: Arc<Notify>,
}

impl Written {
    /// Resolves once everything queued before this point is written (or
    /// dropped), asking the writer not to wait for more; `true` then. It
    /// resolves `false` at once while the database refuses writes, or if
    /// the writer has stopped: a reader gets what is stored rather than
    /// wait for a disk to be emptied.
    pub async fn wait(mut self) -> bool {
        let mut asked = false;
        loop {
            // Seen before the counts are read: a try that ends after
            // this read wakes the wait below.
            self.progress.borrow_and_update();
            if self.stats.settled() >= self.queued {
                return true;
            }
            if self.stats.failing() {
                return false;
            }
            if !asked {
                self.flush.notify_one();
                asked = true;
            }
            if self.progress.changed().await.is_err() {
                return self.stats.settled() >= self.queued;
            }
        }
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

pub fn history_log(
    config: &HistoryConfig,
    casemapping: CaseMapping,
) -> (HistoryLog, HistoryWriter) {
    history_log_bounded(config, casemapping, config.max_queued_lines)
}

/// [`history_log`] with a queue of at most `max_queued` lines.
fn history_log_bounded(
    config: &HistoryConfig,
    casemapping: CaseMapping,
    max_queued: usize,
) -> (HistoryLog, HistoryWriter) {
    let pending = Arc::new(Pending::new(max_queued, writer::MAX_BATCH));
    let (progress_sender, progress) = watch::channel(0);
    let stats = Arc::new(HistoryStats::default());
    let flush = Arc::new(Notify::new());
    let (unlogged, replay) = policy(config, casemapping);
    (
        HistoryLog {
            pending: pending.clone(),
            enabled: config.enabled,
            unlogged,
            direct_messages: config.direct_messages,
            replay,
            stats: stats.clone(),
            progress,
            flush: flush.clone(),
        },
        HistoryWriter {
            pending,
            progress: progress_sender,
            stats,
            interval: Duration::from_millis(config.commit_interval_ms),
            flush,
            failing: None,
            dropped_when_reported: 0,
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
        // A lower bound drops the excess at the next push.
        self.pending.set_limit(config.max_queued_lines);
    }

    /// Whether lines of the channel `folded` are stored.
    pub fn logs(&self, folded: &str) -> bool {
        self.enabled && !self.unlogged.contains(folded)
    }

    /// The writer's counts, shared.
    pub fn stats(&self) -> &Arc<HistoryStats> {
        &self.stats
    }

    /// Records queued and not yet written (for the metrics).
    pub fn backlog(&self) -> u64 {
        self.stats.queue_depth()
    }

    /// Lines dropped because the queue was full (for the metrics; those
    /// the database refused are counted by the writer).
    pub fn dropped(&self) -> u64 {
        self.stats.rows_dropped_queue_full()
    }

    /// The point reached so far, to wait for with [`Written::wait`].
    pub fn written(&self) -> Written {
        Written {
            queued: self.stats.rows_queued(),
            stats: self.stats.clone(),
            progress: self.progress.clone(),
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
        let record = HistoryRecord {
            target: target.to_owned(),
            msgid: stamp.id.0,
            command,
            line: text.to_owned(),
        };
        let dropped = self.pending.push(record, &self.stats);
        if dropped && !self.stats.overflowing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.pending.limit(),
                "history: the queue for the database is full; the oldest lines are dropped \
                 until it catches up (history.max_queued_lines)"
            );
        }
    }
}

impl ReplayPolicy {
    fn lines(&self, folded: &str) -> usize {
        self.overrides.get(folded).copied().unwrap_or(self.lines)
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
    async fn a_full_queue_drops_its_oldest_lines_and_nobody_waits_for_them() {
        let config = Config::embedded();
        // No writer runs: everything queued stays queued.
        let (log, _writer) = history_log_bounded(&config.history, config.server.casemapping, 3);
        let stamp = Stamp::now();
        let line = Bytes::from_static(b":n!u@h PRIVMSG #c :hi\r\n");
        for _ in 0..5 {
            log.record("#c", "PRIVMSG", stamp, &line);
        }
        let stats = log.stats();
        assert_eq!(stats.rows_queued(), 5);
        assert_eq!(stats.rows_dropped_queue_full(), 2);
        assert_eq!(stats.queue_depth(), 3);
        // What was dropped is settled: a reader of a point before the
        // queued lines does not wait.
        let before_the_queue = Written {
            queued: 2,
            ..log.written()
        };
        let waited = tokio::time::timeout(Duration::from_secs(1), before_the_queue.wait()).await;
        assert_eq!(waited.ok(), Some(true));
    }

    #[test]
    fn a_reload_changes_the_queue_bound() {
        let mut config = Config::embedded();
        let (mut log, _writer) = history_log(&config.history, config.server.casemapping);
        let stamp = Stamp::now();
        let line = Bytes::from_static(b":n!u@h PRIVMSG #c :hi\r\n");
        for _ in 0..5 {
            log.record("#c", "PRIVMSG", stamp, &line);
        }
        assert_eq!(log.stats().rows_dropped(), 0);
        config.history.max_queued_lines = 2;
        log.set_policy(&config.history, config.server.casemapping);
        log.record("#c", "PRIVMSG", stamp, &line);
        assert_eq!(log.stats().rows_dropped_queue_full(), 4);
        assert_eq!(log.stats().queue_depth(), 2);
    }

    #[tokio::test]
    async fn lines_are_written_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let config = Config::embedded();
        let (log, writer) = history_log(&config.history, config.server.casemapping);
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(writer.run(store.clone(), stop.clone().cancelled_owned()));
        for text in ["one", "two"] {
            let stamp = Stamp::now();
            let line = Bytes::from(format!(":n!u@h PRIVMSG #c :{text}\r\n"));
            log.record("#c", "PRIVMSG", stamp, &line);
        }
        let waited = tokio::time::timeout(Duration::from_secs(10), log.written().wait()).await;
        assert_eq!(waited.ok(), Some(true));
        let stats = log.stats();
        assert_eq!((stats.rows_written(), stats.queue_depth()), (2, 0));
        assert_eq!(stats.write_failures(), 0);
        assert!(stats.commit_latency().count() >= 1);
        let rows = store
            .history_range("#c", 0, u64::MAX, 10, false, Kinds::Messages)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        stop.cancel();
        task.await.unwrap();
    }
}
