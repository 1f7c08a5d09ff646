//! Measurements: CPU and RSS from /proc, latency histograms, and the report
//! printed at the end (a human summary, then one JSON line).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

/// Clock ticks per second for /proc CPU times, from `getconf CLK_TCK`.
#[derive(Debug, Clone, Copy)]
pub struct Ticks {
    per_sec: u64,
    /// False when `getconf` failed and 100 was assumed.
    known: bool,
}

impl Ticks {
    pub fn detect() -> Ticks {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0);
        match out {
            Some(per_sec) => Ticks {
                per_sec,
                known: true,
            },
            None => Ticks {
                per_sec: 100,
                known: false,
            },
        }
    }

    /// A note for the report when the tick rate had to be assumed.
    pub fn note(&self) -> Option<String> {
        (!self.known).then(|| "`getconf CLK_TCK` failed; assumed 100 ticks per second".to_owned())
    }

    fn to_us(self, ticks: u64) -> u64 {
        ticks * 1_000_000 / self.per_sec
    }
}

/// User plus system CPU time of a process, in microseconds.
pub fn cpu_us(pid: &str, ticks: Ticks) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces, so
    // fields are counted from the last ')'; field 3 is the first after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(ticks.to_us(utime + stime))
}

/// Resident set size of a process in KiB (VmRSS).
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One reading of the server and of the bench itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    pub server_cpu_us: Option<u64>,
    pub server_rss_kib: Option<u64>,
    pub bench_cpu_us: Option<u64>,
}

/// Reads /proc for the server (when its pid is known) and for this process.
#[derive(Debug, Clone)]
pub struct Probe {
    pub pid: Option<u32>,
    pub ticks: Ticks,
}

impl Probe {
    pub fn new(pid: Option<u32>) -> Probe {
        Probe {
            pid,
            ticks: Ticks::detect(),
        }
    }

    pub fn read(&self) -> Reading {
        let server = self.pid.map(|p| p.to_string());
        Reading {
            server_cpu_us: server.as_deref().and_then(|p| cpu_us(p, self.ticks)),
            server_rss_kib: server.as_deref().and_then(rss_kib),
            bench_cpu_us: cpu_us("self", self.ticks),
        }
    }

    /// Checks the pid is readable, so a typo fails before the run.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid {
            if cpu_us(&pid.to_string(), self.ticks).is_none() {
                anyhow::bail!("cannot read /proc/{pid}/stat: is --server-pid {pid} running?");
            }
        }
        Ok(())
    }
}

/// A latency histogram in microseconds (3 significant figures, growing as
/// needed). Each task keeps its own and they are added up at the end.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid histogram")
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Latency {
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: Some(h.value_at_quantile(0.50)),
            p90: Some(h.value_at_quantile(0.90)),
            p99: Some(h.value_at_quantile(0.99)),
            max: Some(h.max()),
        }
    }
}

/// The JSON object printed as the last line. Fields that do not apply to a
/// scenario, or that could not be measured, are `null`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub scenario: String,
    pub label: Option<String>,
    pub params: Value,
    pub clients: u64,
    pub deliveries: Option<u64>,
    pub expected_deliveries: Option<u64>,
    pub losses: Option<u64>,
    pub duplicates: Option<u64>,
    pub reordered: Option<u64>,
    pub wall_secs: Option<f64>,
    pub deliveries_per_sec: Option<f64>,
    pub server_cpu_us: Option<u64>,
    pub cpu_us_per_delivery: Option<f64>,
    pub registrations: Option<u64>,
    pub registrations_per_sec: Option<f64>,
    pub cpu_us_per_registration: Option<f64>,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_after: Option<u64>,
    pub rss_kib_per_client: Option<f64>,
    pub latency_us: Latency,
    pub errors: Vec<String>,
    /// Extra: the bench's own CPU over the measured phase.
    pub bench_cpu_us: Option<u64>,
    /// Extra: what the latency histogram measures in this scenario.
    pub latency_of: Option<String>,
}

