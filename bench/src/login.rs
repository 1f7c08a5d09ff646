//! `login`: N clients with accounts log in at once with SASL PLAIN, in R
//! rounds (a burst each), while a probe client that is not logging in sends
//! a PING every 10 ms. Login latency runs from sending the credentials to
//! 903; the probe's round trips show how the server answers everyone else
//! while its Argon2 checks are busy. Creating the accounts, and logging out
//! after each round, are not measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at, Instant};

use crate::client::{last_param, Conn, ConnectOpts, Msg, ReadError};
use crate::metrics::{self, Latency, Reading, Report, RttMs};
use crate::rtt_probe::{probe, PROBE_EVERY};
use crate::setup::{self, Common};

/// Base64 characters in one `AUTHENTICATE` line.
const CHUNK: usize = 400;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Accounts, each logged in to by a client of its own.
    #[arg(long, default_value_t = 100)]
    pub accounts: usize,
    /// Bursts: every client logs in (measured), then out (not measured).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Characters in each account's password.
    #[arg(long, default_value_t = 16)]
    pub password_len: usize,
    /// Accounts (and their clients' nicks) are this prefix and a number.
    #[arg(long, default_value = "lg")]
    pub account_prefix: String,
}

/// The password of account `name`: the same in every run, so a run against
/// a server that kept an earlier run's accounts can log in to them.
fn password(name: &str, len: usize) -> String {
    format!("{name}.parlor-bench.")
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// The `AUTHENTICATE` lines that carry PLAIN credentials.
fn credentials(name: &str, password: &str) -> Vec<u8> {
    let encoded = BASE64.encode(format!("\0{name}\0{password}"));
    let mut out = Vec::new();
    for chunk in encoded.as_bytes().chunks(CHUNK) {
        out.extend_from_slice(b"AUTHENTICATE ");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    if encoded.len() % CHUNK == 0 {
        out.extend_from_slice(b"AUTHENTICATE +\r\n");
    }
    out
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A numeric or FAIL line that ends an exchange unsuccessfully.
fn refusal(msg: &Msg<'_>) -> Option<String> {
    match msg {
        Msg::Numeric(code @ (902 | 904..=907), p) => {
            Some(format!("{code} {}", show(last_param(p))))
        }
        Msg::Other {
            command, params, ..
        } if *command == b"FAIL" => Some(format!("FAIL {}", show(params))),
        _ => None,
    }
}

/// Creates the client's account (its nick) and logs out of it; an account
/// left by an earlier run is kept and counted in `reused`.
async fn create(
    mut conn: Conn,
    len: usize,
    reused: Arc<AtomicU64>,
    deadline: Instant,
) -> Result<Conn, String> {
    let line = format!("REGISTER * * :{}\r\n", password(&conn.nick, len));
    conn.send(line.as_bytes(), deadline).await?;
    let created = conn
        .read_until(deadline, |msg| match msg {
            Msg::Numeric(900, _) => Some(Ok(true)),
            Msg::Other {
                command, params, ..
            } if command == b"FAIL" => {
                let code = params.split(|&b| b == b' ').nth(1).unwrap_or_default();
                Some(match code {
                    b"ACCOUNT_EXISTS" => Ok(false),
                    _ => Err(format!("REGISTER refused: FAIL {}", show(params))),
                })
            }
            _ => None,
        })
        .await
        .map_err(|e| format!("waiting for REGISTER's 900: {e}"))??;
    if !created {
        reused.fetch_add(1, Ordering::Relaxed);
        return Ok(conn);
    }
    log_out(conn, deadline).await
}

async fn log_out(mut conn: Conn, deadline: Instant) -> Result<Conn, String> {
    conn.send(b"NICKSERV LOGOUT\r\n", deadline).await?;
    conn.read_until(deadline, |msg| {
        matches!(msg, Msg::Numeric(901, _)).then_some(())
    })
    .await
    .map_err(|e| format!("waiting for NICKSERV LOGOUT's 901: {e}"))?;
    Ok(conn)
}

/// How one client's login in a round ended.
enum Outcome {
    /// 903: the latency from the credentials, and when it came.
    In(Duration, Instant),
    /// 904 or another refusal (a failure; the connection is fine).
    Refused(String, Instant),
    /// The connection failed or the deadline passed.
    Lost(ReadError),
}

/// One client's login: waits for the burst to start, then sends
/// `AUTHENTICATE PLAIN` and its credentials.
async fn log_in(
    mut conn: Conn,
    creds: Arc<[u8]>,
    mut go: watch::Receiver<bool>,
    deadline: Instant,
) -> (Conn, Outcome) {
    let _ = go.wait_for(|&go| go).await;
    let outcome = async {
        let lost = |e: String| ReadError::Closed(e);
        conn.send(b"AUTHENTICATE PLAIN\r\n", deadline)
            .await
            .map_err(lost)?;
        let step = conn
            .read_until(deadline, |msg| match msg {
                Msg::Other {
                    command, params, ..
                } if command == b"AUTHENTICATE" && last_param(params) == b"+" => Some(None),
                msg => refusal(&msg).map(Some),
            })
            .await?;
        if let Some(why) = step {
            return Ok(Outcome::Refused(why, Instant::now()));
        }
        let sent = Instant::now();
        conn.send(&creds, deadline).await.map_err(lost)?;
        conn.read_until(deadline, |msg| match msg {
            Msg::Numeric(903, _) => {
                let now = Instant::now();
                Some(Outcome::In(now - sent, now))
            }
            msg => refusal(&msg).map(|why| Outcome::Refused(why, Instant::now())),
        })
        .await
    }
    .await;
    (conn, outcome.unwrap_or_else(Outcome::Lost))
}

/// What the rounds add up to.
struct Totals {
    latency: Histogram<u64>,
    rtt: Histogram<u64>,
    logins: u64,
    /// PINGs the probe sent (the next one's number).
    pings: u64,
    /// CPU and RSS readings before and after each burst.
    spans: Vec<(Reading, Reading)>,
    wall: Duration,
    errors: Vec<String>,
}

/// One round: every client logs in at once while the probe PINGs. Gives
/// back the clients (in order), which of them logged in, and whether some
/// were lost.
async fn burst(
    common: &Arc<Common>,
    conns: Vec<Conn>,
    creds: &[Arc<[u8]>],
    prober: &mut Option<Conn>,
    t: &mut Totals,
) -> anyhow::Result<(Vec<Conn>, Vec<bool>, bool)> {
    let (n, deadline) = (conns.len(), common.deadline);
    let (go_tx, go) = watch::channel(false);
    let (stop_tx, stop) = oneshot::channel();
    let probing = prober
        .take()
        .map(|c| tokio::spawn(probe(c, go.clone(), stop, common.clone(), t.pings)));
    let mut tasks = JoinSet::new();
    for conn in conns {
        let creds = creds[conn.idx].clone();
        tasks.spawn(log_in(conn, creds, go.clone(), deadline));
    }
    let before = common.probe.read();
    let started = Instant::now();
    go_tx.send_replace(true);
    let mut last = started;
    let mut logged_in = vec![false; n];
    let mut back = Vec::with_capacity(n);
    let mut lost = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let joined = match timeout(common.stall.min(left), tasks.join_next()).await {
            Ok(Some(joined)) => joined,
            Ok(None) => break,
            Err(_) if Instant::now() >= deadline => return Err(common.timed_out("logging in")),
            Err(_) => {
                t.errors.push(format!(
                    "login burst stalled after {} of {n} clients ({}s without progress)",
                    back.len(),
                    common.stall.as_secs()
                ));
                lost = true;
                break;
            }
        };
        match joined {
            Ok((conn, Outcome::In(took, at))) => {
                t.latency.record(took.as_micros() as u64).ok();
                t.logins += 1;
                last = last.max(at);
                logged_in[conn.idx] = true;
                back.push(conn);
            }
            Ok((conn, Outcome::Refused(why, at))) => {
                t.errors.push(format!("login refused: {why}"));
                last = last.max(at);
                back.push(conn);
            }
            Ok((_, Outcome::Lost(ReadError::Timeout))) => {
                return Err(common.timed_out("logging in"));
            }
            Ok((_, Outcome::Lost(e))) => {
                t.errors.push(format!(
                    "a client lost its connection while logging in: {e}"
                ));
                lost = true;
            }
            Err(e) => {
                t.errors.push(format!("login task failed: {e}"));
                lost = true;
            }
        }
    }
    let after = common.probe.read();
    t.spans.push((before, after));
    t.wall += last - started;
    drop(tasks);
    let _ = stop_tx.send(());
    if let Some(probing) = probing {
        match timeout_at(deadline + Duration::from_secs(1), probing).await {
            Ok(Ok((conn, h, next, result))) => {
                let _ = t.rtt.add(&h);
                t.pings = next;
                match result {
                    Ok(()) => *prober = Some(conn),
                    Err(e) => t.errors.push(e),
                }
            }
            Ok(Err(e)) => t.errors.push(format!("probe task failed: {e}")),
            Err(_) => return Err(common.timed_out("waiting for the probe")),
        }
    }
    back.sort_by_key(|c| c.idx);
    Ok((back, logged_in, lost))
}

pub async fn run(common: Arc<Common>, a: Args) -> anyhow::Result<Report> {
    let (n, rounds) = (a.accounts, a.rounds);
    ensure!(n >= 1, "--accounts must be at least 1");
    ensure!(rounds >= 1, "--rounds must be at least 1");
    ensure!(
        (1..=256).contains(&a.password_len),
        "--password-len must be from 1 to 256"
    );
    let deadline = common.deadline;
    let mut accounts_common = (*common).clone();
    accounts_common.connect.nick_prefix = a.account_prefix.clone();
    let conns = setup::register_all(&accounts_common, n, 4096).await.all()?;
    let reused = Arc::new(AtomicU64::new(0));
    let (len, counter) = (a.password_len, reused.clone());
    let conns = setup::for_each(&common, conns, "creating the accounts", move |conn| {
        create(conn, len, counter.clone(), deadline)
    })
    .await?;
    let mut conns = setup::sync_all(&common, conns, "syncing after the accounts").await?;
    let creds: Vec<Arc<[u8]>> = conns
        .iter()
        .map(|c| credentials(&c.nick, &password(&c.nick, len)).into())
        .collect();
    let probe_opts = ConnectOpts {
        nick_prefix: format!("{}probe", common.connect.nick_prefix),
        ..common.connect.clone()
    };
    let mut prober = Some(
        Conn::register(0, &probe_opts, 4096, deadline)
            .await
            .map_err(|e| anyhow::anyhow!("the probe client could not register: {e}"))?,
    );

    let mut errors = Vec::new();
    let reused = reused.load(Ordering::Relaxed);
    if reused > 0 {
        errors.push(format!(
            "{reused} of the accounts existed already (an earlier run's) and were reused"
        ));
    }
    let mut t = Totals {
        latency: metrics::histogram(),
        rtt: metrics::histogram(),
        logins: 0,
        pings: 0,
        spans: Vec::new(),
        wall: Duration::ZERO,
        errors,
    };
    let mut rounds_run = 0;
    while rounds_run < rounds {
        let (back, logged_in, lost) = burst(&common, conns, &creds, &mut prober, &mut t).await?;
        rounds_run += 1;
        conns = back;
        if lost {
            // Clients are missing: the remaining rounds cannot be run.
            break;
        }
        let logged_in = Arc::new(logged_in);
        conns = setup::for_each(&common, conns, "logging out", move |conn| {
            let logged_in = logged_in[conn.idx];
            async move {
                match logged_in {
                    true => log_out(conn, deadline).await,
                    false => Ok(conn),
                }
            }
        })
        .await?;
    }
    conns.extend(prober);
    setup::quit_all(conns).await;

    let expected = (n * rounds) as u64;
    let mut report = Report {
        scenario: "login".into(),
        label: common.label.clone(),
        params: json!({ "accounts": n, "rounds": rounds, "rounds_run": rounds_run,
                        "password_len": a.password_len,
                        "probe_every_ms": PROBE_EVERY.as_millis() as u64 }),
        clients: n as u64,
        deliveries: Some(t.logins),
        expected_deliveries: Some(expected),
        losses: Some(expected - t.logins),
        latency_us: Latency::from_histogram(&t.latency),
        latency_of: Some("credentials sent to 903, per login".into()),
        probe_rtt_ms: Some(RttMs::from_histogram(&t.rtt)),
        units: Some(("login", "logins")),
        errors: t.errors,
        ..Report::default()
    };
    report.measured_spans(&t.spans, t.wall);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_plain_in_base64() {
        let lines = credentials("lg0", "secret");
        assert_eq!(lines, b"AUTHENTICATE AGxnMABzZWNyZXQ=\r\n");
        assert_eq!(password("lg1", 8), "lg1.parl");
        assert_eq!(password("lg1", 20).len(), 20);
        // 300 bytes make exactly 400 base64 characters: a `+` follows.
        let long = credentials("a", &"x".repeat(297));
        assert!(long.ends_with(b"\r\nAUTHENTICATE +\r\n"), "{}", show(&long));
    }
}
