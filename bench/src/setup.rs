//! What every scenario shares: its settings, registering many clients with
//! bounded concurrency, running a step on every client, and quitting.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use crate::client::{Conn, ConnectOpts};
use crate::metrics::Probe;

/// How long the final QUIT waits for the server to close a connection.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Settings every scenario takes.
#[derive(Debug, Clone)]
pub struct Common {
    pub connect: ConnectOpts,
    pub concurrency: usize,
    /// Nothing waits past this (--timeout-secs from the start).
    pub deadline: Instant,
    pub timeout_secs: u64,
    /// A flow-controlled sender or a join chain that makes no progress
    /// for this long gives up (reported).
    pub stall: Duration,
    pub label: Option<String>,
    pub probe: Probe,
    /// Shared clock for send timestamps (nanoseconds since it).
    pub epoch: Instant,
}

impl Common {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// A message for a timeout in `what`.
    pub fn timed_out(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "timed out (--timeout-secs {}) while {what}",
            self.timeout_secs
        )
    }
}

/// The outcome of registering many clients.
pub struct Registered {
    /// By client index; `Err` for the clients that failed.
    pub conns: Vec<Result<Conn, String>>,
    /// From the first connect to the last 001.
    pub wall: Duration,
}

impl Registered {
    /// Every client, or the first error when any failed.
    pub fn all(self) -> anyhow::Result<Vec<Conn>> {
        let failed = self.conns.iter().filter(|c| c.is_err()).count();
        let mut conns = Vec::with_capacity(self.conns.len());
        for c in self.conns {
            match c {
                Ok(c) => conns.push(c),
                Err(e) => bail!("{failed} of the clients could not register; first: {e}"),
            }
        }
        Ok(conns)
    }
}

/// Registers `n` clients, at most `concurrency` in progress at once.
pub async fn register_all(common: &Common, n: usize, buffer: usize) -> Registered {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(common.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for idx in 0..n {
        let permits = permits.clone();
        let opts = common.connect.clone();
        let deadline = common.deadline;
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = Conn::register(idx, &opts, buffer, deadline).await;
            (idx, result, Instant::now())
        });
    }
    let mut conns: Vec<Result<Conn, String>> = (0..n)
        .map(|_| Err("registration did not finish in time".into()))
        .collect();
    let mut last = started;
    loop {
        let joined =
            match timeout_at(common.deadline + Duration::from_secs(1), tasks.join_next()).await {
                Ok(Some(joined)) => joined,
                Ok(None) => break,
                // The rest are dropped (aborted); they stay "not run".
                Err(_) => break,
            };
        match joined {
            Ok((idx, result, at)) => {
                if result.is_ok() {
                    last = last.max(at);
                }
                conns[idx] = result;
            }
            Err(e) => eprintln!("registration task failed: {e}"),
        }
    }
    Registered {
        conns,
        wall: last - started,
    }
}

/// Runs `step` on every client, at most `concurrency` at once, and gives
/// the clients back in the order they came; fails if any step failed.
pub async fn for_each<F, Fut>(
    common: &Common,
    conns: Vec<Conn>,
    what: &str,
    step: F,
) -> anyhow::Result<Vec<Conn>>
where
    F: Fn(Conn) -> Fut,
    Fut: Future<Output = Result<Conn, String>> + Send + 'static,
{
    let n = conns.len();
    let permits = Arc::new(Semaphore::new(common.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (position, conn) in conns.into_iter().enumerate() {
        let permits = permits.clone();
        let fut = step(conn);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (position, fut.await)
        });
    }
    let mut out: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    let mut errors = Vec::new();
    loop {
        match timeout_at(common.deadline + Duration::from_secs(1), tasks.join_next()).await {
            Err(_) => return Err(common.timed_out(what)),
            Ok(None) => break,
            Ok(Some(Ok((position, Ok(conn))))) => out[position] = Some(conn),
            Ok(Some(Ok((_, Err(e))))) => errors.push(e),
            Ok(Some(Err(e))) => errors.push(format!("task failed: {e}")),
        }
    }
    if let Some(first) = errors.first() {
        bail!(
            "{} of {n} clients failed {what}; first: {first}",
            errors.len()
        );
    }
    Ok(out
        .into_iter()
        .map(|c| c.expect("every step returned"))
        .collect())
}

/// Every client sends a PING and reads until its PONG, so whatever the
/// server had queued for it (welcome burst, JOINs, NAMES) is drained.
pub async fn sync_all(common: &Common, conns: Vec<Conn>, what: &str) -> anyhow::Result<Vec<Conn>> {
    let deadline = common.deadline;
    for_each(common, conns, what, move |mut conn| async move {
        conn.sync("pb-sync", deadline)
            .await
            .map_err(|e| format!("PING/PONG sync: {e}"))?;
        Ok(conn)
    })
    .await
}

/// Every client joins `channel` and waits for its own JOIN echo.
pub async fn join_all(
    common: &Common,
    conns: Vec<Conn>,
    channel: &str,
) -> anyhow::Result<Vec<Conn>> {
    let deadline = common.deadline;
    let channel: Arc<str> = channel.into();
    for_each(common, conns, "joining", move |mut conn| {
        let channel = channel.clone();
        async move {
            conn.join(&channel, deadline).await?;
            Ok(conn)
        }
    })
    .await
}

/// Every client quits and waits (briefly) for the server to close.
pub async fn quit_all(conns: Vec<Conn>) {
    let mut tasks = JoinSet::new();
    for conn in conns {
        tasks.spawn(conn.quit(QUIT_WAIT));
    }
    while tasks.join_next().await.is_some() {}
}
