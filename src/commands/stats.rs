//! STATS: figures about the server itself. `L` is the state lock's hold
//! times (see `server/lock_timing.rs`), for operators; every other query
//! gets the end of an empty report.

use super::{pack_into_lines, Ctx, Flow};
use crate::proto::numeric::{Extra, Response};
use crate::proto::Message;
use crate::server::lock_timing::{HoldReport, ENV_VAR, LONG_HOLD};

/// Bytes of `floor=count` pairs per 249 line, well within 512.
const BUCKET_LINE_BUDGET: usize = 300;

pub fn stats(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let query = msg.params[0];
    let (nick, oper) = {
        let world = ctx.server.world_shared();
        let me = &world.clients[&ctx.id()];
        (me.nick.to_string(), me.modes.oper)
    };
    if query == "L" {
        if oper {
            send_lock_report(ctx, &nick);
        } else {
            ctx.send(
                &ctx.numeric(&nick, Response::ERR_NOPRIVILEGES)
                    .trailing("Permission Denied- You're not an IRC operator"),
            );
            return Flow::Continue;
        }
    }
    ctx.send(
        &ctx.numeric(&nick, Response::RPL_ENDOFSTATS)
            .param(query)
            .trailing("End of /STATS report"),
    );
    Flow::Continue
}

/// One summary line and the used buckets for each kind of hold:
/// `exclusive holds=N total_ns=N max_ns=N over_1ms=N max_cpu_ns=N
/// cpu_over_1ms=N`, then `exclusive buckets FLOOR=COUNT …` (the shortest
/// hold in the bucket, in ns). The maxima (of the hold, and of the CPU
/// time the holding thread used in it) are since the previous `STATS L`.
fn send_lock_report(ctx: &Ctx<'_>, nick: &str) {
    let line = |text: &str| {
        ctx.send(
            &ctx.numeric(nick, Extra::RPL_STATSDEBUG)
                .param("L")
                .trailing(text),
        )
    };
    let Some(timing) = ctx.server.lock_timing() else {
        line(&format!(
            "lock timing is off (start the server with {ENV_VAR}=1)"
        ));
        return;
    };
    for (kind, stats) in [("exclusive", &timing.exclusive), ("shared", &timing.shared)] {
        let HoldReport {
            holds,
            total_ns,
            max_ns,
            long,
            max_cpu_ns,
            long_cpu,
            buckets,
        } = stats.read();
        let ms = LONG_HOLD.as_millis();
        line(&format!(
            "{kind} holds={holds} total_ns={total_ns} max_ns={max_ns} over_{ms}ms={long} \
             max_cpu_ns={max_cpu_ns} cpu_over_{ms}ms={long_cpu}"
        ));
        let pairs: Vec<String> = buckets
            .iter()
            .map(|(floor, count)| format!("{floor}={count}"))
            .collect();
        let entries = pairs.iter().map(|pair| ("", pair.as_str()));
        for chunk in pack_into_lines(entries, ' ', BUCKET_LINE_BUDGET) {
            line(&format!("{kind} buckets {chunk}"));
        }
    }
}
