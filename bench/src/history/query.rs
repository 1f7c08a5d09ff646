//! The `history` scenario's CHATHISTORY requests: one request and its
//! `chathistory` reply batch (timed, its lines checked for order), a
//! request repeated and timed, and the time of a reply's latest line.

use std::time::Duration;

use anyhow::bail;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::client::{tag, Client};
use super::clock::parse_time;
use crate::client::{first_param, last_param, show, Msg, ReadError};
use crate::metrics;
use crate::setup::Common;
use crate::traffic::parse_body;

/// The chathistory lines of one reply, as far as they are this scenario's
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Reply {
    pub(super) lines: u64,
    pub(super) first: Option<u64>,
    pub(super) last: Option<u64>,
    /// Lines whose sequence number is not the one after the line before.
    pub(super) gaps: u64,
    /// Lines that are not this scenario's messages (or have no `time`).
    pub(super) foreign: u64,
    /// The latest `time` of the lines, in ms.
    pub(super) latest_ms: Option<u64>,
}

impl Reply {
    pub(super) fn add(&mut self, line: &[u8], body: &[u8]) {
        let ms = tag(line, b"time").and_then(parse_time);
        self.latest_ms = self.latest_ms.max(ms);
        let Some((0, q, _)) = parse_body(body).filter(|_| ms.is_some()) else {
            self.foreign += 1;
            self.lines += 1;
            return;
        };
        match self.last {
            None => self.first = Some(q),
            Some(last) if last + 1 != q => self.gaps += 1,
            Some(_) => {}
        }
        self.last = Some(q);
        self.lines += 1;
    }
}

/// Sends one CHATHISTORY request and reads its `chathistory` batch;
/// returns the time from the request to `BATCH -ref`, and the lines. The
/// inner error is a refusal (FAIL or an error numeric), the outer one a
/// connection that failed or a reply that never ended.
pub(super) async fn request(
    client: &mut Client,
    line: &str,
    common: &Common,
) -> Result<Result<(Duration, Reply), String>, String> {
    let deadline = (Instant::now() + common.stall).min(common.deadline);
    let sent = Instant::now();
    client.send(line.as_bytes(), deadline).await?;
    let mut batch: Option<Vec<u8>> = None;
    let mut reply = Reply::default();
    client
        .read_until(deadline, |raw, msg| match msg {
            Msg::Other {
                command, params, ..
            } if command == b"BATCH" => {
                let reference = first_param(params);
                let kind = params.split(|&b| b == b' ').nth(1).unwrap_or_default();
                match (reference.split_first(), &batch) {
                    (Some((b'+', r)), None) if kind == b"chathistory" => {
                        batch = Some(r.to_vec());
                        None
                    }
                    (Some((b'-', r)), Some(open)) if r == open.as_slice() => {
                        Some(Ok(sent.elapsed()))
                    }
                    _ => None,
                }
            }
            Msg::Other {
                command, params, ..
            } if command == b"PRIVMSG" || command == b"NOTICE" => {
                if batch.is_some() && tag(raw, b"batch") == batch.as_deref() {
                    reply.add(raw, last_param(params));
                }
                None
            }
            Msg::Other {
                command, params, ..
            } if command == b"FAIL" => Some(Err(format!("FAIL {}", show(params)))),
            Msg::Numeric(code, params) if code >= 400 => {
                Some(Err(format!("{code} {}", show(params))))
            }
            _ => None,
        })
        .await
        .map_err(|e| match e {
            ReadError::Timeout => format!(
                "no end of the reply batch within {}s",
                common.stall.as_secs()
            ),
            ReadError::Closed(why) => format!("lost the connection: {why}"),
        })
        .map(|result| result.map(|took| (took, reply)))
}

/// The outcome of one kind of request, sent `count` times.
pub(super) struct Timed {
    pub(super) latency: Histogram<u64>,
    /// The first reply.
    pub(super) first: Option<Reply>,
    pub(super) errors: Vec<String>,
}

/// Sends `line` `count` times, each after the previous reply ended; every
/// reply must be the same (nothing is written in between).
pub(super) async fn timed(
    client: &mut Client,
    what: &str,
    line: &str,
    count: u64,
    common: &Common,
) -> Timed {
    let mut out = Timed {
        latency: metrics::histogram(),
        first: None,
        errors: Vec::new(),
    };
    let mut differing = 0;
    for _ in 0..count {
        match request(client, line, common).await {
            Ok(Ok((took, reply))) => {
                out.latency.record(took.as_micros() as u64).ok();
                match out.first {
                    None => out.first = Some(reply),
                    Some(first) if first != reply => differing += 1,
                    Some(_) => {}
                }
            }
            Ok(Err(refused)) => out.errors.push(format!("{what}: {refused}")),
            Err(e) => {
                out.errors.push(format!("{what}: {e}"));
                break;
            }
        }
    }
    if differing > 0 {
        out.errors.push(format!(
            "{what}: {differing} of {count} replies differ from the first ({:?})",
            out.first
        ));
    }
    out
}

/// The time in ms of the first reply line to `line` (the latest one when
/// there are several).
pub(super) async fn time_of(
    client: &mut Client,
    line: &str,
    common: &Common,
) -> anyhow::Result<u64> {
    match request(client, line, common).await.and_then(|r| r) {
        Ok((_, reply)) => match reply.latest_ms {
            Some(ms) => Ok(ms),
            None if reply.lines == 0 => bail!("`{}`: no stored messages", line.trim_end()),
            None => bail!("`{}`: no line with a time tag", line.trim_end()),
        },
        Err(e) => bail!("`{}`: {e}", line.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_track_order() {
        let mut r = Reply::default();
        for q in [5, 6, 7] {
            let line = format!("@time=2024-01-01T00:00:00.00{q}Z :a PRIVMSG #h :0 {q} 1 xx");
            r.add(line.as_bytes(), format!("0 {q} 1 xx").as_bytes());
        }
        assert_eq!((r.lines, r.first, r.last, r.gaps), (3, Some(5), Some(7), 0));
        assert_eq!(r.latest_ms, parse_time(b"2024-01-01T00:00:00.007Z"));
        r.add(
            b"@time=2024-01-01T00:00:00.009Z :a PRIVMSG #h :0 9 1",
            b"0 9 1",
        );
        assert_eq!(r.gaps, 1);
        r.add(b":a PRIVMSG #h :hello", b"hello");
        assert_eq!((r.lines, r.foreign), (5, 1));
    }
}
