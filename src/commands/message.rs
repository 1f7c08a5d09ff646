//! PRIVMSG, NOTICE and TAGMSG, to channels (optionally to one status level
//! only, STATUSMSG) and to nicks. The text, CTCP and DCC payloads included,
//! is relayed byte for byte, with the sender's client-only tags
//! (message-tags) and an echo to the sender (echo-message).

use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use super::{
    chanserv, is_channel_name, missed, nickserv, playback, replies, split_list, Ctx, Flow,
};
use crate::metrics;
use crate::proto::numeric::Response;
use crate::proto::tags::Stamp;
use crate::proto::{Message, Tag};
use crate::server::caps::Cap;
use crate::server::history;
use crate::server::stamped::StampedLine;
use crate::server::world::World;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Privmsg,
    Notice,
    Tagmsg,
}

impl Kind {
    fn metric(self) -> metrics::Relayed {
        match self {
            Kind::Privmsg => metrics::Relayed::Privmsg,
            Kind::Notice => metrics::Relayed::Notice,
            Kind::Tagmsg => metrics::Relayed::Tagmsg,
        }
    }

    fn command(self) -> &'static str {
        match self {
            Kind::Privmsg => "PRIVMSG",
            Kind::Notice => "NOTICE",
            Kind::Tagmsg => "TAGMSG",
        }
    }
}

pub fn privmsg(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    if let (Some(target), Some(text)) = (msg.param(0), msg.param(1)) {
        if target.eq_ignore_ascii_case(nickserv::NICK) {
            return nickserv::handle(ctx, text);
        }
        if target.eq_ignore_ascii_case(chanserv::NICK) {
            return chanserv::handle(ctx, text);
        }
        if target.eq_ignore_ascii_case(playback::NICK) {
            return playback::handle(ctx, text);
        }
    }
    relay(ctx, msg, Kind::Privmsg)
}

pub fn notice(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    relay(ctx, msg, Kind::Notice)
}

/// A message made only of tags (typing notifications, reactions): it
/// reaches only recipients that enabled message-tags.
pub fn tagmsg(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    relay(ctx, msg, Kind::Tagmsg)
}

fn relay(ctx: &Ctx<'_>, msg: &Message<'_>, kind: Kind) -> Flow {
    // NOTICE must never trigger an automatic reply, errors included.
    let errors = kind != Kind::Notice;
    let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
        if errors {
            ctx.reply(Response::ERR_NORECIPIENT, |b| {
                b.trailing(&format!("No recipient given ({})", kind.command()))
            });
        }
        return Flow::Continue;
    };
    if text_of(msg).is_none() && kind != Kind::Tagmsg {
        if errors {
            ctx.reply(Response::ERR_NOTEXTTOSEND, |b| {
                b.trailing("No text to send")
            });
        }
        return Flow::Continue;
    }
    let outgoing = Outgoing {
        tags: &msg.tags,
        text: text_of(msg),
    };
    relay_all(ctx, &[outgoing], kind, targets)
}

/// What a relayed message carries besides its command and targets.
struct Outgoing<'m> {
    tags: &'m [Tag<'m>],
    text: Option<&'m str>,
}

/// Whether a PRIVMSG or NOTICE (`command`) to `target` may be relayed in a
/// run with the messages around it (see [`relay_run`]): to one channel by
/// its plain name or to one nick that is not a service's.
pub fn may_run(command: &str, target: &str) -> bool {
    let is_service = [nickserv::NICK, chanserv::NICK, playback::NICK]
        .iter()
        .any(|service| target.eq_ignore_ascii_case(service));
    matches!(command, "PRIVMSG" | "NOTICE")
        && !target.is_empty()
        // The parser would take `:…` for the text, not for a target.
        && !target.starts_with([':', '@', '+'])
        && !target.contains(',')
        && !is_service
}

/// Messages that came one after another in a client's input, `command` to
/// `target` (which [`may_run`]) with each of `texts`, none of them empty
/// and none with tags. Relayed under
/// one lock, so that each recipient gets them queued as one piece (see
/// `Channel::broadcast_message`) instead of one by one. What each
/// recipient, the sender and the history see is what relaying them one by
/// one gives.
pub fn relay_run(ctx: &Ctx<'_>, command: &str, target: &str, texts: &[&str]) -> Flow {
    let kind = if command == "NOTICE" {
        Kind::Notice
    } else {
        Kind::Privmsg
    };
    let run: SmallVec<[Outgoing<'_>; 8]> = texts
        .iter()
        .map(|&text| Outgoing {
            tags: &[],
            text: Some(text),
        })
        .collect();
    relay_all(ctx, &run, kind, target)
}

/// The text a message carries, if any.
fn text_of<'m>(msg: &Message<'m>) -> Option<&'m str> {
    msg.param(1).filter(|t| !t.is_empty())
}

