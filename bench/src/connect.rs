//! `connect`: K clients register (at most --connect-concurrency at once);
//! measured from the first connect to the last 001. Then they stay
//! connected, idle, for H seconds and the server's RSS is read.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use crate::metrics::{self, Latency, Report};
use crate::setup::{self, Common};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Clients to register.
    #[arg(long, default_value_t = 10000)]
    pub clients: usize,
    /// Seconds all clients stay connected, idle, before RSS is read.
    #[arg(long, default_value_t = 2.0)]
    pub hold_secs: f64,
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<Report> {
    ensure!(a.clients >= 1, "--clients must be at least 1");
    ensure!(
        a.hold_secs >= 0.0 && a.hold_secs.is_finite(),
        "--hold-secs must be zero or more"
    );
    let before = common.probe.read();
    let registered = setup::register_all(&common, a.clients, 2048).await;
    let after = common.probe.read();
    if Instant::now() >= common.deadline {
        return Err(common.timed_out("registering"));
    }

    let wall = registered.wall;
    let mut latency = metrics::histogram();
    let mut errors = Vec::new();
    let mut conns = Vec::new();
    for result in registered.conns {
        match result {
            Ok(conn) => {
                latency.record(conn.registration.as_micros() as u64).ok();
                conns.push(conn);
            }
            Err(e) => errors.push(e),
        }
    }
    if conns.is_empty() {
        bail!("no client could register: {}", errors[0]);
    }
    let registrations = conns.len() as u64;

    // Hold: every client keeps reading (the welcome burst, PINGs).
    let hold_end = (Instant::now() + Duration::from_secs_f64(a.hold_secs)).min(common.deadline);
    let mut holding = JoinSet::new();
    for mut conn in conns {
        holding.spawn(async move {
            let result = conn.idle(hold_end).await;
            (conn, result)
        });
    }
    let mut conns = Vec::new();
    while let Ok(Some(joined)) =
        timeout_at(hold_end + Duration::from_secs(5), holding.join_next()).await
    {
        match joined {
            Ok((conn, Ok(()))) => conns.push(conn),
            Ok((_, Err(e))) => errors.push(format!("lost a connection while holding: {e}")),
            Err(e) => errors.push(format!("hold task failed: {e}")),
        }
    }
    let connected = common.probe.read();
    let still = conns.len() as u64;
    setup::quit_all(conns).await;

    let mut report = Report {
        scenario: "connect".into(),
        label: common.label.clone(),
        params: json!({ "clients": a.clients, "hold_secs": a.hold_secs,
                        "connect_concurrency": common.concurrency }),
        clients: a.clients as u64,
        registrations: Some(registrations),
        latency_us: Latency::from_histogram(&latency),
        latency_of: Some("connect to 001, per client".into()),
        errors,
        ..Report::default()
    };
    report.measured(before, after, wall);
    // RSS is the one reading taken with everyone connected after the hold.
    report.rss_kib_after = connected.server_rss_kib;
    if let (Some(b), Some(a)) = (before.server_rss_kib, connected.server_rss_kib) {
        if still > 0 {
            let per = (a as f64 - b as f64) / still as f64;
            report.rss_kib_per_client = Some((per * 1000.0).round() / 1000.0);
        }
    }
    Ok(report)
}