fn ratio(num: Option<u64>, den: Option<u64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0 => Some(round3(n as f64 / d as f64)),
        _ => None,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report {
    /// Fills the CPU, RSS and rate fields from readings taken right before
    /// and right after the measured phase.
    pub fn measured(&mut self, before: Reading, after: Reading, wall: Duration) {
        let secs = wall.as_secs_f64();
        self.wall_secs = Some((secs * 1e6).round() / 1e6);
        self.server_cpu_us = before
            .server_cpu_us
            .zip(after.server_cpu_us)
            .map(|(b, a)| a.saturating_sub(b));
        self.bench_cpu_us = before
            .bench_cpu_us
            .zip(after.bench_cpu_us)
            .map(|(b, a)| a.saturating_sub(b));
        self.rss_kib_before = before.server_rss_kib;
        self.rss_kib_after = after.server_rss_kib;
        if let Some(d) = self.deliveries.filter(|_| secs > 0.0) {
            self.deliveries_per_sec = Some(round3(d as f64 / secs));
        }
        self.cpu_us_per_delivery = ratio(self.server_cpu_us, self.deliveries);
        if let Some(r) = self.registrations.filter(|_| secs > 0.0) {
            self.registrations_per_sec = Some(round3(r as f64 / secs));
            self.cpu_us_per_registration = ratio(self.server_cpu_us, Some(r));
        }
    }

    /// The human summary, several lines.
    pub fn summary(&self) -> String {
        fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
            v.map_or_else(|| "-".to_owned(), |v| v.to_string())
        }
        let mut s = format!(
            "{} ({}) {}\n  clients {}",
            self.scenario,
            self.label.as_deref().unwrap_or("unlabelled"),
            self.params,
            self.clients
        );
        if let Some(d) = self.deliveries {
            s += &format!(
                ", deliveries {d} of {} expected (lost {}, duplicated {}, reordered {})",
                opt(self.expected_deliveries),
                opt(self.losses),
                opt(self.duplicates),
                opt(self.reordered),
            );
        }
        if let Some(r) = self.registrations {
            s += &format!(", registrations {r}");
        }
        s += &format!("\n  measured phase {} s", opt(self.wall_secs));
        if let Some(r) = self.deliveries_per_sec {
            s += &format!(", {r:.0} deliveries/s");
        }
        if let Some(r) = self.registrations_per_sec {
            s += &format!(", {r:.0} registrations/s");
        }
        let l = &self.latency_us;
        s += &format!(
            "\n  latency µs ({}): p50 {} p90 {} p99 {} max {}",
            self.latency_of.as_deref().unwrap_or("-"),
            opt(l.p50),
            opt(l.p90),
            opt(l.p99),
            opt(l.max)
        );
        s += &format!(
            "\n  server CPU {} µs ({} µs/delivery, {} µs/registration), RSS {} -> {} KiB",
            opt(self.server_cpu_us),
            opt(self.cpu_us_per_delivery),
            opt(self.cpu_us_per_registration),
            opt(self.rss_kib_before),
            opt(self.rss_kib_after),
        );
        if let Some(per) = self.rss_kib_per_client {
            s += &format!(" ({per} KiB/client)");
        }
        s += &format!("\n  bench CPU {} µs", opt(self.bench_cpu_us));
        if let (Some(b), Some(w)) = (self.bench_cpu_us, self.wall_secs) {
            if w > 0.0 {
                s += &format!(" ({:.0}% of one core)", b as f64 / (w * 1e4));
            }
        }
        for e in &self.errors {
            s += &format!("\n  error: {e}");
        }
        s
    }
}

/// Errors that repeat (one per client) are shown once with a count, in the
/// order first seen; at most `MAX_ERRORS` distinct ones are kept.
pub fn summarize_errors(errors: Vec<String>) -> Vec<String> {
    const MAX_ERRORS: usize = 40;
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut order = Vec::new();
    for e in errors {
        let n = counts.entry(e.clone()).or_insert(0);
        if *n == 0 {
            order.push(e);
        }
        *n += 1;
    }
    let distinct = order.len();
    let mut out: Vec<String> = order
        .into_iter()
        .take(MAX_ERRORS)
        .map(|e| match counts[&e] {
            1 => e,
            n => format!("{e} (×{n})"),
        })
        .collect();
    if distinct > MAX_ERRORS {
        out.push(format!(
            "… and {} more distinct errors",
            distinct - MAX_ERRORS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let probe = Probe::new(Some(std::process::id()));
        let r = probe.read();
        assert!(r.server_cpu_us.is_some());
        assert!(r.server_rss_kib.unwrap() > 0);
        assert!(r.bench_cpu_us.is_some());
    }

    #[test]
    fn histograms_grow_for_large_values() {
        let mut h = histogram();
        h.record(1).unwrap();
        h.record(5_000_000).unwrap();
        let mut total = histogram();
        total.add(&h).unwrap();
        let l = Latency::from_histogram(&total);
        assert!(l.max.unwrap() >= 4_990_000, "{l:?}");
    }

    #[test]
    fn repeated_errors_are_counted() {
        let e = summarize_errors(vec!["a".into(), "b".into(), "a".into()]);
        assert_eq!(e, ["a (×2)", "b"]);
    }
}
