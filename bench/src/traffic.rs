//! Message traffic shared by `fanout` and `dm`: the message format, the
//! flow-controlled and paced senders, and the receivers that check every
//! sender's sequence and record latency.
//!
//! A message's text is `<sender> <seq> <sent_ns> <padding>`, where sent_ns
//! counts from one `Instant` in this process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::time::{timeout, timeout_at, Instant};

use crate::client::{classify, last_param, pong, server_error, Conn, Msg, ReadError, Writer};
use crate::metrics::{histogram, Probe, Reading};
use crate::seq::{Arrival, Seq};
use crate::setup::Common;
use crate::ticker::Ticker;

/// Token of the PING a sender sends after its last message: its PONG
/// means every message before it was fanned out.
pub const FLUSH: &[u8] = b"pb-flush";
/// Token of the PING every receiver gets at the end: after its PONG,
/// whatever was not received is lost.
pub const SETTLE: &[u8] = b"pb-settle";
/// Most messages written in one syscall by a flood sender.
const MAX_BATCH: u64 = 64;

/// How senders pace themselves.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// At most this many messages in flight (sent, not yet received by the
    /// sender's probe).
    Window(u64),
    /// One message every `period` after an offset, on a [`Ticker`] (a late
    /// sender catches up); the latency clock starts at each message's
    /// scheduled time, so a sender held up by the server is not hidden (no
    /// coordinated omission).
    Every(Duration, Duration),
}

/// State the senders, receivers and the coordinator share.
pub struct Shared {
    /// Per sender: messages its probe received.
    pub probe_seen: Vec<AtomicU64>,
    pub probe_wake: Vec<Notify>,
    /// Per sender: its probe lost its connection (the window can no longer
    /// open).
    pub probe_gone: Vec<AtomicBool>,
    /// Senders whose flush PONG arrived (or whose connection ended).
    pub flushed: AtomicUsize,
    pub flushed_wake: Notify,
    /// Deliveries still expected, across every receiver.
    undelivered: AtomicU64,
    /// The reading taken when the last expected delivery arrived: the end
    /// of a run without losses, before the closing PING round.
    all_delivered: OnceLock<Reading>,
    all_delivered_wake: Notify,
}

impl Shared {
    pub fn new(senders: usize, expected_deliveries: u64) -> Arc<Shared> {
        Arc::new(Shared {
            probe_seen: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            probe_wake: (0..senders).map(|_| Notify::new()).collect(),
            probe_gone: (0..senders).map(|_| AtomicBool::new(false)).collect(),
            flushed: AtomicUsize::new(0),
            flushed_wake: Notify::new(),
            undelivered: AtomicU64::new(expected_deliveries),
            all_delivered: OnceLock::new(),
            all_delivered_wake: Notify::new(),
        })
    }

    /// Counts `new` deliveries; the receiver that counts the last expected
    /// one reads the server's CPU and RSS there and then.
    fn delivered(&self, new: u64, probe: &Probe) {
        let before = self
            .undelivered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(new))
            })
            .unwrap_or_else(|left| left);
        if before > 0 && before <= new {
            let _ = self.all_delivered.set(probe.read());
            self.all_delivered_wake.notify_waiters();
        }
    }

    /// Waits until every expected delivery has arrived, or until `quiet`
    /// passes without one (the rest are lost), or the run's deadline.
    /// The closing PING round starts after it, so that it does not overlap
    /// the last deliveries: a server that answers a sender's PING before it
    /// has written that sender's messages to everyone would otherwise have
    /// the round counted in its CPU, and one that answers after would not.
    pub async fn wait_delivered(&self, quiet: Duration, deadline: Instant) {
        loop {
            let done = self.all_delivered_wake.notified();
            let left = self.undelivered.load(Ordering::Acquire);
            if self.all_delivered.get().is_some() || left == 0 || Instant::now() >= deadline {
                return;
            }
            let until = (Instant::now() + quiet).min(deadline);
            if timeout_at(until, done).await.is_err()
                && self.undelivered.load(Ordering::Acquire) == left
            {
                return;
            }
        }
    }

    /// The reading taken at the last expected delivery, if every expected
    /// delivery arrived.
    pub fn all_delivered(&self) -> Option<Reading> {
        self.all_delivered.get().copied()
    }
}

