//! Parlor's `STATS L`: how long its state lock was held, read by an
//! operator before and after each phase. The server counts holds since it
//! started, so a phase's holds are the difference of two readings; the
//! longest hold restarts from zero at every reading, so the second
//! reading's maximum is the phase's.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use crate::client::{last_param, Conn, Msg};

/// One kind of hold (exclusive or shared), as one reading gave it.
#[derive(Debug, Clone, Default)]
pub struct Holds {
    pub holds: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub over_1ms: u64,
    pub max_cpu_ns: u64,
    pub cpu_over_1ms: u64,
    /// The server reported the CPU figures.
    pub cpu_reported: bool,
    /// Shortest hold of the bucket (ns) → holds in it.
    pub buckets: BTreeMap<u64, u64>,
}

/// Both kinds, as one reading gave them.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub exclusive: Holds,
    pub shared: Holds,
}

/// One kind of hold over one stretch of time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HoldFigures {
    pub holds: u64,
    /// Mean hold, in ns.
    pub mean_ns: Option<u64>,
    /// Exact: the longest hold.
    pub max_ns: u64,
    /// Exact: holds longer than 1 ms.
    pub over_1ms: u64,
    /// The most CPU time the holding thread used in one hold: a hold far
    /// longer than this waited for a CPU (`null` from a server that does
    /// not report it).
    pub max_cpu_ns: Option<u64>,
    /// Holds in which the holding thread used more than 1 ms of CPU.
    pub cpu_over_1ms: Option<u64>,
    /// The bucket each quantile falls in, by its shortest hold (the
    /// buckets are a quarter of a power of two wide, so a hold is at most
    /// 25% longer than its bucket's floor).
    pub p50_ns: Option<u64>,
    pub p90_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub p999_ns: Option<u64>,
    /// The whole distribution: bucket floor (ns) → holds.
    pub buckets: BTreeMap<u64, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LockFigures {
    pub exclusive: HoldFigures,
    pub shared: HoldFigures,
}