/// Relays `run`: one message, or a run of them to one target (see
/// [`relay_run`]). Targets come first and messages second, which is the
/// order of relaying the messages one by one only with a single target.
fn relay_all(ctx: &Ctx<'_>, run: &[Outgoing<'_>], kind: Kind, targets: &str) -> Flow {
    // A message to a channel changes the state (the lines kept for
    // replay) and must reach every member in one order: it takes the lock
    // alone. A message to people only reads the state, so it shares the
    // lock, and threads relaying private messages do not wait for each
    // other; what it keeps goes to the history log's own queue.
    let to_channel =
        split_list(targets).any(|target| is_channel_name(target.trim_start_matches(['@', '+'])));
    if !to_channel {
        let world = ctx.server.world_shared();
        return relay_to_targets(ctx, &world, run, kind, targets).flow;
    }
    let mut world = ctx.world();
    let relayed = relay_to_targets(ctx, &world, run, kind, targets);
    for (folded, stamp, line) in relayed.remembered {
        let keep = world.history.replay_lines(&folded);
        world.recent_lines.push(&folded, stamp, line, keep);
    }
    relayed.flow
}

/// What relaying a message leaves to do.
struct Relayed {
    flow: Flow,
    /// Lines of channels to keep for replay on join, which needs the state
    /// locked for writing.
    remembered: SmallVec<[(String, Stamp, bytes::Bytes); 1]>,
}

