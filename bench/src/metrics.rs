//! Measurements: CPU and RSS from /proc, latency histograms, and the report
//! printed at the end (a human summary, then one JSON line).
//!
//! CPU time is read in nanoseconds per thread from
//! `/proc/PID/task/*/schedstat`, with `/proc/PID/stat`'s clock ticks
//! (10 ms) as the fallback: see [`CpuTime::since`].

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

/// Clock ticks per second for /proc CPU times, from `getconf CLK_TCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// User plus system time from the text of `/proc/PID/stat`, in clock ticks.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces, so
    // fields are counted from the last ')'; field 3 is the first after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// User plus system time of a process from `/proc/PID/stat`, in clock ticks.
/// It covers every thread the process has had, exited ones included.
fn stat_ticks(pid: &str) -> Option<u64> {
    parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User plus system CPU time of a process from `/proc/PID/stat`, in
/// microseconds but with the resolution of a clock tick (10 ms).
pub fn cpu_us(pid: &str, ticks: Ticks) -> Option<u64> {
    stat_ticks(pid).map(|t| ticks.to_us(t))
}

/// The time a thread has spent on a CPU, in nanoseconds: the first field of
/// `/proc/PID/task/TID/schedstat` (the other two are the time spent waiting
/// for a CPU and the number of times it was scheduled).
pub fn parse_schedstat(line: &str) -> Option<u64> {
    line.split_ascii_whitespace().next()?.parse().ok()
}

/// On-CPU nanoseconds summed over a process's threads, as of one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedSum {
    pub ns: u64,
    /// How many threads were summed.
    pub threads: u64,
}

/// Sums [`parse_schedstat`] over the threads in `/proc/PID/task`. Threads
/// that exit while they are listed are skipped. `None` when the directory
/// or a thread's schedstat cannot be read or parsed.
pub fn sched_sum(pid: &str) -> Option<SchedSum> {
    // ESRCH: the thread died between opening its schedstat and reading it.
    const ESRCH: i32 = 3;
    let mut sum = SchedSum { ns: 0, threads: 0 };
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        match std::fs::read_to_string(&path) {
            Ok(line) => {
                sum.ns += parse_schedstat(&line)?;
                sum.threads += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(ESRCH) => {}
            Err(_) => return None,
        }
    }
    (sum.threads > 0).then_some(sum)
}

/// A process's CPU time at one instant, read two ways: exactly, but only for
/// the threads alive now (schedstat), and coarsely, but for every thread it
/// ever had (stat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTime {
    pub ticks: Ticks,
    /// User plus system time from `/proc/PID/stat`, in clock ticks.
    pub stat_ticks: u64,
    /// `None` when `/proc/PID/task/*/schedstat` could not be read.
    pub sched: Option<SchedSum>,
}

/// Where a CPU figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuSource {
    /// Nanoseconds summed over the threads' schedstat.
    Schedstat,
    /// Clock ticks from `/proc/PID/stat`: schedstat could not be read.
    TicksNoSchedstat,
    /// Clock ticks from `/proc/PID/stat`: threads that took part exited
    /// between the readings, so the schedstat sum lost their time.
    TicksThreadsExited,
}

impl std::fmt::Display for CpuSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CpuSource::Schedstat => "schedstat",
            CpuSource::TicksNoSchedstat => "/proc/PID/stat clock ticks (no schedstat)",
            CpuSource::TicksThreadsExited => {
                "/proc/PID/stat clock ticks (threads exited during the phase)"
            }
        })
    }
}

/// Reads both CPU figures of a process; `None` when `/proc/PID/stat` is
/// unreadable.
pub fn cpu_time(pid: &str, ticks: Ticks) -> Option<CpuTime> {
    let sched = sched_sum(pid);
    let stat_ticks = stat_ticks(pid)?;
    // A kernel that keeps no scheduler info shows "0 0 0" for every thread;
    // a process that has used ticks has used nanoseconds.
    let sched = sched.filter(|s| s.ns > 0 || stat_ticks == 0);
    Some(CpuTime {
        ticks,
        stat_ticks,
        sched,
    })
}

