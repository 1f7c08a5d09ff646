//! Picking up renewed certificates without a restart.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::Server;

/// Checks the certificate files every `tls.reload_check_secs` and serves
/// what a renewal wrote (certbot replaces them in place).
pub(super) async fn watch_certificate(server: Arc<Server>) {
    let every = Duration::from_secs(server.config.tls.reload_check_secs);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = server.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        reload_certificate(&server, true).await;
    }
}

/// Reads the certificate files again (only if they changed, when
/// `only_if_changed`). A pair that fails to load is logged and the one
/// served stays. Returns what happened, for REHASH to tell the operator.
pub async fn reload_certificate(server: &Arc<Server>, only_if_changed: bool) -> Option<String> {
    server.tls.as_ref()?;
    let reloading = server.clone();
    let result = tokio::task::spawn_blocking(move || {
        reloading
            .tls
            .as_ref()
            .map(|tls| tls.reload(only_if_changed))
    })
    .await;
    match result {
        Ok(Some(Ok(true))) => {
            info!("TLS certificate reloaded");
            Some("TLS certificate reloaded".to_owned())
        }
        Ok(Some(Ok(false))) | Ok(None) => None,
        Ok(Some(Err(error))) => {
            warn!(%error, "TLS certificate not reloaded; the current one stays");
            Some(format!("TLS certificate not reloaded: {error}"))
        }
        Err(error) => {
            warn!(%error, "TLS certificate reload failed");
            None
        }
    }
}