/// The lines it builds (`'s`) borrow from the state (`'w`, the sender's
/// account) and from the messages (`'r`, `'m`, their client-only tags).
fn relay_to_targets<'s, 'w: 's, 'r: 's, 'm: 's>(
    ctx: &Ctx<'_>,
    world: &'w World,
    run: &'r [Outgoing<'m>],
    kind: Kind,
    targets: &str,
) -> Relayed {
    let errors = kind != Kind::Notice;
    let id = ctx.id();
    let max_targets = ctx.server.config().limits.targets_per_message;
    // Read when this batch of input came in: not under the lock, which
    // every message of every thread takes, and not once per message.
    let clock_ms = ctx.session.clock_ms;
    let me = &world.clients[&id];
    if kind == Kind::Privmsg {
        me.last_active_ms.store(clock_ms, Ordering::Relaxed);
    }
    // Client-only tags come only from clients that said they speak them.
    let sends_tags = me.caps.has(Cap::MessageTags);
    let echo = me.caps.has(Cap::EchoMessage) && (kind != Kind::Tagmsg || sends_tags);
    let line_to = |msg: &'r Outgoing<'m>, target: &str| -> StampedLine<'s> {
        let client_tags = msg
            .tags
            .iter()
            .filter(|tag| sends_tags && tag.key.starts_with('+'))
            .map(|tag| (tag.key, tag.value.as_ref()));
        StampedLine::new(
            clock_ms,
            me.mask(),
            me.account(),
            kind.command(),
            client_tags,
            |line| {
                let line = line.param(target);
                match msg.text {
                    Some(text) => line.trailing(text),
                    None => line.finish(),
                }
            },
        )
    };
    let history_config = &ctx.server.config().history;
    let keeps_offline =
        history_config.enabled && history_config.direct_messages && history_config.offline_messages;
    let mut answers = missed::SenderReplies::new(&me.outbox);
    let mut remembered = SmallVec::new();
    // Messages relayed to a target, counted once when all are.
    let mut relayed = 0;
    // Targets are few (a line holds at most a few dozen), so a short list
    // beats a set.
    let mut seen: SmallVec<[std::borrow::Cow<'_, str>; 4]> = SmallVec::new();
    for target in split_list(targets) {
        let folded_target = world.fold_cow(target);
        if seen.contains(&folded_target) {
            continue;
        }
        // Borrowed, as most targets come folded already: the copy is free.
        seen.push(folded_target.clone());
        if seen.len() > max_targets {
            if errors {
                for _ in run {
                    answers.send(
                        ctx.numeric(&me.nick, Response::ERR_TOOMANYTARGETS)
                            .param(target)
                            .trailing("Too many targets"),
                    );
                }
            }
            continue;
        }
        // STATUSMSG: one or more prefixes; the lowest of them decides who
        // receives the message (`@+#c` reaches voiced users and ops).
        let channel_name = target.trim_start_matches(['@', '+']);
        let prefixes = &target[..target.len() - channel_name.len()];
        let status = if prefixes.contains('+') {
            Some('+')
        } else if prefixes.contains('@') {
            Some('@')
        } else {
            None
        };
        if is_channel_name(channel_name) {
            let Some(channel) = world.channel(channel_name) else {
                if errors {
                    for _ in run {
                        answers.send(replies::no_such_channel(ctx, &me.nick, channel_name));
                    }
                }
                continue;
            };
            let may_speak = me.modes.oper || channel.may_speak(id, || world.folded_masks(me));
            if !may_speak {
                if errors {
                    for _ in run {
                        answers.send(
                            ctx.numeric(&me.nick, Response::ERR_CANNOTSENDTOCHAN)
                                .param(&channel.name)
                                .trailing("Cannot send to channel"),
                        );
                    }
                }
                continue;
            }
            let lines: SmallVec<[StampedLine<'_>; 1]> =
                run.iter().map(|msg| line_to(msg, target)).collect();
            channel.broadcast_message(&lines, id, status, kind == Kind::Tagmsg);
            relayed += lines.len();
            if echo {
                for line in &lines {
                    answers.echo(line);
                }
            }
            // A message to some members only (STATUSMSG) is not replayed to
            // everyone later.
            let folded = world.fold_cow(channel_name);
            if status.is_none() && world.history.logs(&folded) {
                for line in &lines {
                    let tagged = line.tagged().clone();
                    world
                        .history
                        .record(&folded, kind.command(), line.stamp, &tagged);
                    if kind != Kind::Tagmsg {
                        remembered.push((folded.to_string(), line.stamp, tagged));
                    }
                }
            }
            continue;
        }
        let Some(recipient) = world.registered_by_folded_nick(&folded_target) else {
            for msg in run {
                if kind != Kind::Tagmsg && keeps_offline {
                    // Whether an account owns the nick is the database's to
                    // say: decided after the loop, off the lock.
                    let line = line_to(msg, target);
                    answers.wait_for_owner(missed::OfflineMessage {
                        target: target.to_owned(),
                        command: kind.command(),
                        stamp: line.stamp,
                        line: line.tagged().clone(),
                    });
                } else if errors {
                    answers.send(replies::no_such_nick(ctx, &me.nick, target));
                }
            }
            continue;
        };
        let lines: SmallVec<[StampedLine<'_>; 1]> = run
            .iter()
            .map(|msg| line_to(msg, &recipient.nick))
            .collect();
        let takes_it = kind != Kind::Tagmsg || recipient.caps.has(Cap::MessageTags);
        let to_myself = recipient.id == id;
        if takes_it && !to_myself {
            let joined = std::cell::OnceCell::new();
            recipient
                .outbox
                .recipient()
                .send_stamped_run(&lines, &joined);
        }
        if takes_it {
            metrics::delivered(lines.len());
        }
        relayed += lines.len();
        for line in &lines {
            if takes_it && to_myself {
                // Delivered, not a reply: only the echo may carry a label
                // (labeled-response). Each line comes before its echo.
                recipient.outbox.send_stamped_unlabeled(line);
            }
            if echo {
                answers.echo(line);
            }
            // Kept for the logged-in side(s) of the conversation.
            if me.login.is_some() || recipient.login.is_some() {
                let key = history::direct_key(
                    &world.history_identity(me),
                    &world.history_identity(recipient),
                );
                world
                    .history
                    .record_direct(&key, kind.command(), line.stamp, line.tagged());
            }
            if let (Kind::Privmsg, Some(away)) = (kind, &recipient.away) {
                answers.send(
                    ctx.numeric(&me.nick, Response::RPL_AWAY)
                        .param(&recipient.nick)
                        .trailing(away),
                );
            }
        }
    }
    metrics::relayed(kind.metric(), relayed);
    let Some(waiting) = answers.into_waiting() else {
        return Relayed {
            flow: Flow::Continue,
            remembered,
        };
    };
    let sender = missed::OfflineSender {
        nick: me.nick.to_string(),
        identity: world.history_identity(me),
        outbox: me.outbox.clone(),
        echo,
        errors,
    };
    Relayed {
        flow: Flow::Wait(Box::pin(missed::leave_for_owners(
            ctx.server.clone(),
            sender,
            waiting,
        ))),
        remembered,
    }
}
