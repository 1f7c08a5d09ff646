//! Nick protection: a registered nick used by someone not logged in to its
//! account is claimed for the owner. The user is told to identify, and
//! after the grace period (`accounts.nick_grace_secs`) is renamed to a
//! Guest nick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::nickserv;
use crate::proto::LineBuilder;
use crate::server::flush::FlushScope;
use crate::server::world::{ClientId, NickClaim, World};
use crate::server::Server;

/// How often the claims are checked: each rename is at most this late.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Checks, off the connection's task, whether client `id`'s nick belongs
/// to an account it is not logged in to, and if so claims it. Called
/// whenever a registered client's nick or login changes.
pub fn check(server: &Arc<Server>, id: ClientId) {
    if !server.config.accounts.nick_protection {
        return;
    }
    let Some(nick) = server.world().clients.get(&id).map(|c| c.nick.clone()) else {
        return;
    };
    let server = server.clone();
    tokio::spawn(async move {
        let folded = server.fold(&nick);
        let owner = match server.accounts.store().account_owning_nick(&folded).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot check nick ownership");
                return;
            }
        };
        let grace = server.config.accounts.nick_grace_secs;
        let _batch = FlushScope::enter();
        let mut world = server.world();
        let Some(me) = world.clients.get(&id) else {
            return;
        };
        // The nick or the login may have changed while the store answered.
        let logged_in_as_owner =
            me.account.as_deref().map(|a| server.fold(a)) == Some(owner.clone());
        if server.fold(&me.nick) != folded || logged_in_as_owner {
            return;
        }
        nickserv::notice_locked(
            &server,
            me,
            &format!(
                "This nickname is registered. Identify within {grace} seconds with /msg NickServ IDENTIFY <password> (or SASL), or it will be changed."
            ),
        );
        world.nick_claims.insert(
            id,
            NickClaim {
                nick_folded: folded,
                owner,
                deadline: Instant::now() + Duration::from_secs(grace),
            },
        );
    });
}

/// Drops the claim on client `id`'s nick if `account` owns it.
pub fn release(world: &mut World, id: ClientId, account_folded: &str) {
    if world
        .nick_claims
        .get(&id)
        .is_some_and(|claim| claim.owner == account_folded)
    {
        world.nick_claims.remove(&id);
    }
}

/// Renames the clients whose grace period ran out, once a second until the
/// server stops.
pub async fn run(server: Arc<Server>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = server.shutdown_requested() => return,
            _ = ticks.tick() => {}
        }
        let _batch = FlushScope::enter();
        let mut world = server.world();
        let now = Instant::now();
        let due: Vec<ClientId> = world
            .nick_claims
            .iter()
            .filter(|(_, claim)| claim.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(claim) = world.nick_claims.remove(&id) else {
                continue;
            };
            let Some(me) = world.clients.get(&id) else {
                continue;
            };
            if server.fold(&me.nick) != claim.nick_folded {
                continue;
            }
            let guest = world.free_guest_nick();
            let line = LineBuilder::new(Some(&world.clients[&id].mask), "NICK").last(&guest);
            world.send_to_peers(id, &line, true);
            world.set_nick(id, &guest);
            tracing::info!(client = id, nick = %guest, "renamed: did not identify in time");
            nickserv::notice_locked(
                &server,
                &world.clients[&id],
                &format!("You did not identify in time, so your nick is now {guest}"),
            );
        }
    }
}
