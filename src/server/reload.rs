//! Reloading without a restart: the whole configuration (REHASH,
//! SIGHUP), and renewed certificate files on their own.

use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::settings::Settings;
use super::Server;
use crate::config::{Config, ConfigSource};
use crate::tls::{Acceptor, CertFiles};

/// Checks the certificate files every `tls.reload_check_secs` and serves
/// what a renewal wrote (certbot replaces them in place).
/// Runs for the server's life: TLS may be configured by a reload, and the
/// interval changed by one.
pub(super) async fn watch_certificate(server: Arc<Server>) {
    loop {
        let every = server.config().tls.reload_check_secs;
        // Off: looked at again a minute later, in case a reload turns it on.
        let wait = Duration::from_secs(if every == 0 { 60 } else { every });
        tokio::select! {
            () = server.shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if every != 0 {
            reload_certificate(&server, true).await;
        }
    }
}

/// Reads the certificate files again (only if they changed, when
/// `only_if_changed`). A pair that fails to load is logged and the one
/// served stays. Returns what happened, for REHASH to tell the operator.
pub async fn reload_certificate(server: &Arc<Server>, only_if_changed: bool) -> Option<String> {
    let acceptor = server.tls.load_full()?;
    let result = tokio::task::spawn_blocking(move || Some(acceptor.reload(only_if_changed))).await;
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

/// Keys a running server cannot change: what they shape is built once at
/// start. A reload keeps their running values and says so.
fn restart_only(running: &Config, new: &mut Config) -> Vec<String> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($path:ident).+, $key:literal) => {
            if new.$($path).+ != running.$($path).+ {
                new.$($path).+ = running.$($path).+.clone();
                kept.push($key.to_owned());
            }
        };
    }
    keep!(server.name, "server.name");
    keep!(server.data_dir, "server.data_dir");
    keep!(server.casemapping, "server.casemapping");
    keep!(server.threads, "server.threads");
    keep!(limits.whowas_entries, "limits.whowas_entries");
    keep!(limits.ipv6_prefix_len, "limits.ipv6_prefix_len");
    keep!(history.commit_interval_ms, "history.commit_interval_ms");
    keep!(channels.restart_wait_secs, "channels.restart_wait_secs");
    // ACME's task and its acceptor are made at start. With it go the
    // certificate files, which it replaces or is replaced by.
    if new.tls.acme != running.tls.acme {
        new.tls.acme = running.tls.acme.clone();
        new.tls.cert_file = running.tls.cert_file.clone();
        new.tls.key_file = running.tls.key_file.clone();
        kept.push("tls.acme".to_owned());
    }
    kept
}

/// What a reload will put in force, all of it read and checked before
/// any of it is.
struct Prepared {
    settings: Settings,
    tls: TlsChange,
    accounts_changed: bool,
    kept: Vec<String>,
}

enum TlsChange {
    /// No TLS before or after.
    None,
    /// The same files, read again.
    Reread(CertifiedKey),
    /// Other files, or TLS newly configured.
    New(Arc<Acceptor>),
    /// TLS no longer configured.
    Off,
}

/// Reads and checks everything (blocking file I/O).
fn prepare(server: &Server, source: &ConfigSource) -> Result<Prepared, String> {
    let running = server.config();
    let mut config = source.load().map_err(|e| e.to_string())?;
    let kept = restart_only(&running.config, &mut config);
    let files = CertFiles {
        cert: config.tls.cert_file.clone(),
        key: config.tls.key_file.clone(),
    };
    let current = server.tls.load_full();
    let tls = match (config.serves_tls(), current) {
        // ACME's acceptor stays whatever the listeners become: its task
        // serves into it for the server's life.
        (_, Some(acceptor)) if acceptor.files().is_none() => TlsChange::None,
        (false, None) => TlsChange::None,
        (false, Some(_)) => TlsChange::Off,
        (true, Some(acceptor)) if acceptor.files() == Some(&files) => {
            TlsChange::Reread(files.load().map_err(|e| format!("tls: {e}"))?)
        }
        (true, _) => TlsChange::New(Arc::new(
            Acceptor::load(files).map_err(|e| format!("tls: {e}"))?,
        )),
    };
    let accounts_changed = running.accounts != config.accounts;
    let motd_file = config.server.motd_file.clone();
    let settings = Settings::load(config)
        .map_err(|e| format!("key `server.motd_file`: cannot read {motd_file:?}: {e}"))?;
    Ok(Prepared {
        settings,
        tls,
        accounts_changed,
        kept,
    })
}

/// Reads the configuration again (REHASH, SIGHUP) and puts it in force
/// without dropping anyone: MOTD, opers, limits, accounts and history
/// rules, TLS files and STS, listeners opened and closed. A file that
/// fails to parse or validate changes nothing; the error names the key.
/// Returns what changed, or why nothing did.
pub async fn rehash(server: &Arc<Server>) -> Result<Vec<String>, String> {
    let Some(source) = server.source.clone() else {
        return Err("this server was started with a configuration given in-process; there is no file to read again".to_owned());
    };
    info!(source = %source.describe(), "reloading the configuration");
    let preparing = server.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&preparing, &source))
        .await
        .map_err(|e| format!("the reload failed: {e}"))?;
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            warn!(%error, "configuration not reloaded; the running one stays");
            return Err(error);
        }
    };
    let Prepared {
        settings,
        tls,
        accounts_changed,
        kept,
    } = prepared;
    // Listeners first: the one step that can still fail (an address in
    // use), and it changes nothing if it does.
    let wanted = super::listeners::wanted(&settings.config);
    let mut changes = server
        .listeners
        .apply(server, &wanted, &server.tracker)
        .map_err(|e| {
            let error = format!("{e:#}");
            warn!(%error, "configuration not reloaded; the running one stays");
            error
        })?;
    match tls {
        TlsChange::None => {}
        TlsChange::Reread(certified) => {
            if let Some(acceptor) = server.tls.load_full() {
                acceptor.serve(certified);
            }
            changes.push("TLS certificate read again".to_owned());
        }
        TlsChange::New(acceptor) => {
            server.tls.store(Some(acceptor));
            changes.push("TLS certificate files changed".to_owned());
        }
        TlsChange::Off => {
            server.tls.store(None);
            changes.push("TLS turned off".to_owned());
        }
    }
    {
        let config = &settings.config;
        let mut world = server.world();
        world
            .history
            .set_policy(&config.history, config.server.casemapping);
    }
    let accounts_rules = settings.config.accounts.clone();
    server.set_settings(settings);
    if accounts_changed {
        let accounts = server.accounts.clone();
        // One Argon2 hash: off the async threads.
        let _ = tokio::task::spawn_blocking(move || accounts.reload(&accounts_rules)).await;
        changes.push("account rules changed".to_owned());
    }
    if !kept.is_empty() {
        changes.push(format!(
            "needs a restart to change, kept as running: {}",
            kept.join(", ")
        ));
    }
    info!(changes = %changes.join("; "), "configuration reloaded");
    Ok(changes)
}
