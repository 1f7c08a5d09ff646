//! Error replies that many handlers send, each worded in one place.

use bytes::Bytes;

use super::Ctx;
use crate::proto::numeric::Response;
use crate::proto::LineBuilder;
use crate::server::Server;

/// `403 <nick> <channel> :No such channel`
pub fn no_such_channel(ctx: &Ctx<'_>, nick: &str, channel: &str) -> Bytes {
    ctx.numeric(nick, Response::ERR_NOSUCHCHANNEL)
        .param(channel)
        .trailing("No such channel")
}

/// `442 <nick> <channel> :You're not on that channel`
pub fn not_on_channel(ctx: &Ctx<'_>, nick: &str, channel: &str) -> Bytes {
    ctx.numeric(nick, Response::ERR_NOTONCHANNEL)
        .param(channel)
        .trailing("You're not on that channel")
}

/// `482 <nick> <channel> :You're not channel operator`
pub fn chanop_needed(ctx: &Ctx<'_>, nick: &str, channel: &str) -> Bytes {
    ctx.numeric(nick, Response::ERR_CHANOPRIVSNEEDED)
        .param(channel)
        .trailing("You're not channel operator")
}

/// `461 <nick> <command> :Not enough parameters`
pub fn need_more_params(ctx: &Ctx<'_>, nick: &str, command: &str) -> Bytes {
    ctx.numeric(nick, Response::ERR_NEEDMOREPARAMS)
        .param(command)
        .trailing("Not enough parameters")
}

/// `401 <nick> <target> :No such nick/channel`
pub fn no_such_nick(ctx: &Ctx<'_>, nick: &str, target: &str) -> Bytes {
    no_such_nick_from(ctx.server, nick, target)
}

/// [`no_such_nick`], for work done off the command's context.
pub fn no_such_nick_from(server: &Server, nick: &str, target: &str) -> Bytes {
    LineBuilder::numeric(&server.name, Response::ERR_NOSUCHNICK, nick)
        .param(target)
        .trailing("No such nick/channel")
}
