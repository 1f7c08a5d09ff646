//! The `history` scenario's fill: the sender writes the channel's
//! messages under a window while the member receives them, and one task
//! reads both connections, counting deliveries, duplicates, reordering and
//! latency, and keeping the `time` of the messages up to the middle one.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use tokio::time::{timeout_at, Instant};

use super::client::{tag, Client};
use super::clock::parse_time;
use super::{Args, MAX_BATCH, TIMES_KEPT};
use crate::client::{classify, last_param, pong, server_error, show, Msg};
use crate::metrics;
use crate::seq::{Arrival, Seq};
use crate::setup::Common;
use crate::traffic::parse_body;
use crate::traffic::{FLUSH, SETTLE};

/// What one ingest counted.
pub(super) struct Ingest {
    sent: u64,
    pub(super) deliveries: u64,
    pub(super) duplicates: u64,
    pub(super) reordered: u64,
    pub(super) latency: Histogram<u64>,
    pub(super) started: Instant,
    pub(super) last_delivery: Option<Instant>,
    /// The end of the ingest: the settle PONG, or where it stopped.
    pub(super) ended: Instant,
    /// The `time` (text, ms) of message `messages / 2`.
    pub(super) mid_time: Option<(String, u64)>,
    /// The `time` in ms of messages `times_from..=messages / 2`.
    pub(super) times: Vec<Option<u64>>,
    pub(super) times_from: u64,
    /// Numerics 400 and up (and unexpected PRIVMSGs, as 0), by code.
    numerics: HashMap<u16, u64>,
    pub(super) errors: Vec<String>,
}

/// Where the ingest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sending,
    /// Waiting for the sender's flush PONG.
    Flushing,
    /// Waiting for the member's settle PONG.
    Settling,
}