impl Holds {
    /// What happened between `before` and `self`.
    fn since(&self, before: &Holds) -> HoldFigures {
        let mut buckets = BTreeMap::new();
        for (&floor, &count) in &self.buckets {
            let new = count.saturating_sub(before.buckets.get(&floor).copied().unwrap_or(0));
            if new > 0 {
                buckets.insert(floor, new);
            }
        }
        let holds = self.holds.saturating_sub(before.holds);
        let total = self.total_ns.saturating_sub(before.total_ns);
        let quantile = |q: f64| {
            let rank = ((holds as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            buckets.iter().find_map(|(&floor, &count)| {
                seen += count;
                (seen >= rank).then_some(floor)
            })
        };
        HoldFigures {
            holds,
            mean_ns: (holds > 0).then(|| total / holds),
            max_ns: self.max_ns,
            over_1ms: self.over_1ms.saturating_sub(before.over_1ms),
            max_cpu_ns: self.cpu_reported.then_some(self.max_cpu_ns),
            cpu_over_1ms: self
                .cpu_reported
                .then(|| self.cpu_over_1ms.saturating_sub(before.cpu_over_1ms)),
            p50_ns: quantile(0.5),
            p90_ns: quantile(0.9),
            p99_ns: quantile(0.99),
            p999_ns: quantile(0.999),
            buckets,
        }
    }

    /// Adds another stretch's figures to this one (the max is the larger).
    pub fn add(into: &mut HoldFigures, more: &HoldFigures) {
        let total = into.mean_ns.unwrap_or(0) * into.holds + more.mean_ns.unwrap_or(0) * more.holds;
        let cpu_reported = into.max_cpu_ns.is_some() && more.max_cpu_ns.is_some();
        let mut merged = Holds {
            holds: into.holds + more.holds,
            total_ns: total,
            max_ns: into.max_ns.max(more.max_ns),
            over_1ms: into.over_1ms + more.over_1ms,
            max_cpu_ns: into.max_cpu_ns.max(more.max_cpu_ns).unwrap_or(0),
            cpu_over_1ms: into.cpu_over_1ms.unwrap_or(0) + more.cpu_over_1ms.unwrap_or(0),
            cpu_reported,
            buckets: into.buckets.clone(),
        };
        for (&floor, &count) in &more.buckets {
            *merged.buckets.entry(floor).or_default() += count;
        }
        *into = merged.since(&Holds::default());
    }
}

impl Reading {
    pub fn since(&self, before: &Reading) -> LockFigures {
        LockFigures {
            exclusive: self.exclusive.since(&before.exclusive),
            shared: self.shared.since(&before.shared),
        }
    }
}

impl LockFigures {
    pub fn add(&mut self, more: &LockFigures) {
        Holds::add(&mut self.exclusive, &more.exclusive);
        Holds::add(&mut self.shared, &more.shared);
    }
}

/// Reads one `STATS L` report on `conn` (an operator's connection).
pub async fn read(conn: &mut Conn, deadline: Instant) -> Result<Reading, String> {
    conn.send(b"STATS L\r\n", deadline).await?;
    let mut texts = Vec::new();
    let outcome = conn
        .read_until(deadline, |msg| match msg {
            Msg::Numeric(249, params) => {
                texts.push(String::from_utf8_lossy(last_param(params)).into_owned());
                None
            }
            Msg::Numeric(219, _) => Some(Ok(())),
            Msg::Numeric(481, _) => Some(Err("STATS L: not an operator (481)".to_owned())),
            Msg::Numeric(421, _) => Some(Err("STATS is unknown to the server (421)".to_owned())),
            _ => None,
        })
        .await
        .map_err(|e| format!("reading STATS L: {e}"))?;
    outcome?;
    parse(&texts)
}

/// The reading in the texts of a report's 249 lines.
pub fn parse(texts: &[String]) -> Result<Reading, String> {
    let mut reading = Reading::default();
    let mut seen = false;
    for text in texts {
        let mut words = text.split(' ');
        let holds = match words.next() {
            Some("exclusive") => &mut reading.exclusive,
            Some("shared") => &mut reading.shared,
            _ => return Err(format!("STATS L: {text}")),
        };
        seen = true;
        let mut rest = words.peekable();
        let is_buckets = rest.peek() == Some(&"buckets");
        if is_buckets {
            rest.next();
        }
        for pair in rest {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("STATS L: cannot read {pair:?}"))?;
            let value: u64 = value
                .parse()
                .map_err(|_| format!("STATS L: cannot read {pair:?}"))?;
            if is_buckets {
                let floor = key
                    .parse()
                    .map_err(|_| format!("STATS L: cannot read {pair:?}"))?;
                holds.buckets.insert(floor, value);
                continue;
            }
            match key {
                "holds" => holds.holds = value,
                "total_ns" => holds.total_ns = value,
                "max_ns" => holds.max_ns = value,
                "over_1ms" => holds.over_1ms = value,
                "max_cpu_ns" => {
                    holds.max_cpu_ns = value;
                    holds.cpu_reported = true;
                }
                "cpu_over_1ms" => holds.cpu_over_1ms = value,
                _ => {}
            }
        }
    }
    if !seen {
        return Err("STATS L gave no figures".to_owned());
    }
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_phase_is_the_difference_of_two_readings() {
        let before = parse(&texts(&[
            "exclusive holds=10 total_ns=10000 max_ns=5000 over_1ms=1",
            "exclusive buckets 512=4 1024=6",
            "shared holds=0 total_ns=0 max_ns=0 over_1ms=0",
        ]))
        .unwrap();
        let after = parse(&texts(&[
            "exclusive holds=110 total_ns=110000 max_ns=2000000 over_1ms=3 \
             max_cpu_ns=150000 cpu_over_1ms=0",
            "exclusive buckets 512=4 1024=96",
            "exclusive buckets 1966080=10",
            "shared holds=2 total_ns=2000 max_ns=1000 over_1ms=0",
            "shared buckets 896=2",
        ]))
        .unwrap();
        let phase = after.since(&before);
        let e = &phase.exclusive;
        assert_eq!(e.holds, 100);
        assert_eq!(e.mean_ns, Some(1000));
        assert_eq!(e.max_ns, 2_000_000, "the later reading's maximum");
        assert_eq!(e.over_1ms, 2);
        assert_eq!(e.max_cpu_ns, Some(150_000));
        assert_eq!(e.cpu_over_1ms, Some(0));
        assert_eq!(phase.shared.max_cpu_ns, None, "not reported");
        assert_eq!(e.buckets.get(&512), None, "no new holds there");
        assert_eq!(e.p50_ns, Some(1024));
        assert_eq!(e.p90_ns, Some(1024));
        assert_eq!(e.p99_ns, Some(1_966_080));
        assert_eq!(phase.shared.holds, 2);
        assert_eq!(phase.shared.p999_ns, Some(896));

        let mut sum = phase.clone();
        sum.add(&phase);
        assert_eq!(sum.exclusive.holds, 200);
        assert_eq!(sum.exclusive.over_1ms, 4);
        assert_eq!(sum.exclusive.max_ns, 2_000_000);
        assert_eq!(sum.exclusive.buckets.get(&1024), Some(&180));
    }

    #[test]
    fn timing_turned_off_is_an_error() {
        let off = texts(&["lock timing is off (start the server with PARLOR_LOCK_TIMING=1)"]);
        assert!(parse(&off).unwrap_err().contains("timing is off"));
        assert!(parse(&[]).is_err());
    }
}