impl CpuTime {
    /// CPU used from `before` to `self`, in microseconds, and its source.
    pub fn since(&self, before: &CpuTime) -> (u64, CpuSource) {
        let ticks_us = self
            .ticks
            .to_us(self.stat_ticks.saturating_sub(before.stat_ticks));
        let (Some(a), Some(b)) = (self.sched, before.sched) else {
            return (ticks_us, CpuSource::TicksNoSchedstat);
        };
        let sched_us = (a.ns.saturating_sub(b.ns) + 500) / 1000;
        // The schedstat sum only covers the threads alive at each reading:
        // a thread that exits in between takes all its time out of the sum,
        // so the difference comes out short. The ticks count exited threads
        // too, so they are the check. They differ for honest reasons as
        // well: utime and stime are each truncated to a tick (2 ticks), and
        // a thread that is on a CPU at a reading has its schedstat lag by up
        // to one scheduler tick (at most 10 ms = 1 clock tick per thread).
        // Falling short by more than that means threads went away: take the
        // ticks, coarse but complete, over a precise figure that is missing
        // time.
        let tolerance = self.ticks.to_us(2 + a.threads.max(b.threads));
        if sched_us + tolerance < ticks_us {
            (ticks_us, CpuSource::TicksThreadsExited)
        } else {
            (sched_us, CpuSource::Schedstat)
        }
    }
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
    pub server_cpu: Option<CpuTime>,
    pub server_rss_kib: Option<u64>,
    pub bench_cpu: Option<CpuTime>,
}