/// What one sender sends.
pub struct SendSpec {
    pub sender: usize,
    /// A channel or a nick.
    pub target: String,
    pub messages: u64,
    /// Bytes of filler after the numbers.
    pub pad: usize,
    pub pace: Pace,
}

/// One sender: `messages` lines to `target`.
pub async fn send_all(
    common: Arc<Common>,
    shared: Arc<Shared>,
    wr: Writer,
    spec: SendSpec,
) -> Result<(), String> {
    let SendSpec {
        sender,
        target,
        messages,
        pad,
        pace,
    } = spec;
    let head = format!("PRIVMSG {target} :{sender} ");
    let padding = " ".to_owned() + &"x".repeat(pad);
    let mut buf = Vec::with_capacity(64 * (head.len() + pad + 32));
    let mut itoa = itoa::Buffer::new();
    let mut line = |buf: &mut Vec<u8>, seq: u64, ns: u64| {
        buf.extend_from_slice(head.as_bytes());
        buf.extend_from_slice(itoa.format(seq).as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(itoa.format(ns).as_bytes());
        if pad > 0 {
            buf.extend_from_slice(padding.as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
    };
    let write_failed = |e: std::io::Error| format!("sender {sender}: write failed: {e}");
    let mut sent = 0;
    match pace {
        Pace::Window(window) => {
            while sent < messages {
                let room = loop {
                    let seen = shared.probe_seen[sender].load(Ordering::Acquire);
                    let in_flight = sent.saturating_sub(seen);
                    if in_flight < window {
                        break window - in_flight;
                    }
                    if shared.probe_gone[sender].load(Ordering::Acquire) {
                        return Err(format!(
                            "sender {sender}: its probe lost its connection; \
                             stopped after {sent} of {messages} messages"
                        ));
                    }
                    let wake = shared.probe_wake[sender].notified();
                    if timeout(common.stall, wake).await.is_err() {
                        return Err(format!(
                            "sender {sender}: its probe received nothing for {}s; \
                             stopped after {sent} of {messages} messages",
                            common.stall.as_secs()
                        ));
                    }
                };
                let n = room.min(messages - sent).min(MAX_BATCH);
                let ns = common.now_ns();
                buf.clear();
                for seq in sent..sent + n {
                    line(&mut buf, seq, ns);
                }
                bounded(&common, wr.send(&buf))
                    .await?
                    .map_err(write_failed)?;
                sent += n;
            }
        }
        Pace::Every(period, offset) => {
            let mut ticker = Ticker::start(offset, period)
                .map_err(|e| format!("sender {sender}: cannot start its timer: {e}"))?;
            while sent < messages {
                let due = bounded(&common, ticker.tick())
                    .await?
                    .map_err(|e| format!("sender {sender}: its timer failed: {e}"))?;
                let ns = due.saturating_duration_since(common.epoch).as_nanos() as u64;
                buf.clear();
                line(&mut buf, sent, ns);
                bounded(&common, wr.send(&buf))
                    .await?
                    .map_err(write_failed)?;
                sent += 1;
            }
        }
    }
    Ok(())
}

async fn bounded<T>(common: &Common, f: impl std::future::Future<Output = T>) -> Result<T, String> {
    timeout_at(common.deadline, f)
        .await
        .map_err(|_| "sender timed out (--timeout-secs)".to_owned())
}

/// What one receiver counted.
pub struct RecvStats {
    pub deliveries: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub latency: Histogram<u64>,
    pub last_delivery: Option<Instant>,
    pub errors: Vec<String>,
    /// Numerics (and unexpected lines) seen during the run, by code.
    pub numerics: HashMap<u16, u64>,
}

/// One receiving client.
pub struct Receiver {
    /// Whose messages count for this client, as slots: in fanout every
    /// sender but itself, in dm its partner.
    pub slots: Vec<usize>,
    /// Senders whose probe this client is.
    pub probe_for: Vec<usize>,
    /// Whether this client is itself a sender (then it reports its flush).
    pub is_sender: bool,
    /// Messages each sender sends (a seq beyond is invalid).
    pub messages: u64,
}

/// Reads until the settle PONG (or the connection ends), counting.
pub async fn receive(
    common: Arc<Common>,
    shared: Arc<Shared>,
    mut conn: Conn,
    rx: Receiver,
) -> (Conn, RecvStats) {
    let mut seqs: HashMap<usize, Seq> = rx.slots.iter().map(|&s| (s, Seq::default())).collect();
    let mut stats = RecvStats {
        deliveries: 0,
        duplicates: 0,
        reordered: 0,
        latency: histogram(),
        last_delivery: None,
        errors: Vec::new(),
        numerics: HashMap::new(),
    };
    let mut flushed = !rx.is_sender;
    let mut probe_counts: Vec<u64> = vec![0; rx.probe_for.len()];
    let ended = 'read: loop {
        let now = match conn.fill_unbounded().await {
            Ok(now) => now,
            Err(e) => break 'read Some(e),
        };
        let now_ns = now.saturating_duration_since(common.epoch).as_nanos() as u64;
        let mut delivered = 0;
        let mut settled = false;
        while let Some(line) = conn.lines.next_line() {
            match classify(line) {
                Msg::Other {
                    command, params, ..
                } if command == b"PRIVMSG" => {
                    let Some((s, q, sent_ns)) = parse_body(last_param(params)) else {
                        *stats.numerics.entry(0).or_default() += 1;
                        continue;
                    };
                    let Some(seq) = seqs.get_mut(&s).filter(|_| q < rx.messages) else {
                        *stats.numerics.entry(0).or_default() += 1;
                        continue;
                    };
                    match seq.record(q) {
                        Arrival::Duplicate => stats.duplicates += 1,
                        Arrival::New { reordered } => {
                            stats.deliveries += 1;
                            stats.reordered += reordered as u64;
                            delivered += 1;
                            let us = now_ns.saturating_sub(sent_ns) / 1000;
                            stats.latency.record(us).ok();
                            if let Some(i) = rx.probe_for.iter().position(|&p| p == s) {
                                probe_counts[i] += 1;
                            }
                        }
                    }
                }
                Msg::Ping(token) => pong(&mut conn.out, token),
                Msg::Pong(token) if token == FLUSH && !flushed => {
                    flushed = true;
                    shared.flushed.fetch_add(1, Ordering::AcqRel);
                    shared.flushed_wake.notify_one();
                }
                Msg::Pong(token) if token == SETTLE => settled = true,
                Msg::Error(text) => break 'read Some(server_error(text)),
                Msg::Numeric(code, _) if code >= 400 => {
                    *stats.numerics.entry(code).or_default() += 1;
                }
                _ => {}
            }
        }
        if delivered > 0 {
            stats.last_delivery = Some(now);
            shared.delivered(delivered, &common.probe);
            for (i, &s) in rx.probe_for.iter().enumerate() {
                if shared.probe_seen[s].swap(probe_counts[i], Ordering::AcqRel) != probe_counts[i] {
                    shared.probe_wake[s].notify_one();
                }
            }
        }
        if let Err(e) = conn.flush_out().await {
            break 'read Some(e);
        }
        if settled {
            break 'read None;
        }
    };
    if let Some(e) = ended {
        for &s in &rx.probe_for {
            shared.probe_gone[s].store(true, Ordering::Release);
            shared.probe_wake[s].notify_one();
        }
        stats.errors.push(match e {
            ReadError::Timeout => "receiver timed out (--timeout-secs)".to_owned(),
            ReadError::Closed(why) => format!("receiver lost its connection: {why}"),
        });
    }
    if !flushed {
        // A sender that can no longer flush must not hold up the others.
        shared.flushed.fetch_add(1, Ordering::AcqRel);
        shared.flushed_wake.notify_one();
    }
    (conn, stats)
}

/// `<sender> <seq> <sent_ns> ...` → its three numbers.
pub(crate) fn parse_body(body: &[u8]) -> Option<(usize, u64, u64)> {
    let mut words = body.split(|&b| b == b' ');
    let mut num = || -> Option<u64> {
        let w = words.next()?;
        if w.is_empty() || w.len() > 19 {
            return None;
        }
        w.iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + (b - b'0') as u64)
        })
    };
    Some((num()? as usize, num()?, num()?))
}

