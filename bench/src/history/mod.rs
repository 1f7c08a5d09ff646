//! `history`: one client fills a channel with N messages while a second
//! member receives them (ingest: messages/s, losses, order, latency, server
//! CPU per message, database bytes per message); then the member sends
//! `CHATHISTORY LATEST #chan * 100` and `CHATHISTORY BEFORE #chan
//! timestamp=<time of the middle message> 100`, one after another, and
//! each reply batch is timed from the request to its `BATCH -ref`.
//!
//! Both clients request `batch draft/chathistory server-time message-tags`
//! before they register, which [`Conn`](crate::client::Conn) does not do,
//! so this scenario has a small connection type of its own ([`client`]).
//! The fill is in [`ingest`], the timed requests in [`query`], and the
//! `time` tag's conversions in [`clock`]; this module holds the settings,
//! the run and the checks of the replies.

mod client;
mod clock;
mod ingest;
mod query;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure};
use serde::Serialize;
use serde_json::json;

use self::client::Client;
use self::clock::{format_time, parse_time};
use self::ingest::ingest;
use self::query::{request, time_of, timed, Reply};
use crate::metrics::{Latency, Report};
use crate::setup::Common;

/// The capabilities both clients request before registering.
const CAPS: &str = "batch draft/chathistory server-time message-tags";
/// Lines asked for by each CHATHISTORY request.
const LIMIT: u64 = 100;
/// Most messages written in one syscall by the sender (as fanout's).
const MAX_BATCH: u64 = 64;
/// Nick attempts before registration gives up on 433/437.
const NICK_ATTEMPTS: u32 = 20;
/// The member keeps the `time` of this many messages before the middle
/// one, to know which lines `BEFORE` must return.
const TIMES_KEPT: u64 = 1000;
/// How long the final QUIT waits for the server to close a connection.
const QUIT_WAIT: Duration = Duration::from_secs(5);
/// Before any message the server can have stored.
const EARLIEST: &str = "2000-01-01T00:00:00.000Z";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Messages the sender fills the channel with.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// At most W messages in flight (sent, not yet received by the member).
    #[arg(long, default_value_t = 64)]
    pub window: u64,
    /// Requests of each kind (LATEST, BEFORE), one after another.
    #[arg(long, default_value_t = 200)]
    pub queries: u64,
    /// The channel.
    #[arg(long, default_value = "#history")]
    pub channel: String,
    /// Filler bytes in each message after the sender, sequence number and
    /// timestamp.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// The server's database (Parlor: DATA_DIR/parlor.db): its size and
    /// its `-wal` file's are read after the fill.
    #[arg(long)]
    pub db_path: Option<std::path::PathBuf>,
    /// No fill: only query the channel's existing history (the middle is
    /// halfway between its first and its last message's time).
    #[arg(long)]
    pub skip_fill: bool,
}

/// What `history` reports beyond the [`Report`]'s fields: the JSON's
/// `extra` object. `null` = does not apply or could not be measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Extra {
    /// Messages received by the member per second, first send to last
    /// receipt.
    pub ingest_msgs_per_sec: Option<f64>,
    /// From the end of the ingest (the member's settle PONG) to the reply
    /// of a `CHATHISTORY LATEST * 1`, which waits for the pending writes.
    pub store_wait_ms: Option<f64>,
    pub latest_latency_us: Latency,
    /// Lines in the first LATEST reply.
    pub latest_lines: Option<u64>,
    /// The `timestamp=` of the BEFORE requests.
    pub before_timestamp: Option<String>,
    pub before_latency_us: Latency,
    /// Lines in the first BEFORE reply.
    pub before_lines: Option<u64>,
    /// The database file plus its `-wal` file, after the fill.
    pub db_bytes: Option<u64>,
    pub db_bytes_per_message: Option<f64>,
}

impl Extra {
    /// Summary lines, to follow the report's.
    pub fn summary(&self) -> String {
        fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
            v.map_or_else(|| "-".to_owned(), |v| v.to_string())
        }
        let lat = |l: &Latency| {
            format!(
                "p50 {} p90 {} p99 {} max {}",
                opt(l.p50),
                opt(l.p90),
                opt(l.p99),
                opt(l.max)
            )
        };
        format!(
            "  ingest {} messages/s, stored {} ms after the last one\n  \
             LATEST * {LIMIT} ({} lines) µs: {}\n  \
             BEFORE timestamp={} {LIMIT} ({} lines) µs: {}\n  \
             database {} bytes, {} bytes/message",
            opt(self.ingest_msgs_per_sec.map(|r| r.round())),
            opt(self.store_wait_ms),
            opt(self.latest_lines),
            lat(&self.latest_latency_us),
            self.before_timestamp.as_deref().unwrap_or("-"),
            opt(self.before_lines),
            lat(&self.before_latency_us),
            opt(self.db_bytes),
            opt(self.db_bytes_per_message),
        )
    }
}

