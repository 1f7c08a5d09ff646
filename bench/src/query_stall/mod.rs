//! `query-stall`: does a client asking big questions stall everybody
//! else? N clients register (spread over C channels, the first R of them
//! renamed once, so that LIST and WHOWAS have something to walk); T of
//! them keep a paced conversation in one channel. The run alternates quiet
//! phases and query phases of equal length; in a query phase one more
//! client sends `WHO *`, `WHO *a*`, `LIST` and `WHOWAS <nick>` in a loop.
//! Reported: the talkers' delivery latency in each kind of phase and the
//! ratio of their p99s, the queries' own figures, and, read by an
//! operator with Parlor's `STATS L` at each phase's start and end, how
//! long the server held its state lock (the longest hold, holds over
//! 1 ms, the distribution).

mod lock_stats;
mod querier;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use tokio::time::{timeout_at, Instant};

use self::lock_stats::LockFigures;
use self::querier::QueryFigures;
use crate::client::{prefix_nick, Conn, Msg};
use crate::fanout::paced;
use crate::measure;
use crate::metrics::{histogram, Latency, Report};
use crate::setup::{self, Common};
use crate::traffic::{Receiver, SendSpec};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Registered clients, the talkers included (the querier and the
    /// operator who reads the lock figures come on top).
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Clients that keep the conversation going, all in one channel.
    #[arg(long, default_value_t = 20)]
    pub talkers: usize,
    /// Messages per second in the conversation, all talkers together.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Channels the other clients are spread over, for LIST (0: none).
    #[arg(long, default_value_t = 1_000)]
    pub channels: usize,
    /// Clients that change their nick once during the setup, for WHOWAS.
    #[arg(long, default_value_t = 1_000)]
    pub renames: usize,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 10.0)]
    pub phase_secs: f64,
    /// Rounds of a quiet phase followed by a query phase.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The conversation's channel.
    #[arg(long, default_value = "#talk")]
    pub channel: String,
    /// Filler bytes in each message, as fanout's.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// An `[[oper]]` name on the server, to read `STATS L` (Parlor with
    /// PARLOR_LOCK_TIMING=1); without it there are no lock figures.
    #[arg(long)]
    pub oper: Option<String>,
    #[arg(long, default_value = "")]
    pub oper_password: String,
}

/// One kind of phase (quiet or with the querier), over every round.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PhaseFigures {
    pub phases: usize,
    pub deliveries: u64,
    pub losses: u64,
    pub latency_us: Latency,
    /// `null` without `--oper`.
    pub lock: Option<LockFigures>,
    #[serde(skip)]
    histogram: Option<Histogram<u64>>,
}

impl PhaseFigures {
    fn add(&mut self, latency: &Histogram<u64>, deliveries: u64, losses: u64) {
        self.phases += 1;
        self.deliveries += deliveries;
        self.losses += losses;
        let h = self.histogram.get_or_insert_with(histogram);
        let _ = h.add(latency);
        self.latency_us = Latency::from_histogram(h);
    }

    fn add_lock(&mut self, lock: &LockFigures) {
        match &mut self.lock {
            Some(sum) => sum.add(lock),
            None => self.lock = Some(lock.clone()),
        }
    }
}

/// What `query-stall` reports beyond the [`Report`]'s fields: the JSON's
/// `extra` object.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Extra {
    pub quiet: PhaseFigures,
    pub querying: PhaseFigures,
    /// The talkers' p99 with the querier ÷ without it.
    pub p99_ratio: Option<f64>,
    pub queries: Vec<QueryFigures>,
}

impl Extra {
    /// Summary lines, to follow the report's.
    pub fn summary(&self) -> String {
        fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
            v.map_or_else(|| "-".to_owned(), |v| v.to_string())
        }
        let us = |ns: Option<u64>| opt(ns.map(|ns| format!("{:.1}", ns as f64 / 1000.0)));
        let mut s = String::new();
        for (name, phase) in [("quiet", &self.quiet), ("querying", &self.querying)] {
            let l = &phase.latency_us;
            s += &format!(
                "  {name} ({} phases): talkers' latency µs p50 {} p90 {} p99 {} max {}, losses {}\n",
                phase.phases,
                opt(l.p50),
                opt(l.p90),
                opt(l.p99),
                opt(l.max),
                phase.losses
            );
            if let Some(lock) = &phase.lock {
                for (kind, h) in [("exclusive", &lock.exclusive), ("shared", &lock.shared)] {
                    s += &format!(
                        "    lock {kind}: {} holds, longest {} µs, {} over 1 ms; \
                         p50 {} p99 {} p99.9 {} µs (bucket floors); \
                         most CPU in one hold {} µs, {} holds over 1 ms of CPU\n",
                        h.holds,
                        us(Some(h.max_ns)),
                        h.over_1ms,
                        us(h.p50_ns),
                        us(h.p99_ns),
                        us(h.p999_ns),
                        us(h.max_cpu_ns),
                        opt(h.cpu_over_1ms)
                    );
                }
            }
        }
        s += &format!(
            "  p99 with the querier ÷ without: {}\n",
            opt(self.p99_ratio)
        );
        for q in &self.queries {
            s += &format!(
                "  {}: {} replies of {} lines, µs p50 {} max {}\n",
                q.name,
                q.replies,
                opt(q.lines),
                opt(q.latency_us.p50),
                opt(q.latency_us.max)
            );
        }
        s.trim_end().to_owned()
    }
}

