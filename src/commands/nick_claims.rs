//! Nick protection: a registered nick used by someone not logged in to its
//! account is claimed for the owner. The user is told to identify, and
//! after the grace period (`accounts.nick_grace_secs`) is renamed to a
//! Guest nick.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::nickserv;
use crate::server::flush::FlushScope;
use crate::server::world::{ClientId, NickClaim, World};
use crate::server::Server;

/// How often the claims are checked: each rename is at most this late.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How often the owners of nicks are read from the database again, to take
/// in accounts that `parlor account` created or deleted meanwhile (this
/// process's own changes apply at once).
const NICK_OWNERS_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// Claims remembered per client. A client that moves between registered
/// nicks keeps each claim's deadline (coming back to a nick does not give
/// it a new grace period); this bounds how many.
const MAX_CLAIMS_PER_CLIENT: usize = 8;

/// Clients whose nick is to be checked, queued for [`run`], so that a
/// burst of registrations takes the state lock once per batch, not once
/// more per client.
pub struct NickChecks {
    queue: mpsc::UnboundedSender<ClientId>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<ClientId>>>,
}

impl Default for NickChecks {
    fn default() -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        NickChecks {
            queue,
            receiver: Mutex::new(Some(receiver)),
        }
    }
}

/// Clients checked under one taking of the state lock at most.
const MAX_CHECK_BATCH: usize = 256;

/// Has [`run`] check whether client `id`'s nick belongs to an account it
/// is not logged in to, and if so claim it. Called whenever a registered
/// client's nick or login changes.
pub fn check(server: &Arc<Server>, id: ClientId) {
    if server.config().accounts.nick_protection {
        // Only fails once `run` has stopped: the server is stopping.
        let _ = server.nick_checks.queue.send(id);
    }
}

/// Checks the queued clients' nicks (the first and what queued behind it).
async fn check_batch(
    server: &Arc<Server>,
    first: ClientId,
    queue: &mut mpsc::UnboundedReceiver<ClientId>,
) {
    let mut ids = vec![first];
    while ids.len() < MAX_CHECK_BATCH {
        match queue.try_recv() {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let nicks: Vec<(ClientId, String)> = {
        let world = server.world();
        ids.iter()
            .filter_map(|id| Some((*id, server.fold(&world.clients.get(id)?.nick))))
            .collect()
    };
    let store = server.accounts.store();
    for (id, nick) in nicks {
        if let Some(owner) = store.owner_of_nick(&nick) {
            claim(server, id, nick, owner).await;
        }
    }
}

/// Claims the nick `folded` that client `id` uses for the account `owner`,
/// unless the client is logged in to it (or moved on meanwhile).
async fn claim(server: &Arc<Server>, id: ClientId, folded: String, owner: String) {
    let Ok(Some(owner_account)) = server.accounts.store().account(&owner).await else {
        return;
    };
    let grace = server.config().accounts.nick_grace_secs;
    let _batch = FlushScope::enter();
    let mut world = server.world();
    let Some(me) = world.clients.get(&id) else {
        return;
    };
    // The nick or the login may have changed while the store answered.
    let logged_in_as_owner = me
        .login
        .as_deref()
        .is_some_and(|login| server.fold(&login.name) == owner && login.uid == owner_account.uid);
    if server.fold(&me.nick) != folded || logged_in_as_owner {
        return;
    }
    let claims = world.nick_claims.entry(id).or_default();
    if claims.iter().any(|claim| claim.nick_folded == folded) {
        // Claimed before: the first deadline stands.
        return;
    }
    if claims.len() >= MAX_CLAIMS_PER_CLIENT {
        claims.remove(0);
    }
    claims.push(NickClaim {
        nick_folded: folded,
        owner,
        deadline: Instant::now() + Duration::from_secs(grace),
    });
    nickserv::SERVICE.notice_locked(
        &world.clients[&id],
        &format!(
            "This nickname is registered. Identify within {grace} seconds with /msg NickServ IDENTIFY <password> (or SASL), or it will be changed."
        ),
    );
}

/// Lifts client `id`'s claims for the account `account_folded`: it logged
/// in to it.
pub fn release(world: &mut World, id: ClientId, account_folded: &str) {
    if let Some(claims) = world.nick_claims.get_mut(&id) {
        claims.retain(|claim| claim.owner != account_folded);
        if claims.is_empty() {
            world.nick_claims.remove(&id);
        }
    }
}

/// Checks the queued nicks, renames the clients whose grace period ran
/// out on the nick they use (once a second), and reloads the nicks' owners
/// (once a minute), until the server stops.
pub async fn run(server: Arc<Server>) {
    let mut last_reload = Instant::now();
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let taken = server
        .nick_checks
        .receiver
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(mut checks) = taken else {
        tracing::error!("nick checks are already being run");
        return;
    };
    loop {
        tokio::select! {
            () = server.shutdown_requested() => return,
            Some(id) = checks.recv() => {
                check_batch(&server, id, &mut checks).await;
                continue;
            }
            _ = ticks.tick() => {}
        }
        if server.config().accounts.nick_protection
            && last_reload.elapsed() >= NICK_OWNERS_RELOAD_INTERVAL
        {
            last_reload = Instant::now();
            if let Err(error) = server.accounts.store().reload_nick_owners().await {
                tracing::warn!(%error, "cannot reload the owners of nicks");
            }
        }
        let _batch = FlushScope::enter();
        let mut world = server.world();
        let now = Instant::now();
        let due: Vec<ClientId> = world
            .nick_claims
            .iter()
            .filter(|(id, claims)| {
                world.clients.get(id).is_some_and(|me| {
                    let nick = server.fold(&me.nick);
                    claims
                        .iter()
                        .any(|claim| claim.deadline <= now && claim.nick_folded == nick)
                })
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            rename_to_guest(&server, &mut world, id);
        }
    }
}

/// Takes the claimed nick from client `id`. Its other claims stay, so
/// that taking another claimed nick back is not a fresh start.
fn rename_to_guest(server: &Server, world: &mut World, id: ClientId) {
    let nick = world.clients[&id].nick.clone();
    let folded = server.fold(&nick);
    if let Some(claims) = world.nick_claims.get_mut(&id) {
        claims.retain(|claim| claim.nick_folded != folded);
    }
    let guest = world.free_guest_nick();
    let line = world.clients[&id].line("NICK").last(&guest);
    world.announce_nick_change(id, &line);
    world.set_nick(id, &guest);
    tracing::info!(client = id, from = %nick, to = %guest, "renamed: did not identify in time");
    nickserv::SERVICE.notice_locked(
        &world.clients[&id],
        &format!("You did not identify in time, so your nick is now {guest}"),
    );
}
