//! `join-storm`: K registered clients join one channel one after another
//! (each JOIN sent only once the previous joiner saw its own echo); every
//! member counts every JOIN it sees, so member i (from 0) sees K − i.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at, Instant};

use crate::client::{classify, last_param, pong, prefix_nick, server_error, Conn, Msg, Writer};
use crate::metrics::{self, Latency, Report};
use crate::setup::{self, Common};
use crate::traffic::SETTLE;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Clients that join, one after another.
    #[arg(long, default_value_t = 2000)]
    pub clients: usize,
    /// The channel.
    #[arg(long, default_value = "#storm")]
    pub channel: String,
}

struct Chain {
    /// When each client's JOIN was sent (ns since the epoch).
    sent_ns: Vec<AtomicU64>,
    writers: Vec<Writer>,
    join_line: Vec<u8>,
    /// Clients whose JOIN completed (echo seen, or refused).
    joined: AtomicUsize,
    wake: Notify,
}

impl Chain {
    async fn start(&self, common: &Common, i: usize) -> Result<(), String> {
        self.sent_ns[i].store(common.now_ns(), Ordering::Release);
        self.writers[i]
            .send_by(&self.join_line, common.deadline)
            .await
            .map_err(|e| format!("JOIN write failed: {e}"))
    }
}

struct Counted {
    joins: u64,
    latency: Histogram<u64>,
    last: Option<Instant>,
    errors: Vec<String>,
}

async fn member(common: Arc<Common>, chain: Arc<Chain>, mut conn: Conn) -> (Conn, Counted) {
    let me = conn.idx;
    let k = chain.writers.len();
    let mut c = Counted {
        joins: 0,
        latency: metrics::histogram(),
        last: None,
        errors: Vec::new(),
    };
    let mut done = false;
    let mut settled = false;
    while !settled {
        let now = match conn.fill_unbounded().await {
            Ok(now) => now,
            Err(e) => {
                c.errors.push(format!("member lost its connection: {e}"));
                break;
            }
        };
        let now_ns = now.saturating_duration_since(common.epoch).as_nanos() as u64;
        let mut next = false;
        let mut closed = None;
        while let Some(line) = conn.lines.next_line() {
            match classify(line) {
                Msg::Other {
                    prefix, command, ..
                } if command == b"JOIN" => {
                    let joiner = me + c.joins as usize;
                    if c.joins == 0
                        && !prefix_nick(prefix).eq_ignore_ascii_case(conn.nick.as_bytes())
                    {
                        c.errors
                            .push("a member's first JOIN seen was not its own".into());
                    }
                    if let Some(sent) = chain.sent_ns.get(joiner) {
                        let sent = sent.load(Ordering::Acquire);
                        c.latency.record(now_ns.saturating_sub(sent) / 1000).ok();
                    }
                    c.joins += 1;
                    c.last = Some(now);
                    next |= !done;
                    done = true;
                }
                Msg::Numeric(code @ (403 | 405 | 471 | 473 | 474 | 475 | 477), p) if !done => {
                    let text = String::from_utf8_lossy(last_param(p));
                    c.errors.push(format!("JOIN refused: {code} {text}"));
                    next = true;
                    done = true;
                }
                Msg::Ping(token) => pong(&mut conn.out, token),
                Msg::Pong(token) if token == SETTLE => settled = true,
                Msg::Error(text) => closed = Some(server_error(text)),
                _ => {}
            }
        }
        if next {
            chain.joined.fetch_add(1, Ordering::AcqRel);
            chain.wake.notify_one();
            if me + 1 < k {
                if let Err(e) = chain.start(&common, me + 1).await {
                    c.errors.push(e);
                }
            }
        }
        if let Some(e) = closed {
            c.errors.push(format!("member lost its connection: {e}"));
            break;
        }
        if let Err(e) = conn.flush_out().await {
            c.errors.push(format!("member lost its connection: {e}"));
            break;
        }
    }
    (conn, c)
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<Report> {
    let k = a.clients;
    ensure!(k >= 1, "--clients must be at least 1");
    let conns = setup::register_all(&common, k, 16 * 1024).await.all()?;
    let conns = setup::sync_all(&common, conns, "syncing after registration").await?;
    let chain = Arc::new(Chain {
        sent_ns: (0..k).map(|_| AtomicU64::new(0)).collect(),
        writers: conns.iter().map(|c| c.wr.clone()).collect(),
        join_line: format!("JOIN {}\r\n", a.channel).into_bytes(),
        joined: AtomicUsize::new(0),
        wake: Notify::new(),
    });
    let mut errors = Vec::new();

    let before = common.probe.read();
    let started = Instant::now();
    let mut members = JoinSet::new();
    for conn in conns {
        members.spawn(member(common.clone(), chain.clone(), conn));
    }
    if let Err(e) = chain.start(&common, 0).await {
        errors.push(e);
    }
    let mut progress = 0;
    while progress < k {
        let left = common.deadline.saturating_duration_since(Instant::now());
        if timeout(common.stall.min(left), chain.wake.notified())
            .await
            .is_err()
        {
            let now = chain.joined.load(Ordering::Acquire);
            if now == progress {
                if Instant::now() >= common.deadline {
                    return Err(common.timed_out("joining"));
                }
                errors.push(format!(
                    "join chain stalled after {now} of {k} joins ({}s without progress)",
                    common.stall.as_secs()
                ));
                break;
            }
        }
        progress = chain.joined.load(Ordering::Acquire);
    }
    for wr in &chain.writers {
        let _ = wr.send_by(b"PING :pb-settle\r\n", common.deadline).await;
    }
    let mut conns = Vec::new();
    let (mut joins, mut excess) = (0u64, 0u64);
    let mut latency = metrics::histogram();
    let mut last = None;
    let grace = common.deadline + Duration::from_secs(2);
    loop {
        match timeout_at(grace, members.join_next()).await {
            Err(_) => return Err(common.timed_out("waiting for the members to settle")),
            Ok(None) => break,
            Ok(Some(Ok((conn, c)))) => {
                let expected = (k - conn.idx) as u64;
                joins += c.joins;
                excess += c.joins.saturating_sub(expected);
                let _ = latency.add(&c.latency);
                last = last.max(c.last);
                errors.extend(c.errors);
                conns.push(conn);
            }
            Ok(Some(Err(e))) => errors.push(format!("member task failed: {e}")),
        }
    }
    let after = common.probe.read();
    let ended = Instant::now();
    if ended >= common.deadline {
        return Err(common.timed_out("waiting for the members to settle"));
    }
    setup::quit_all(conns).await;

    let expected = (k as u64) * (k as u64 + 1) / 2;
    let mut report = Report {
        scenario: "join-storm".into(),
        label: common.label.clone(),
        params: json!({ "clients": k, "channel": a.channel }),
        clients: k as u64,
        deliveries: Some(joins),
        expected_deliveries: Some(expected),
        losses: Some(expected.saturating_sub(joins - excess)),
        duplicates: Some(excess),
        latency_us: Latency::from_histogram(&latency),
        latency_of: Some("JOIN sent to each member's receipt of it".into()),
        errors,
        ..Report::default()
    };
    report.measured(before, after, last.unwrap_or(ended) - started);
    Ok(report)
}