/// Waits until every sender flushed (its PONG came back), bounded.
pub async fn wait_flushed(common: &Common, shared: &Shared, senders: usize) -> Result<(), String> {
    loop {
        if shared.flushed.load(Ordering::Acquire) >= senders {
            return Ok(());
        }
        if timeout_at(common.deadline, shared.flushed_wake.notified())
            .await
            .is_err()
        {
            return Err("timed out waiting for the senders' flush PONGs".into());
        }
    }
}

/// Sums receivers' counts; unexpected numerics become errors.
pub fn merge(all: Vec<RecvStats>) -> RecvStats {
    let mut total = RecvStats {
        deliveries: 0,
        duplicates: 0,
        reordered: 0,
        latency: histogram(),
        last_delivery: None,
        errors: Vec::new(),
        numerics: HashMap::new(),
    };
    for s in all {
        total.deliveries += s.deliveries;
        total.duplicates += s.duplicates;
        total.reordered += s.reordered;
        let _ = total.latency.add(&s.latency);
        total.last_delivery = total.last_delivery.max(s.last_delivery);
        total.errors.extend(s.errors);
        for (code, n) in s.numerics {
            *total.numerics.entry(code).or_default() += n;
        }
    }
    let mut codes: Vec<_> = total.numerics.iter().collect();
    codes.sort();
    for (code, n) in codes {
        total.errors.push(match code {
            0 => format!("{n} PRIVMSGs not from this run's senders"),
            c => format!("{n} error numerics {c} from the server"),
        });
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reading_is_taken_at_the_last_expected_delivery() {
        let probe = Probe::new(None);
        let shared = Shared::new(1, 5);
        shared.delivered(3, &probe);
        assert!(shared.all_delivered().is_none(), "2 deliveries are missing");
        shared.delivered(2, &probe);
        let reading = shared.all_delivered().expect("read at the fifth delivery");
        assert!(reading.bench_cpu.is_some(), "this process's CPU was read");
        // Nothing counted past the expected total moves the reading.
        shared.delivered(4, &probe);
        assert_eq!(shared.all_delivered().unwrap().bench_cpu, reading.bench_cpu);
    }

    #[tokio::test]
    async fn the_closing_round_waits_for_the_last_delivery_or_a_quiet_spell() {
        let probe = Probe::new(None);
        let far = Instant::now() + Duration::from_secs(30);
        let limit = Duration::from_secs(10);

        // The last delivery arrives while it waits: it returns then, long
        // before the quiet spell would end.
        let shared = Shared::new(1, 2);
        shared.delivered(1, &probe);
        let waiting = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.wait_delivered(Duration::from_secs(20), far).await })
        };
        tokio::task::yield_now().await;
        shared.delivered(1, &probe);
        timeout(limit, waiting)
            .await
            .expect("woken by the last delivery")
            .unwrap();

        // Nothing more comes: it gives up after the quiet spell.
        let shared = Shared::new(1, 2);
        shared.delivered(1, &probe);
        let started = Instant::now();
        timeout(limit, shared.wait_delivered(Duration::from_millis(50), far))
            .await
            .expect("a quiet spell ends the wait");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(shared.all_delivered().is_none());
    }

    #[test]
    fn bodies_parse() {
        assert_eq!(parse_body(b"3 17 12345 xxxx"), Some((3, 17, 12345)));
        assert_eq!(parse_body(b"3 17"), None);
        assert_eq!(parse_body(b"hello there you"), None);
    }
}
