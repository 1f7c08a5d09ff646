//! `/healthz`: 200 when the server accepts connections and its database
//! takes writes, 503 otherwise, with a line saying why.
//!
//! "Takes writes" is proven by writing: one row of `health_probe` is
//! updated and committed (`Store::probe_write`), which fails as the
//! server's own writes would (the file read-only, another process holding
//! the write lock past the busy timeout, SQLite finding the disk full).
//! A commit can still succeed on a full disk while SQLite reuses room in
//! its write-ahead log, so the free space of the data directory's file
//! system is read too. The answer is kept for a second: a scraper or a
//! load balancer asking often costs the database one small commit a
//! second at most.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::server::Server;

/// How long an answer is reused.
const KEEP_ANSWER: Duration = Duration::from_secs(1);

/// How long the write may take before the database counts as not
/// writable: less than SQLite's busy timeout (5 s), so a database another
/// process holds shows here rather than making the check hang.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Free space under which the data directory's disk counts as full.
const MIN_FREE_BYTES: u64 = 1 << 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let verdict = state.health.check(&state.server).await;
    let status = if verdict.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{}\n", verdict.reason),
    )
}

/// The last answer, shared by every request.
#[derive(Default)]
pub(super) struct Health {
    /// Held while a check runs: requests that come meanwhile wait for its
    /// answer instead of checking again.
    last: tokio::sync::Mutex<Option<(Instant, Verdict)>>,
}

#[derive(Debug, Clone)]
struct Verdict {
    healthy: bool,
    reason: Arc<str>,
}

impl Verdict {
    fn unhealthy(reason: String) -> Verdict {
        Verdict {
            healthy: false,
            reason: reason.into(),
        }
    }
}

impl Health {
    async fn check(&self, server: &Arc<Server>) -> Verdict {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = &*last {
            if at.elapsed() < KEEP_ANSWER {
                return verdict.clone();
            }
        }
        let verdict = check(server).await;
        if !verdict.healthy {
            tracing::warn!(reason = %verdict.reason, "health check failed");
        }
        *last = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

async fn check(server: &Arc<Server>) -> Verdict {
    {
        let world = server.world_shared();
        if world.shutting_down {
            return Verdict::unhealthy("shutting down".into());
        }
        let max = server.config().limits.max_clients;
        if world.clients.len() >= max {
            return Verdict::unhealthy(format!(
                "full: {} connections, limits.max_clients is {max}",
                world.clients.len()
            ));
        }
    }
    let data_dir = server.config().server.data_dir.clone();
    let free = tokio::task::spawn_blocking(move || free_bytes(&data_dir))
        .await
        .ok()
        .flatten();
    if let Some(free) = free.filter(|&free| free < MIN_FREE_BYTES) {
        return Verdict::unhealthy(format!(
            "disk full: {free} bytes free for the data directory"
        ));
    }
    let now_ms = crate::server::unix_now() * 1000;
    let store = server.accounts.store();
    match tokio::time::timeout(WRITE_TIMEOUT, store.probe_write(now_ms)).await {
        Ok(Ok(())) => Verdict {
            healthy: true,
            reason: "ok".into(),
        },
        Ok(Err(error)) => Verdict::unhealthy(format!("database not writable: {error}")),
        Err(_) => Verdict::unhealthy(format!(
            "database not writable: a write took over {} s",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}

/// Bytes an unprivileged process may still write on the file system of
/// `dir`; `None` if the system does not say.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_space_is_read_for_a_directory_and_not_for_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::free_bytes(dir.path()).unwrap() > 0);
        assert!(super::free_bytes(&dir.path().join("missing")).is_none());
    }
}