/// Joins each client to its channel, `#qs<index % channels>`.
async fn spread(common: &Common, conns: Vec<Conn>, channels: usize) -> anyhow::Result<Vec<Conn>> {
    if channels == 0 {
        return Ok(conns);
    }
    let deadline = common.deadline;
    setup::for_each(
        common,
        conns,
        "joining their channels",
        move |mut conn| async move {
            let channel = format!("#qs{}", conn.idx % channels);
            conn.join(&channel, deadline).await?;
            Ok(conn)
        },
    )
    .await
}

/// Renames each client once (`<nick>r`): its old nick goes to WHOWAS.
async fn rename(common: &Common, conns: Vec<Conn>) -> anyhow::Result<Vec<Conn>> {
    let deadline = common.deadline;
    setup::for_each(
        common,
        conns,
        "changing nicks",
        move |mut conn| async move {
            let old = conn.nick.clone();
            let new = format!("{old}r");
            conn.send(format!("NICK {new}\r\n").as_bytes(), deadline)
                .await?;
            conn.read_until(deadline, |msg| match msg {
                Msg::Other {
                    prefix, command, ..
                } if command == b"NICK" && prefix_nick(prefix) == old.as_bytes() => Some(Ok(())),
                Msg::Numeric(code @ (432 | 433 | 436 | 437), _) => {
                    Some(Err(format!("NICK {new} refused: {code}")))
                }
                _ => None,
            })
            .await
            .map_err(|e| format!("waiting for the NICK echo: {e}"))??;
            conn.nick = new;
            Ok(conn)
        },
    )
    .await
}