/// The fill: the sender sends `messages` lines to the channel, at most
/// `window` of them not yet received by the member; then the sender's
/// flush PING and the member's settle PING, as in fanout. One task reads
/// both connections, so the window opens as soon as the member's read is
/// handled.
pub(super) async fn ingest(
    common: &Common,
    a: &Args,
    sender: &mut Client,
    member: &mut Client,
) -> Ingest {
    let (n, deadline) = (a.messages, common.deadline);
    let mid = n / 2;
    let times_from = mid.saturating_sub(TIMES_KEPT);
    let head = format!("PRIVMSG {} :0 ", a.channel);
    let padding = " ".to_owned() + &"x".repeat(a.pad);
    let mut buf = Vec::with_capacity(MAX_BATCH as usize * (head.len() + a.pad + 32));
    let mut itoa = itoa::Buffer::new();
    let mut seq = Seq::default();
    let mut phase = Phase::Sending;
    let mut t = Ingest {
        sent: 0,
        deliveries: 0,
        duplicates: 0,
        reordered: 0,
        latency: metrics::histogram(),
        started: Instant::now(),
        last_delivery: None,
        ended: Instant::now(),
        mid_time: None,
        times: vec![None; (mid - times_from + 1) as usize],
        times_from,
        numerics: HashMap::new(),
        errors: Vec::new(),
    };
    loop {
        if phase == Phase::Sending {
            let in_flight = t.sent.saturating_sub(t.deliveries);
            if in_flight < a.window && t.sent < n {
                let k = (a.window - in_flight).min(n - t.sent).min(MAX_BATCH);
                let ns = common.now_ns();
                buf.clear();
                for q in t.sent..t.sent + k {
                    buf.extend_from_slice(head.as_bytes());
                    buf.extend_from_slice(itoa.format(q).as_bytes());
                    buf.push(b' ');
                    buf.extend_from_slice(itoa.format(ns).as_bytes());
                    if a.pad > 0 {
                        buf.extend_from_slice(padding.as_bytes());
                    }
                    buf.extend_from_slice(b"\r\n");
                }
                t.sent += k;
                if t.sent == n {
                    buf.extend_from_slice(b"PING :");
                    buf.extend_from_slice(FLUSH);
                    buf.extend_from_slice(b"\r\n");
                    phase = Phase::Flushing;
                }
                if let Err(e) = sender.send(&buf, deadline).await {
                    t.errors.push(format!("sender: {e}"));
                    break;
                }
            }
        }
        let wait = (Instant::now() + common.stall).min(deadline);
        let read = timeout_at(wait, async {
            tokio::select! {
                r = member.lines.fill(&mut member.rd) => (true, r),
                r = sender.lines.fill(&mut sender.rd) => (false, r),
            }
        })
        .await;
        let (from_member, now) = match read {
            Err(_) => {
                t.errors.push(match phase {
                    Phase::Sending => format!(
                        "the member received nothing for {}s; stopped after {} of {n} messages",
                        common.stall.as_secs(),
                        t.sent
                    ),
                    Phase::Flushing => "no PONG to the sender's flush PING".to_owned(),
                    Phase::Settling => "no PONG to the member's settle PING".to_owned(),
                });
                break;
            }
            Ok((from_member, Ok(0))) => {
                let who = if from_member { "member" } else { "sender" };
                t.errors.push(format!(
                    "the {who} lost its connection: closed by the server"
                ));
                break;
            }
            Ok((from_member, Err(e))) => {
                let who = if from_member { "member" } else { "sender" };
                t.errors.push(format!("the {who}: read failed: {e}"));
                break;
            }
            Ok((from_member, Ok(_))) => (from_member, Instant::now()),
        };
        let mut flushed = false;
        let mut settled = false;
        let mut failed = None;
        if from_member {
            let now_ns = now.saturating_duration_since(common.epoch).as_nanos() as u64;
            let mut delivered = false;
            while let Some(line) = member.lines.next_line() {
                match classify(line) {
                    Msg::Other {
                        command, params, ..
                    } if command == b"PRIVMSG" => {
                        let Some((0, q, sent_ns)) =
                            parse_body(last_param(params)).filter(|&(_, q, _)| q < n)
                        else {
                            *t.numerics.entry(0).or_default() += 1;
                            continue;
                        };
                        match seq.record(q) {
                            Arrival::Duplicate => t.duplicates += 1,
                            Arrival::New { reordered } => {
                                t.deliveries += 1;
                                t.reordered += reordered as u64;
                                delivered = true;
                                t.latency.record(now_ns.saturating_sub(sent_ns) / 1000).ok();
                                if q >= times_from && q <= mid {
                                    let time = tag(line, b"time");
                                    let ms = time.and_then(parse_time);
                                    t.times[(q - times_from) as usize] = ms;
                                    if q == mid {
                                        t.mid_time = time.zip(ms).map(|(s, ms)| (show(s), ms));
                                    }
                                }
                            }
                        }
                    }
                    Msg::Ping(token) => pong(&mut member.out, token),
                    Msg::Pong(token) if token == SETTLE => settled = true,
                    Msg::Error(text) => failed = Some(server_error(text)),
                    Msg::Numeric(code, _) if code >= 400 => {
                        *t.numerics.entry(code).or_default() += 1;
                    }
                    _ => {}
                }
            }
            if delivered {
                t.last_delivery = Some(now);
            }
        } else {
            while let Some(line) = sender.lines.next_line() {
                match classify(line) {
                    Msg::Ping(token) => pong(&mut sender.out, token),
                    Msg::Pong(token) if token == FLUSH => flushed = true,
                    Msg::Error(text) => failed = Some(server_error(text)),
                    Msg::Numeric(code, _) if code >= 400 => {
                        *t.numerics.entry(code).or_default() += 1;
                    }
                    _ => {}
                }
            }
        }
        if let Some(e) = failed {
            let who = if from_member { "member" } else { "sender" };
            t.errors.push(format!("the {who} lost its connection: {e}"));
            break;
        }
        if flushed && phase == Phase::Flushing {
            // Every message was handled: after the member's PONG, whatever
            // it has not received is lost.
            phase = Phase::Settling;
            member.out.extend_from_slice(b"PING :");
            member.out.extend_from_slice(SETTLE);
            member.out.extend_from_slice(b"\r\n");
        }
        let flushed_out = match member.flush_out(deadline).await {
            Ok(()) => sender.flush_out(deadline).await,
            e => e,
        };
        if let Err(e) = flushed_out {
            t.errors.push(format!("write failed: {e}"));
            break;
        }
        if settled {
            break;
        }
    }
    t.ended = Instant::now();
    let mut codes: Vec<_> = t.numerics.iter().collect();
    codes.sort();
    for (code, count) in codes {
        t.errors.push(match code {
            0 => format!("{count} PRIVMSGs not from this run's sender"),
            c => format!("{count} error numerics {c} from the server during the fill"),
        });
    }
    t
}
