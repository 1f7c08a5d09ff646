//! What NickServ and ChanServ have in common: they answer with NOTICEs
//! from their own pseudo-user, take their commands as words of text, and
//! answer a misused command with its line of the help text.

use super::{Ctx, Flow};
use crate::proto::{LineBuilder, Message};
use crate::server::world::{Client, ClientId};
use crate::server::Server;

pub struct Service {
    pub nick: &'static str,
    /// `Nick!Nick@services.`, the source of its NOTICEs.
    pub source: &'static str,
    /// The HELP text; command lines start with two spaces and the
    /// command's syntax, then two spaces before the explanation.
    pub help: &'static [&'static str],
}

impl Service {
    /// The text of `/NICKSERV …` or `/CHANSERV …`: its parameters as words.
    pub fn text_of(msg: &Message<'_>) -> String {
        msg.params.join(" ")
    }

    /// A NOTICE to client `id`.
    pub fn notice(&self, server: &Server, id: ClientId, text: &str) {
        let world = server.world();
        if let Some(me) = world.clients.get(&id) {
            self.notice_locked(me, text);
        }
    }

    /// A NOTICE to `me`, for callers holding the state lock.
    pub fn notice_locked(&self, me: &Client, text: &str) {
        me.send(
            &LineBuilder::new(Some(self.source), "NOTICE")
                .param(&me.nick)
                .trailing(text),
        );
    }

    pub fn reply(&self, ctx: &Ctx<'_>, text: &str) -> Flow {
        self.notice(ctx.server, ctx.id(), text);
        Flow::Continue
    }

    pub fn send_help(&self, ctx: &Ctx<'_>) -> Flow {
        for line in self.help {
            self.notice(ctx.server, ctx.id(), line);
        }
        Flow::Continue
    }

    /// The answer to `verb` with parameters that fit none of its forms:
    /// its syntax, or that there is no such command.
    pub fn misused(&self, ctx: &Ctx<'_>, verb: &str) -> Flow {
        let usage = self
            .help
            .iter()
            .find(|line| line.trim_start().starts_with(verb))
            .map(|line| line.trim_start().split("  ").next().unwrap_or(verb));
        match usage {
            Some(usage) => self.reply(ctx, &format!("Syntax: {usage}")),
            None => self.reply(
                ctx,
                &format!("Unknown command {verb}; /msg {} HELP lists them", self.nick),
            ),
        }
    }
}