/// CPU used between two readings, in microseconds, and its source.
fn cpu_between(before: Option<CpuTime>, after: Option<CpuTime>) -> Option<(u64, CpuSource)> {
    Some(after?.since(&before?))
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
            server_cpu: server.as_deref().and_then(|p| cpu_time(p, self.ticks)),
            server_rss_kib: server.as_deref().and_then(rss_kib),
            bench_cpu: cpu_time("self", self.ticks),
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

/// Round trips of a probe client's PINGs, in milliseconds (`login`).
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct RttMs {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl RttMs {
    /// From a histogram in microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> RttMs {
        if h.is_empty() {
            return RttMs::default();
        }
        let ms = |us: u64| Some(round3(us as f64 / 1000.0));
        RttMs {
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
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
    /// Extra (fanout, dm): CPU per delivery with the closing PING round
    /// included, as the tables up to commit cb4a021's measured it.
    pub cpu_us_per_delivery_with_settle: Option<f64>,
    /// Extra: the bench's own CPU over the measured phase.
    pub bench_cpu_us: Option<u64>,
    /// Extra: what the latency histogram measures in this scenario.
    pub latency_of: Option<String>,
    /// Extra: a probe client's PING round trips during the measured phase.
    pub probe_rtt_ms: Option<RttMs>,
    /// What a delivery is in the summary, singular and plural (for the
    /// summary, not the JSON; deliveries when `None`).
    #[serde(skip)]
    pub units: Option<(&'static str, &'static str)>,
    /// Where `server_cpu_us` came from (for the summary, not the JSON).
    #[serde(skip)]
    pub server_cpu_source: Option<CpuSource>,
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
        let server = cpu_between(before.server_cpu, after.server_cpu);
        self.server_cpu_us = server.map(|(us, _)| us);
        self.server_cpu_source = server.map(|(_, source)| source);
        self.bench_cpu_us = cpu_between(before.bench_cpu, after.bench_cpu).map(|(us, _)| us);
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

    /// Like [`Report::measured`] for a phase measured in spans, with
    /// unmeasured work in between: CPU is summed over the spans, RSS read
    /// before the first and after the last, and `wall` is the spans' total.
    pub fn measured_spans(&mut self, spans: &[(Reading, Reading)], wall: Duration) {
        let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
            return;
        };
        self.measured(first.0, last.1, wall);
        let sum = |cpu: fn(&Reading) -> Option<CpuTime>| {
            spans
                .iter()
                .try_fold((0, CpuSource::Schedstat), |(us, source), (b, a)| {
                    let (more, s) = cpu_between(cpu(b), cpu(a))?;
                    Some((
                        us + more,
                        if s == CpuSource::Schedstat { source } else { s },
                    ))
                })
        };
        let server = sum(|r| r.server_cpu);
        self.server_cpu_us = server.map(|(us, _)| us);
        self.server_cpu_source = server.map(|(_, source)| source);
        self.bench_cpu_us = sum(|r| r.bench_cpu).map(|(us, _)| us);
        self.cpu_us_per_delivery = ratio(self.server_cpu_us, self.deliveries);
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
        let (one, many) = self.units.unwrap_or(("delivery", "deliveries"));
        if let Some(d) = self.deliveries {
            s += &format!(
                ", {many} {d} of {} expected (lost {}, duplicated {}, reordered {})",
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
            s += &format!(", {r:.0} {many}/s");
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
        if let Some(p) = self.probe_rtt_ms {
            s += &format!(
                "\n  probe RTT ms: p50 {} p99 {} max {}",
                opt(p.p50),
                opt(p.p99),
                opt(p.max)
            );
        }
        s += &format!(
            "\n  server CPU {} µs ({} µs/{one}, {} µs/registration), RSS {} -> {} KiB",
            opt(self.server_cpu_us),
            opt(self.cpu_us_per_delivery),
            opt(self.cpu_us_per_registration),
            opt(self.rss_kib_before),
            opt(self.rss_kib_after),
        );
        if let Some(per) = self.rss_kib_per_client {
            s += &format!(" ({per} KiB/client)");
        }
        if let Some(source) = self
            .server_cpu_source
            .filter(|&s| s != CpuSource::Schedstat)
        {
            s += &format!("\n  server CPU from {source}: ±2 clock ticks");
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

    /// Whether this kernel has per-thread schedstat files.
    fn has_schedstat() -> bool {
        std::path::Path::new("/proc/thread-self/schedstat").exists()
    }

    fn this_thread_ns() -> u64 {
        let line = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        parse_schedstat(&line).unwrap()
    }

    #[test]
    fn reads_own_process() {
        let probe = Probe::new(Some(std::process::id()));
        let r = probe.read();
        let cpu = r.server_cpu.unwrap();
        assert!(r.server_rss_kib.unwrap() > 0);
        assert!(r.bench_cpu.is_some());
        if has_schedstat() {
            // The test harness runs this on a thread of its own, so there
            // are at least two.
            let sched = cpu.sched.unwrap();
            assert!(sched.threads >= 2, "{sched:?}");
            assert!(sched.ns > 0, "{sched:?}");
        }
    }

    #[test]
    fn nanoseconds_grow_with_cpu_burnt() {
        if !has_schedstat() {
            eprintln!("no /proc/thread-self/schedstat: skipped");
            return;
        }
        let ticks = Ticks::detect();
        let before = cpu_time("self", ticks).unwrap();
        // Burn about 50 ms of this thread's CPU, for at most 5 s of wall time.
        let start_ns = this_thread_ns();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut x = 1u64;
        while this_thread_ns() - start_ns < 50_000_000 && std::time::Instant::now() < deadline {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        let after = cpu_time("self", ticks).unwrap();
        let (b, a) = (before.sched.unwrap(), after.sched.unwrap());
        assert!(a.ns >= b.ns, "{b:?} -> {a:?}");
        // A running thread's schedstat can lag by a scheduler tick, and the
        // other tests' threads may come and go: allow for both.
        let (us, _) = after.since(&before);
        assert!(us >= 20_000, "{us} µs from {before:?} to {after:?}");
    }

    #[test]
    fn parses_schedstat_and_stat() {
        assert_eq!(parse_schedstat("123456789 2345 67\n"), Some(123_456_789));
        assert_eq!(parse_schedstat("0 0 0\n"), Some(0));
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
        // utime 7 and stime 5 are fields 14 and 15; the name holds ") ".
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(12));
        assert_eq!(parse_stat_ticks("42 (a) S 1"), None);
    }

    fn at(stat_ticks: u64, sched: Option<(u64, u64)>) -> CpuTime {
        CpuTime {
            ticks: Ticks {
                per_sec: 100,
                known: true,
            },
            stat_ticks,
            sched: sched.map(|(ns, threads)| SchedSum { ns, threads }),
        }
    }

    #[test]
    fn schedstat_first_ticks_when_threads_exit_or_it_is_missing() {
        const MS: u64 = 1_000_000;
        // 12.3456 ms on CPU: 1 tick by stat, exact by schedstat.
        let (b, a) = (
            at(100, Some((500 * MS, 4))),
            at(101, Some((512_345_600, 4))),
        );
        assert_eq!(a.since(&b), (12_346, CpuSource::Schedstat));
        // Short of the ticks by less than 2 + 4 ticks: still schedstat.
        let a = at(107, Some((510 * MS, 4)));
        assert_eq!(a.since(&b), (10_000, CpuSource::Schedstat));
        // Short by more: a thread with its time went away.
        let a = at(120, Some((510 * MS, 3)));
        assert_eq!(a.since(&b), (200_000, CpuSource::TicksThreadsExited));
        // The sum may even go down.
        let a = at(120, Some((100 * MS, 1)));
        assert_eq!(a.since(&b), (200_000, CpuSource::TicksThreadsExited));
        // No schedstat on either side: ticks.
        let a = at(120, None);
        assert_eq!(a.since(&b), (200_000, CpuSource::TicksNoSchedstat));
        assert_eq!(
            b.since(&at(90, None)),
            (100_000, CpuSource::TicksNoSchedstat)
        );
    }

    #[test]
    fn report_takes_the_server_cpu_from_the_readings() {
        let reading = |cpu| Reading {
            server_cpu: Some(cpu),
            server_rss_kib: Some(1000),
            bench_cpu: None,
        };
        let mut r = Report {
            deliveries: Some(1000),
            ..Report::default()
        };
        let (b, a) = (at(100, Some((0, 2))), at(100, Some((2_000_000, 2))));
        r.measured(reading(b), reading(a), Duration::from_millis(10));
        assert_eq!(r.server_cpu_us, Some(2000));
        assert_eq!(r.cpu_us_per_delivery, Some(2.0));
        assert_eq!(r.server_cpu_source, Some(CpuSource::Schedstat));
        assert_eq!(r.bench_cpu_us, None);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("server_cpu_source").is_none(), "{json}");
        assert!(!r.summary().contains("clock ticks"), "{}", r.summary());
        r.measured(
            reading(b),
            reading(at(150, None)),
            Duration::from_millis(10),
        );
        assert_eq!(r.server_cpu_us, Some(500_000));
        assert!(
            r.summary().contains("clock ticks (no schedstat)"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn spans_add_up_their_cpu_only() {
        let reading = |cpu| Reading {
            server_cpu: Some(cpu),
            server_rss_kib: Some(1000),
            bench_cpu: None,
        };
        let mut r = Report {
            deliveries: Some(10),
            ..Report::default()
        };
        // 1 ms, then 5 s between the spans (not counted), then 3 ms.
        let spans = [
            (
                reading(at(100, Some((0, 2)))),
                reading(at(100, Some((1_000_000, 2)))),
            ),
            (
                reading(at(600, Some((5_001_000_000, 2)))),
                reading(at(600, Some((5_004_000_000, 2)))),
            ),
        ];
        r.measured_spans(&spans, Duration::from_millis(4));
        assert_eq!(r.server_cpu_us, Some(4000));
        assert_eq!(r.cpu_us_per_delivery, Some(400.0));
        assert_eq!(r.deliveries_per_sec, Some(2500.0));
        assert_eq!(r.server_cpu_source, Some(CpuSource::Schedstat));
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