/// Checks a LATEST reply after a fill of `n` messages: the last
/// `LIMIT` of them, in order.
fn check_latest(r: &Reply, n: u64) -> Option<String> {
    let lines = n.min(LIMIT);
    let want = (lines, Some(n - lines), Some(n - 1), 0, 0);
    ((r.lines, r.first, r.last, r.gaps, r.foreign) != want).then(|| {
        format!(
            "LATEST: expected messages {}..={} in order, got {r:?}",
            n - lines,
            n - 1
        )
    })
}

/// Checks a BEFORE reply after a fill: the `LIMIT` messages before
/// `mid_ms`, known from the times the member saw for messages
/// `times_from..` (all of them up to the middle one).
fn check_before(r: &Reply, mid_ms: u64, times: &[Option<u64>], times_from: u64) -> Option<String> {
    if times.iter().any(Option::is_none) {
        // A message near the middle was lost: which lines are due is
        // unknown.
        return None;
    }
    // The last message before the middle one's millisecond.
    let want = match times
        .iter()
        .rposition(|ms| ms.is_some_and(|ms| ms < mid_ms))
    {
        Some(i) => {
            let last = times_from + i as u64;
            let lines = (last + 1).min(LIMIT);
            (lines, Some(last + 1 - lines), Some(last))
        }
        None if times_from == 0 => (0, None, None),
        // More than TIMES_KEPT messages share the middle one's millisecond.
        None => return None,
    };
    ((r.lines, r.first, r.last, r.gaps, r.foreign) != (want.0, want.1, want.2, 0, 0)).then(|| {
        format!(
            "BEFORE: expected {} lines, messages {:?}..={:?} in order, got {r:?}",
            want.0, want.1, want.2
        )
    })
}

