//! The probe of `login`: a client that is not logging in sends a PING
//! every 10 ms while the others do, and records each PONG's round trip.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use crate::client::{classify, pong, server_error, Conn, Msg};
use crate::metrics;
use crate::setup::Common;

/// How often the probe sends a PING during a burst.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);

/// Records the round trip of the probe's PING `token`, answered at `now`.
fn answered(
    due: &mut VecDeque<(u64, Instant)>,
    token: &[u8],
    now: Instant,
    rtt: &mut Histogram<u64>,
) {
    let Some(k) = token
        .strip_prefix(b"probe-")
        .and_then(|k| std::str::from_utf8(k).ok()?.parse::<u64>().ok())
    else {
        return;
    };
    // PONGs come in order: earlier PINGs still due were not answered.
    while let Some(&(at_k, at)) = due.front().filter(|(at_k, _)| *at_k <= k) {
        due.pop_front();
        if at_k == k {
            rtt.record((now - at).as_micros() as u64).ok();
        }
    }
}

/// The probe's round: from the start of the burst until `stop`, a PING
/// every 10 ms; then it waits for the PONGs still due.
pub async fn probe(
    mut conn: Conn,
    mut go: watch::Receiver<bool>,
    mut stop: oneshot::Receiver<()>,
    common: Arc<Common>,
    first: u64,
) -> (Conn, Histogram<u64>, u64, Result<(), String>) {
    let mut rtt = metrics::histogram();
    let mut due: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut next = first;
    let mut ticks = tokio::time::interval(PROBE_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopping = false;
    let mut give_up = common.deadline;
    let _ = go.wait_for(|&go| go).await;
    let result = loop {
        if stopping && due.is_empty() {
            break Ok(());
        }
        tokio::select! {
            biased;
            _ = ticks.tick(), if !stopping => {
                let ping = format!("PING probe-{next}\r\n");
                due.push_back((next, Instant::now()));
                next += 1;
                if let Err(e) = conn.send(ping.as_bytes(), common.deadline).await {
                    break Err(e);
                }
            }
            _ = &mut stop, if !stopping => {
                stopping = true;
                give_up = give_up.min(Instant::now() + common.stall);
            }
            read = conn.fill_unbounded() => {
                let now = match read {
                    Ok(now) => now,
                    Err(e) => break Err(e.to_string()),
                };
                let mut closed = None;
                while let Some(line) = conn.lines.next_line() {
                    match classify(line) {
                        Msg::Pong(token) => answered(&mut due, token, now, &mut rtt),
                        Msg::Ping(token) => pong(&mut conn.out, token),
                        Msg::Error(text) => closed = Some(server_error(text).to_string()),
                        _ => {}
                    }
                }
                if let Some(e) = closed {
                    break Err(e);
                }
                if let Err(e) = conn.flush_out().await {
                    break Err(e.to_string());
                }
            }
            () = sleep_until(give_up), if stopping => {
                break Err(format!("{} PONGs did not come back", due.len()));
            }
        }
    };
    (conn, rtt, next, result.map_err(|e| format!("probe: {e}")))
}
