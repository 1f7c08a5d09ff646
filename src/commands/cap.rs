//! IRCv3 capability negotiation: `CAP LS`, `LIST`, `REQ`, `END`.

use super::registration::try_register;
use super::{Ctx, Flow};
use crate::proto::numeric::Extra;
use crate::proto::{LineBuilder, Message};
use crate::server::caps::Cap;

pub fn cap(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let subcommand = msg.params[0].to_ascii_uppercase();
    match subcommand.as_str() {
        "LS" => {
            begin_negotiation(ctx);
            let version_302 = msg
                .param(1)
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v >= 302);
            // Values are for clients that asked for them with `LS 302`.
            let mut offered: Vec<String> = Cap::ALL
                .iter()
                .map(|&cap| match value(ctx, cap) {
                    Some(value) if version_302 => format!("{}={value}", cap.name()),
                    _ => cap.name().to_owned(),
                })
                .collect();
            // Listed, never requested: a client acts on its value alone.
            if let Some(policy) = sts_policy(ctx) {
                offered.push(match version_302 {
                    true => format!("sts={policy}"),
                    false => "sts".to_owned(),
                });
            }
            send_cap(ctx, "LS", &offered.join(" "));
            if version_302 {
                // CAP LS 302 implies cap-notify.
                ctx.session.cap_302 = true;
                set_caps(ctx, &[(Cap::CapNotify, true)]);
            }
            Flow::Continue
        }
        "LIST" => {
            let enabled = {
                let world = ctx.world();
                world
                    .clients
                    .get(&ctx.id())
                    .map(|c| c.caps.names().collect::<Vec<_>>().join(" "))
            };
            send_cap(ctx, "LIST", &enabled.unwrap_or_default());
            Flow::Continue
        }
        "REQ" => {
            begin_negotiation(ctx);
            let requested = msg.param(1).unwrap_or("");
            let changes: Option<Vec<(Cap, bool)>> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|item| match item.strip_prefix('-') {
                    Some(name) => Cap::from_name(name).map(|c| (c, false)),
                    None => Cap::from_name(item).map(|c| (c, true)),
                })
                .collect();
            // "Servers MUST NOT disable the cap-notify capability if the
            // client requests CAP LS with a version of 302 or newer."
            let locked = |changes: &[(Cap, bool)]| {
                ctx.session.cap_302 && changes.contains(&(Cap::CapNotify, false))
            };
            // All or nothing: one unknown (or locked) capability refuses
            // the request.
            match changes {
                Some(changes) if !changes.is_empty() && !locked(&changes) => {
                    set_caps(ctx, &changes);
                    send_cap(ctx, "ACK", requested.trim());
                }
                _ => send_cap(ctx, "NAK", requested.trim()),
            }
            Flow::Continue
        }
        "END" => {
            if ctx.session.registered {
                return Flow::Continue;
            }
            ctx.session.cap_negotiating = false;
            try_register(ctx)
        }
        _ => {
            ctx.reply(Extra::ERR_INVALIDCAPCMD, |b| {
                b.param(msg.params[0]).trailing("Invalid CAP command")
            });
            Flow::Continue
        }
    }
}

/// The value `CAP LS 302` gives `cap`, if it has one.
fn value(ctx: &Ctx<'_>, cap: Cap) -> Option<String> {
    match cap {
        Cap::Sasl => Some(super::sasl::MECHANISMS.to_owned()),
        Cap::AccountRegistration => {
            let rules = &ctx.server.config().accounts;
            let keys = [
                (rules.register_before_connect, "before-connect"),
                (rules.email_required, "email-required"),
            ];
            let value: Vec<&str> = keys.iter().filter(|k| k.0).map(|k| k.1).collect();
            (!value.is_empty()).then(|| value.join(","))
        }
        _ => None,
    }
}

/// The `sts` value this connection is told (IRCv3 STS): where to find TLS
/// on a plaintext connection, how long to keep to it on a TLS one.
fn sts_policy(ctx: &Ctx<'_>) -> Option<String> {
    let tls = &ctx.server.config().tls;
    if !tls.sts || !tls.enabled() {
        return None;
    }
    if !ctx.session.outbox.wire().is_secure() {
        let port = ctx.server.sts_port()?;
        return Some(format!("port={port}"));
    }
    let mut policy = format!("duration={}", tls.sts_duration_secs);
    if tls.sts_preload {
        policy.push_str(",preload");
    }
    Some(policy)
}

fn begin_negotiation(ctx: &mut Ctx<'_>) {
    if !ctx.session.registered {
        ctx.session.cap_negotiating = true;
    }
}

fn set_caps(ctx: &Ctx<'_>, changes: &[(Cap, bool)]) {
    let mut world = ctx.world();
    if let Some(me) = world.clients.get_mut(&ctx.id()) {
        for &(cap, enabled) in changes {
            me.caps.set(cap, enabled);
        }
        me.outbox.set_tag_mask(me.caps.tag_mask());
    }
}

fn send_cap(ctx: &Ctx<'_>, subcommand: &str, caps: &str) {
    let nick = {
        let world = ctx.world();
        world
            .clients
            .get(&ctx.id())
            .map(|c| c.nick.clone())
            .unwrap_or_default()
    };
    let line = LineBuilder::new(Some(&ctx.server.name), "CAP")
        .param(&nick)
        .param(subcommand)
        .trailing(caps);
    ctx.send(&line);
}