/// The database file's size plus its `-wal` file's.
fn db_size(path: &std::path::Path) -> Result<u64, String> {
    let main = std::fs::metadata(path)
        .map_err(|e| format!("--db-path {}: {e}", path.display()))?
        .len();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = match std::fs::metadata(&wal) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("{}: {e}", std::path::Path::new(&wal).display())),
    };
    Ok(main + wal)
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<(Report, Extra)> {
    let n = a.messages;
    ensure!(n >= 1, "--messages must be at least 1");
    ensure!(a.window >= 1, "--window must be at least 1");
    ensure!(a.queries >= 1, "--queries must be at least 1");
    let deadline = common.deadline;
    let channel = a.channel.as_str();
    let mut member = Client::register(1, &common.connect, deadline)
        .await
        .map_err(|e| anyhow::anyhow!("the member could not register: {e}"))?;
    member
        .join(channel, deadline)
        .await
        .map_err(|e| anyhow::anyhow!("the member: {e}"))?;
    let latest_one = format!("CHATHISTORY LATEST {channel} * 1\r\n");

    let mut report = Report {
        scenario: "history".into(),
        label: common.label.clone(),
        params: json!({
            "messages": (!a.skip_fill).then_some(n), "window": a.window,
            "queries": a.queries, "limit": LIMIT, "channel": channel, "pad": a.pad,
            "skip_fill": a.skip_fill,
            "db_path": a.db_path.as_ref().map(|p| p.display().to_string()),
        }),
        clients: if a.skip_fill { 1 } else { 2 },
        units: Some(("message", "messages")),
        ..Report::default()
    };
    let mut extra = Extra::default();
    let mut errors = Vec::new();
    let mut ingested = None;
    if !a.skip_fill {
        let mut sender = Client::register(0, &common.connect, deadline)
            .await
            .map_err(|e| anyhow::anyhow!("the sender could not register: {e}"))?;
        sender
            .join(channel, deadline)
            .await
            .map_err(|e| anyhow::anyhow!("the sender: {e}"))?;
        match request(&mut member, &latest_one, &common)
            .await
            .and_then(|r| r)
        {
            Ok((_, r)) if r.lines > 0 => errors.push(format!(
                "{channel} had history before the fill; db_bytes counts it too"
            )),
            Ok(_) => {}
            Err(e) => bail!("CHATHISTORY before the fill: {e}"),
        }
        let before = common.probe.read();
        let mut t = ingest(&common, &a, &mut sender, &mut member).await;
        // A CHATHISTORY waits for the pending writes: the phase (and its
        // CPU) ends when the fill is stored.
        match request(&mut member, &latest_one, &common)
            .await
            .and_then(|r| r)
        {
            Ok(_) => {
                let ms = t.ended.elapsed().as_secs_f64() * 1000.0;
                extra.store_wait_ms = Some((ms * 1000.0).round() / 1000.0);
            }
            Err(e) => errors.push(format!("CHATHISTORY after the fill: {e}")),
        }
        let after = common.probe.read();
        sender.quit().await;
        let wall = t.last_delivery.unwrap_or(t.ended) - t.started;
        report.deliveries = Some(t.deliveries);
        report.expected_deliveries = Some(n);
        report.losses = Some(n.saturating_sub(t.deliveries));
        report.duplicates = Some(t.duplicates);
        report.reordered = Some(t.reordered);
        report.latency_us = Latency::from_histogram(&t.latency);
        report.latency_of = Some("message send to receipt by the member, per message".into());
        report.measured(before, after, wall);
        extra.ingest_msgs_per_sec = report.deliveries_per_sec;
        if let Some(path) = &a.db_path {
            match db_size(path) {
                Ok(bytes) => {
                    extra.db_bytes = Some(bytes);
                    extra.db_bytes_per_message = (t.deliveries > 0)
                        .then(|| (bytes as f64 / t.deliveries as f64 * 1000.0).round() / 1000.0);
                }
                Err(e) => errors.push(e),
            }
        }
        errors.append(&mut t.errors);
        if t.mid_time.is_none() {
            errors.push(format!(
                "the member did not see the time of message {}: BEFORE uses the midpoint",
                n / 2
            ));
        }
        ingested = Some(t);
    } else if let Some(path) = &a.db_path {
        match db_size(path) {
            Ok(bytes) => extra.db_bytes = Some(bytes),
            Err(e) => errors.push(e),
        }
    }

    let middle = match ingested.as_ref().and_then(|t| t.mid_time.clone()) {
        Some((text, _)) => text,
        None => {
            let first = time_of(
                &mut member,
                &format!("CHATHISTORY AFTER {channel} timestamp={EARLIEST} 1\r\n"),
                &common,
            )
            .await?;
            let last = time_of(&mut member, &latest_one, &common).await?;
            format_time(first + last.saturating_sub(first) / 2)
        }
    };
    let latest_line = format!("CHATHISTORY LATEST {channel} * {LIMIT}\r\n");
    let latest = timed(&mut member, "LATEST", &latest_line, a.queries, &common).await;
    let before_line = format!("CHATHISTORY BEFORE {channel} timestamp={middle} {LIMIT}\r\n");
    let before = timed(&mut member, "BEFORE", &before_line, a.queries, &common).await;
    member.quit().await;

    let middle_ms = parse_time(middle.as_bytes());
    if let Some(r) = &before.first {
        if r.latest_ms.is_some_and(|ms| Some(ms) >= middle_ms) {
            errors.push(format!("BEFORE: a line at or after {middle}: {r:?}"));
        }
    }
    if let Some(t) = &ingested {
        errors.extend(latest.first.as_ref().and_then(|r| check_latest(r, n)));
        if let (Some(r), Some((_, mid_ms))) = (&before.first, &t.mid_time) {
            errors.extend(check_before(r, *mid_ms, &t.times, t.times_from));
        }
    }
    extra.latest_latency_us = Latency::from_histogram(&latest.latency);
    extra.latest_lines = latest.first.map(|r| r.lines);
    extra.before_timestamp = Some(middle);
    extra.before_latency_us = Latency::from_histogram(&before.latency);
    extra.before_lines = before.first.map(|r| r.lines);
    errors.extend(latest.errors);
    errors.extend(before.errors);
    report.errors = errors;
    Ok((report, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(seqs: std::ops::Range<u64>) -> Reply {
        let mut r = Reply::default();
        for q in seqs {
            let line = format!("@time=2024-01-01T00:00:00.000Z :a PRIVMSG #h :0 {q} 1");
            r.add(line.as_bytes(), format!("0 {q} 1").as_bytes());
        }
        r
    }

    #[test]
    fn replies_are_checked() {
        assert_eq!(check_latest(&reply(900..1000), 1000), None);
        assert!(check_latest(&reply(899..999), 1000).is_some());
        assert!(check_latest(&reply(901..1000), 1000).is_some());
        assert_eq!(check_latest(&reply(0..7), 7), None);
        // Messages 0..=500 at ms 10 + q / 100: the middle one, 500, is at
        // 15, so 499 is the last one before it.
        let times: Vec<Option<u64>> = (0..=500).map(|q| Some(10 + q / 100)).collect();
        assert_eq!(check_before(&reply(400..500), 15, &times, 0), None);
        assert!(check_before(&reply(401..501), 15, &times, 0).is_some());
        assert!(check_before(&reply(400..499), 15, &times, 0).is_some());
        // All in the middle one's millisecond: nothing is before it.
        let same = vec![Some(15); 501];
        assert_eq!(check_before(&reply(0..0), 15, &same, 0), None);
        assert!(check_before(&reply(0..1), 15, &same, 0).is_some());
        // …unless older messages were not kept: then it cannot be told.
        assert_eq!(check_before(&reply(0..1), 15, &same, 9), None);
        let lost = vec![Some(1), None, Some(15)];
        assert_eq!(check_before(&reply(0..5), 15, &lost, 0), None);
    }
}