/// Registers the operator who reads `STATS L`.
async fn operator(common: &Common, idx: usize, a: &Args) -> anyhow::Result<Option<Conn>> {
    let Some(name) = &a.oper else {
        return Ok(None);
    };
    let deadline = common.deadline;
    let mut conn = Conn::register(idx, &common.connect, 4096, deadline)
        .await
        .map_err(anyhow::Error::msg)?;
    conn.send(
        format!("OPER {name} {}\r\n", a.oper_password).as_bytes(),
        deadline,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    conn.read_until(deadline, |msg| match msg {
        Msg::Numeric(381, _) => Some(Ok(())),
        Msg::Numeric(code @ (464 | 491), _) => Some(Err(code)),
        _ => None,
    })
    .await
    .map_err(|e| anyhow::anyhow!("waiting for OPER's answer: {e}"))?
    .map_err(|code| anyhow::anyhow!("OPER {name} refused: {code}"))?;
    Ok(Some(conn))
}

/// Reads `STATS L` if there is an operator; a failure is kept as an error.
async fn lock_reading(
    oper: &mut Option<Conn>,
    deadline: Instant,
    errors: &mut Vec<String>,
) -> Option<lock_stats::Reading> {
    match lock_stats::read(oper.as_mut()?, deadline).await {
        Ok(reading) => Some(reading),
        Err(e) => {
            errors.push(e);
            *oper = None;
            None
        }
    }
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<(Report, Extra)> {
    let (n, t) = (a.clients, a.talkers);
    ensure!(t >= 2, "--talkers must be at least 2");
    ensure!(n >= t, "--clients must be at least --talkers");
    ensure!(
        a.phase_secs > 0.0 && a.phase_secs.is_finite(),
        "--phase-secs must be positive"
    );
    ensure!(a.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        a.renames <= n - t,
        "--renames must not exceed the silent clients"
    );
    let messages = ((a.rate * a.phase_secs / t as f64).round() as u64).max(1);

    let conns = setup::register_all(&common, n, 16 * 1024).await.all()?;
    let mut conns = conns.into_iter();
    let talkers: Vec<Conn> = conns.by_ref().take(t).collect();
    let silent: Vec<Conn> = conns.collect();
    let silent = spread(&common, silent, a.channels).await?;
    let (renamed, kept): (Vec<Conn>, Vec<Conn>) =
        silent.into_iter().partition(|c| c.idx < t + a.renames);
    // A nick given up: WHOWAS walks the whole list to find it.
    let whowas = renamed
        .first()
        .map_or_else(|| "nobody".to_owned(), |c| c.nick.clone());
    let mut silent = rename(&common, renamed).await?;
    silent.extend(kept);
    let talkers = setup::join_all(&common, talkers, &a.channel).await?;
    let mut talkers = setup::sync_all(&common, talkers, "syncing the talkers").await?;
    let silent = setup::sync_all(&common, silent, "syncing the silent clients").await?;
    let mut querier = Some(
        Conn::register(n, &common.connect, 64 * 1024, common.deadline)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let mut oper = operator(&common, n + 1, &a).await?;

    let mut errors = Vec::new();
    if oper.is_none() {
        errors.push("no --oper: the lock was not read".to_owned());
    }
    let (mut quiet, mut querying) = (PhaseFigures::default(), PhaseFigures::default());
    let mut queries = querier::empty_figures();
    let started = Instant::now();
    let before = common.probe.read();
    for _round in 0..a.rounds {
        for with_querier in [false, true] {
            let start_lock = lock_reading(&mut oper, common.deadline, &mut errors).await;
            let stop = Arc::new(AtomicBool::new(false));
            let asking = if with_querier {
                let conn = querier.take();
                conn.map(|conn| {
                    let run = querier::run(conn, whowas.clone(), stop.clone(), common.deadline);
                    tokio::spawn(run)
                })
            } else {
                None
            };
            let receivers = (0..t)
                .map(|me| Receiver {
                    slots: (0..t).filter(|&x| x != me).collect(),
                    probe_for: Vec::new(),
                    is_sender: true,
                    messages,
                })
                .collect();
            let senders = (0..t)
                .map(|sender| {
                    Ok(SendSpec {
                        sender,
                        target: a.channel.clone(),
                        messages,
                        pad: a.pad,
                        pace: paced(a.rate, t, sender)?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let m = measure::run(&common, talkers, receivers, senders).await?;
            talkers = m.conns;
            stop.store(true, Ordering::Release);
            if let Some(asking) = asking {
                let grace = common.deadline + Duration::from_secs(2);
                let Ok(Ok((conn, figures, error))) = timeout_at(grace, asking).await else {
                    bail!("the querier did not stop");
                };
                querier = Some(conn);
                errors.extend(error);
                for (sum, more) in queries.iter_mut().zip(&figures) {
                    sum.add(more);
                }
            }
            let end_lock = lock_reading(&mut oper, common.deadline, &mut errors).await;
            let expected = t as u64 * (t as u64 - 1) * messages;
            let phase = if with_querier {
                &mut querying
            } else {
                &mut quiet
            };
            let delivered = m.stats.deliveries;
            phase.add(
                &m.stats.latency,
                delivered,
                expected.saturating_sub(delivered),
            );
            if let (Some(start), Some(end)) = (start_lock, end_lock) {
                phase.add_lock(&end.since(&start));
            }
            errors.extend(m.stats.errors);
        }
    }
    let after = common.probe.read();
    let wall = started.elapsed();

    let mut all: Vec<Conn> = talkers;
    all.extend(silent);
    all.extend(querier);
    all.extend(oper);
    let clients = all.len() as u64;
    setup::quit_all(all).await;

    let p99_ratio = match (quiet.latency_us.p99, querying.latency_us.p99) {
        (Some(q), Some(w)) if q > 0 => Some((w as f64 / q as f64 * 1000.0).round() / 1000.0),
        _ => None,
    };
    let deliveries = quiet.deliveries + querying.deliveries;
    let mut report = Report {
        scenario: "query-stall".into(),
        label: common.label.clone(),
        params: json!({
            "clients": n, "talkers": t, "rate": a.rate, "channels": a.channels,
            "renames": a.renames, "phase_secs": a.phase_secs, "rounds": a.rounds,
            "messages_per_talker_and_phase": messages, "whowas": whowas,
        }),
        clients,
        deliveries: Some(deliveries),
        expected_deliveries: Some(deliveries + quiet.losses + querying.losses),
        losses: Some(quiet.losses + querying.losses),
        latency_us: querying.latency_us,
        latency_of: Some("talkers' messages, send to receipt, with the querier".into()),
        errors,
        ..Report::default()
    };
    report.measured(before, after, wall);
    // The server's CPU covers the queries too: per delivery it means nothing.
    report.cpu_us_per_delivery = None;
    report.deliveries_per_sec = None;
    let extra = Extra {
        quiet,
        querying,
        p99_ratio,
        queries,
    };
    Ok((report, extra))
}
