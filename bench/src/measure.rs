//! The measured phase of `fanout` and `dm`: receivers and senders run, the
//! senders flush (a PING after their last message), then, once every
//! expected delivery has arrived or none has for a second, every receiver
//! settles (a PING of its own; what has not arrived before its PONG is
//! lost). CPU and RSS are read right before the first message and when the
//! last expected delivery arrives; a run with losses has no such moment,
//! and is read after the settle instead.
//!
//! The closing PING round is left out because its cost is per client, not
//! per message: in `dm` (1,000 clients, 200 messages each) it was 7–14% of
//! Parlor's CPU and 4–5% of InspIRCd's, which pulled the ratios towards 1. It
//! is still reported, as `cpu_us_per_delivery_with_settle`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use crate::client::{Conn, Writer};
use serde_json::Value;

use crate::metrics::{Latency, Reading, Report};
use crate::setup::{self, Common};
use crate::traffic::{self, Receiver, RecvStats, SendSpec, Shared};

impl Measured {
    /// Closes the connections and reports a message-traffic run (fanout,
    /// dm): deliveries, losses, order and latency over the measured phase.
    pub async fn finish(
        self,
        scenario: &str,
        common: &Common,
        params: Value,
        expected: u64,
    ) -> Report {
        let clients = self.conns.len() as u64;
        setup::quit_all(self.conns).await;
        let stats = self.stats;
        let mut report = Report {
            scenario: scenario.into(),
            label: common.label.clone(),
            params,
            clients,
            deliveries: Some(stats.deliveries),
            expected_deliveries: Some(expected),
            losses: Some(expected.saturating_sub(stats.deliveries)),
            duplicates: Some(stats.duplicates),
            reordered: Some(stats.reordered),
            latency_us: Latency::from_histogram(&stats.latency),
            latency_of: Some("message send to receipt, per delivery".into()),
            errors: stats.errors,
            ..Report::default()
        };
        report.measured(self.before, self.after_settle, self.wall);
        report.cpu_us_per_delivery_with_settle = report.cpu_us_per_delivery;
        if let Some(all_delivered) = self.all_delivered {
            report.measured(self.before, all_delivered, self.wall);
        }
        report
    }
}

/// How long the deliveries may pause before the closing round starts
/// anyway: the messages still missing then are lost.
const SETTLE_AFTER_QUIET: Duration = Duration::from_secs(1);

pub struct Measured {
    pub stats: RecvStats,
    pub before: Reading,
    /// Read when the last expected delivery arrived (`None` after losses).
    pub all_delivered: Option<Reading>,
    /// Read after every receiver settled.
    pub after_settle: Reading,
    /// From the first send to the last delivery (or to the end of the
    /// settle when nothing was delivered).
    pub wall: Duration,
    pub conns: Vec<Conn>,
}

/// Runs the traffic: `receivers[i]` reads for `conns[i]`; each sender
/// writes on the connection of its client index (`spec.sender`).
pub async fn run(
    common: &Arc<Common>,
    conns: Vec<Conn>,
    receivers: Vec<Receiver>,
    senders: Vec<SendSpec>,
) -> anyhow::Result<Measured> {
    let writers: Vec<Writer> = conns.iter().map(|c| c.wr.clone()).collect();
    let expected_deliveries = receivers
        .iter()
        .map(|rx| rx.slots.len() as u64 * rx.messages)
        .sum();
    let shared = Shared::new(senders.len(), expected_deliveries);
    let mut errors = Vec::new();

    let before = common.probe.read();
    let started = Instant::now();
    let mut reading = JoinSet::new();
    for (conn, rx) in conns.into_iter().zip(receivers) {
        reading.spawn(traffic::receive(common.clone(), shared.clone(), conn, rx));
    }
    let mut sending = JoinSet::new();
    let sender_ids: Vec<usize> = senders.iter().map(|s| s.sender).collect();
    for spec in senders {
        let wr = writers[spec.sender].clone();
        sending.spawn(traffic::send_all(common.clone(), shared.clone(), wr, spec));
    }
    let grace = common.deadline + Duration::from_secs(2);
    loop {
        match timeout_at(grace, sending.join_next()).await {
            Err(_) => return Err(common.timed_out("sending")),
            Ok(None) => break,
            Ok(Some(Ok(Ok(())))) => {}
            Ok(Some(Ok(Err(e)))) => errors.push(e),
            Ok(Some(Err(e))) => errors.push(format!("sender task failed: {e}")),
        }
    }
    // Each sender's PONG comes after the server handled all its messages.
    for &s in &sender_ids {
        let _ = writers[s]
            .send_by(b"PING :pb-flush\r\n", common.deadline)
            .await;
    }
    if let Err(e) = traffic::wait_flushed(common, &shared, sender_ids.len()).await {
        return Err(anyhow::anyhow!("{e}"));
    }
    shared
        .wait_delivered(SETTLE_AFTER_QUIET, common.deadline)
        .await;
    for wr in &writers {
        let _ = wr.send_by(b"PING :pb-settle\r\n", common.deadline).await;
    }
    let mut conns = Vec::new();
    let mut stats = Vec::new();
    loop {
        match timeout_at(grace, reading.join_next()).await {
            Err(_) => return Err(common.timed_out("waiting for the receivers to settle")),
            Ok(None) => break,
            Ok(Some(Ok((conn, s)))) => {
                conns.push(conn);
                stats.push(s);
            }
            Ok(Some(Err(e))) => errors.push(format!("receiver task failed: {e}")),
        }
    }
    let after_settle = common.probe.read();
    let ended = Instant::now();
    if ended >= common.deadline {
        return Err(common.timed_out("waiting for the receivers to settle"));
    }
    conns.sort_by_key(|c| c.idx);
    let mut stats = traffic::merge(stats);
    errors.append(&mut stats.errors);
    stats.errors = errors;
    let wall = stats.last_delivery.unwrap_or(ended) - started;
    Ok(Measured {
        stats,
        before,
        all_delivered: shared.all_delivered(),
        after_settle,
        wall,
        conns,
    })
}
