//! ZNC's playback module, as several clients and bouncers already speak
//! it (`znc.in/playback`): `PRIVMSG *playback :PLAY <target|*> <since>
//! [<until>]`, times in Unix seconds. The client gets the stored messages
//! of that channel or conversation (or of all its channels and
//! conversations) as ordinary lines with their original time. Its own
//! messages come back only if it enabled `znc.in/self-message`.

use bytes::Bytes;

use super::{is_channel_name, Ctx, Flow};
use crate::proto::tags;
use crate::proto::LineBuilder;
use crate::server::caps::{Cap, Caps};
use crate::server::flush::FlushScope;
use crate::server::history::{self, Written};
use crate::server::outbox::Outbox;
use crate::server::Server;
use crate::store::{Kinds, StoreError};

/// The pseudo-user clients address.
pub const NICK: &str = "*playback";
const SOURCE: &str = "*playback!znc@znc.in";

pub fn handle(ctx: &mut Ctx<'_>, text: &str) -> Flow {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (target, since, until) = match words.as_slice() {
        [verb, target, since, rest @ ..]
            if verb.eq_ignore_ascii_case("PLAY") && rest.len() <= 1 =>
        {
            (
                *target,
                parse_seconds(since),
                rest.first().map(|u| parse_seconds(u)),
            )
        }
        _ => {
            return notice(
                ctx,
                "Usage: PLAY <#channel|nick|*> <since> [<until>] (Unix times)",
            )
        }
    };
    let (Some(since), Some(until)) = (since, until.unwrap_or(Some(u64::MAX >> 16))) else {
        return notice(
            ctx,
            "Times are Unix timestamps in seconds, e.g. 1700000000.5",
        );
    };
    let Some((plan, written)) = plan(ctx, target) else {
        return notice(ctx, &format!("No history of {target} for you"));
    };
    let server = ctx.server.clone();
    let outbox = ctx.session.outbox.clone();
    let max = ctx.server.config().history.chathistory_max;
    Flow::Wait(Box::pin(async move {
        written.wait().await;
        if let Err(error) = play(&server, &outbox, &plan, since, until, max).await {
            tracing::error!(%error, "cannot play back history");
        }
        None
    }))
}

/// What PLAY reads, and for whom.
struct Plan {
    /// Casefolded channels, and direct-message keys, to read, each with
    /// the id its history starts after (an unregistered channel's starts
    /// with it: see `Channel::history_after`).
    targets: Vec<(String, u64)>,
    /// For `*`: the asker's identity, whose every conversation is read.
    all_conversations_of: Option<String>,
    caps: Caps,
    /// The asker's nick, casefolded, to leave its own messages out.
    own_nick: String,
}

/// The plan, and the point the history must be written up to.
fn plan(ctx: &Ctx<'_>, target: &str) -> Option<(Plan, Written)> {
    let world = ctx.world();
    let me = world.clients.get(&ctx.id())?;
    let identity = me.login.as_ref().map(|_| world.history_identity(me));
    let mut all_conversations_of = None;
    let floor = |folded: &str| {
        world.channels.get(folded).map_or(0, |channel| {
            if world.registered_channels.contains_key(folded) {
                0
            } else {
                channel.history_after
            }
        })
    };
    let targets = if target == "*" {
        all_conversations_of = identity;
        me.channels
            .iter()
            .map(|folded| (folded.clone(), floor(folded)))
            .collect()
    } else if is_channel_name(target) {
        let folded = world.fold(target);
        if !me.channels.contains(&folded) {
            return None;
        }
        let from = floor(&folded);
        vec![(folded, from)]
    } else {
        let partner = match world.registered_by_nick(target) {
            Some(partner) => world.history_identity(partner),
            None => world.fold(target),
        };
        vec![(history::direct_key(identity.as_ref()?, &partner), 0)]
    };
    let plan = Plan {
        targets,
        all_conversations_of,
        caps: me.caps,
        own_nick: world.fold(&me.nick),
    };
    (!plan.targets.is_empty() || plan.all_conversations_of.is_some())
        .then(|| (plan, world.history.written()))
}

async fn play(
    server: &Server,
    outbox: &Outbox,
    plan: &Plan,
    since: u64,
    until: u64,
    max: usize,
) -> Result<(), StoreError> {
    let store = server.accounts.store();
    let mask = plan.caps.tag_mask();
    // Ids are milliseconds shifted left by 16 (see `MessageId`).
    let (after, before) = (
        (since << 16).saturating_sub(1),
        until.saturating_mul(1 << 16),
    );
    let mut targets = plan.targets.clone();
    if let Some(identity) = &plan.all_conversations_of {
        for (key, _) in store.direct_targets_of(identity, after, before).await? {
            if history::direct_partner(&key, identity).is_some() {
                targets.push((key, 0));
            }
        }
    }
    for (target, floor) in targets {
        let rows = store
            .history_range(
                &target,
                after.max(floor),
                before,
                max,
                true,
                Kinds::Messages,
            )
            .await?;
        // One write per target, not one per line.
        let _scope = FlushScope::enter();
        for row in rows {
            let line = Bytes::from(row.line + "\r\n");
            if !plan.caps.has(Cap::SelfMessage)
                && super::missed::is_own(&line, &plan.own_nick, server)
            {
                continue;
            }
            outbox.send_as_is(tags::view(&line, mask));
        }
    }
    Ok(())
}

/// `1700000000` or `1700000000.123` in milliseconds.
fn parse_seconds(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: u64 = whole.parse().ok()?;
    let millis = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction
            .chars()
            .chain(std::iter::repeat('0'))
            .take(3)
            .collect();
        digits.parse().ok()?
    };
    seconds.checked_mul(1000)?.checked_add(millis)
}

fn notice(ctx: &Ctx<'_>, text: &str) -> Flow {
    let world = ctx.world();
    if let Some(me) = world.clients.get(&ctx.id()) {
        me.send(
            &LineBuilder::new(Some(SOURCE), "NOTICE")
                .param(&me.nick)
                .trailing(text),
        );
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn times_are_unix_seconds_with_an_optional_fraction() {
        assert_eq!(parse_seconds("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_seconds("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_seconds("1700000000.123456"), Some(1_700_000_000_123));
        assert_eq!(parse_seconds("soon"), None);
        assert_eq!(parse_seconds("1.x"), None);
    }
}
