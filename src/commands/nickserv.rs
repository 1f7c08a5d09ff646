//! NickServ, the service pseudo-user that people and older clients expect:
//! `/msg NickServ REGISTER`, `IDENTIFY`, `LOGOUT`, `INFO`, `SET PASSWORD`,
//! `DROP`, `GHOST`, `RECOVER`, `CERT` and `HELP`. It answers with NOTICEs.
//! Also reachable as `/NICKSERV` and `/NS`.

mod cert;

use std::sync::Arc;

use super::services::Service;
use super::{account, sasl, Ctx, Flow};
use crate::accounts::{http_date, AccountError};
use crate::metrics::{self, Mechanism};
use crate::proto::Message;
use crate::server::world::ClientId;
use crate::server::Server;

/// The service's nick; no client may take it.
pub const NICK: &str = "NickServ";

pub const SERVICE: Service = Service {
    nick: NICK,
    source: "NickServ!NickServ@services.",
    help: HELP,
};

const TOO_MANY_FAILURES: &str = "Too many failed logins on this connection";

const HELP: &[&str] = &[
    "NickServ keeps accounts: register one to keep your nick and log in from any client.",
    "  REGISTER <password> [email]    register your current nick as an account",
    "  IDENTIFY [account] <password>  log in (clients can also use SASL)",
    "  LOGOUT                         log out",
    "  INFO [account]                 show an account",
    "  SET PASSWORD <old> <new>       change your password",
    "  DROP <password>                delete your account",
    "  GHOST <nick> [password]        disconnect someone using a nick of yours",
    "  RECOVER <nick> [password]      disconnect them and take the nick",
    "  CERT LIST|ADD [fp]|DEL <fp>    client certificates that log in (SASL EXTERNAL)",
    "  HELP                           this text",
];

/// `/NICKSERV <command …>` and `/NS …`: the words are the text.
pub fn command(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    handle(ctx, &Service::text_of(msg))
}

/// One line of text sent to NickServ.
pub fn handle(ctx: &mut Ctx<'_>, text: &str) -> Flow {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return reply(ctx, "Tell me what to do: /msg NickServ HELP");
    };
    let verb = verb.to_ascii_uppercase();
    let carries_password = match verb.as_str() {
        "REGISTER" | "IDENTIFY" | "DROP" => true,
        "SET" => args.len() == 3,
        "GHOST" | "RECOVER" => args.len() == 2,
        _ => false,
    };
    if carries_password {
        if let Some(refusal) = super::plaintext::password_refusal(ctx) {
            return reply(ctx, &format!("Passwords are {refusal}"));
        }
    }
    match (verb.as_str(), args) {
        ("HELP", _) => SERVICE.send_help(ctx),
        ("CERT", args) if !args.is_empty() => cert::cert(ctx, args),
        ("REGISTER", [password]) => register(ctx, password, None),
        ("REGISTER", [password, email]) => register(ctx, password, Some(*email)),
        ("IDENTIFY", [password]) => {
            let nick = own_nick(ctx);
            identify(ctx, &nick, password)
        }
        ("IDENTIFY", [account, password]) => identify(ctx, account, password),
        ("LOGOUT", []) => {
            if account::logged_in(ctx).is_none() {
                return reply(ctx, "You are not logged in");
            }
            account::log_out(ctx.server, ctx.id());
            reply(ctx, "You are now logged out")
        }
        ("INFO", []) => match account::logged_in(ctx) {
            Some(account) => info(ctx, &account),
            None => {
                let nick = own_nick(ctx);
                info(ctx, &nick)
            }
        },
        ("INFO", [name]) => info(ctx, name),
        ("SET", [setting, current, new]) if setting.eq_ignore_ascii_case("PASSWORD") => {
            set_password(ctx, current, new)
        }
        ("DROP", [password]) => drop_account(ctx, password),
        ("GHOST", [nick]) => ghost(ctx, nick, None, false),
        ("GHOST", [nick, password]) => ghost(ctx, nick, Some(*password), false),
        ("RECOVER", [nick]) => ghost(ctx, nick, None, true),
        ("RECOVER", [nick, password]) => ghost(ctx, nick, Some(*password), true),
        (verb, _) => SERVICE.misused(ctx, verb),
    }
}

fn register(ctx: &mut Ctx<'_>, password: &str, email: Option<&str>) -> Flow {
    if account::logged_in(ctx).is_some() {
        return reply(ctx, "You are already logged in to an account");
    }
    if let Some(refusal) = account::registration_refusal(ctx) {
        return reply(ctx, refusal);
    }
    let nick = own_nick(ctx);
    let accounts = &ctx.server.accounts;
    let checked = accounts
        .check_name(&nick)
        .and_then(|()| accounts.check_email(email))
        .and_then(|()| accounts.check_password(password));
    if let Err(error) = checked {
        return reply(ctx, &error.to_string());
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let (email, password) = (email.map(str::to_owned), password.to_owned());
    Flow::Wait(Box::pin(async move {
        match server
            .accounts
            .register(&nick, email.as_deref(), &password)
            .await
        {
            Ok(account) => {
                notice(&server, id, &format!("Account {} registered", account.name));
                account::log_in(&server, id, &account);
            }
            Err(error) => notice(&server, id, &error.to_string()),
        }
        None
    }))
}

fn identify(ctx: &mut Ctx<'_>, name: &str, password: &str) -> Flow {
    if account::logged_in(ctx).is_some() {
        return reply(ctx, "You are already logged in to an account");
    }
    if !sasl::may_attempt(ctx.session) {
        return reply(ctx, TOO_MANY_FAILURES);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let (name, password) = (name.to_owned(), password.to_owned());
    Flow::Wait(Box::pin(async move {
        match server.accounts.log_in(&name, &password).await {
            Ok(account) => {
                metrics::login(Mechanism::NickServ, true);
                notice(
                    &server,
                    id,
                    &format!("You are now logged in as {}", account.name),
                );
                account::log_in(&server, id, &account);
                None
            }
            // Nothing was checked: the reason is told, no failure counted.
            Err(error @ (AccountError::Unavailable | AccountError::UnacceptablePassword(_))) => {
                notice(&server, id, &error.to_string());
                None
            }
            Err(error) => {
                metrics::login(Mechanism::NickServ, false);
                notice(&server, id, "Invalid account name or password");
                sasl::count_failure(&error)
            }
        }
    }))
}

fn info(ctx: &mut Ctx<'_>, name: &str) -> Flow {
    let (server, id) = (ctx.server.clone(), ctx.id());
    let me = account::logged_in(ctx).map(|account| server.fold(&account));
    let name = name.to_owned();
    Flow::Wait(Box::pin(async move {
        let folded = server.fold(&name);
        match server.accounts.store().account(&folded).await {
            Ok(Some(account)) => {
                notice(&server, id, &format!("Account: {}", account.name));
                notice(
                    &server,
                    id,
                    &format!("Registered: {}", http_date(account.created_at)),
                );
                notice(&server, id, &format!("Nicks: {}", account.nicks.join(" ")));
                if me.as_deref() == Some(folded.as_str()) {
                    let email = account.email.as_deref().unwrap_or("(none)");
                    notice(&server, id, &format!("Email: {email}"));
                }
            }
            Ok(None) => notice(&server, id, &format!("{name} is not registered")),
            Err(_) => notice(&server, id, &AccountError::Unavailable.to_string()),
        }
        None
    }))
}

/// `SET PASSWORD <old> <new>`: the current password too, so that a
/// client left logged in cannot be used to take the account over.
fn set_password(ctx: &mut Ctx<'_>, current: &str, new: &str) -> Flow {
    let Some(account) = account::logged_in(ctx) else {
        return reply(ctx, "Log in first: /msg NickServ IDENTIFY <password>");
    };
    if let Err(error) = ctx.server.accounts.check_password(new) {
        return reply(ctx, &error.to_string());
    }
    if !sasl::may_attempt(ctx.session) {
        return reply(ctx, TOO_MANY_FAILURES);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let (current, new) = (current.to_owned(), new.to_owned());
    Flow::Wait(Box::pin(async move {
        if let Err(error) = server.accounts.log_in(&account, &current).await {
            notice(&server, id, "Password incorrect");
            return sasl::count_failure(&error);
        }
        match server
            .accounts
            .change_password(&server.fold(&account), &new)
            .await
        {
            Ok(()) => notice(&server, id, "Password changed"),
            Err(error) => notice(&server, id, &error.to_string()),
        }
        None
    }))
}

/// `DROP <password>`: the password again, so that a client left logged in
/// cannot lose someone their account.
fn drop_account(ctx: &mut Ctx<'_>, password: &str) -> Flow {
    let Some(account) = account::logged_in(ctx) else {
        return reply(ctx, "Log in first: /msg NickServ IDENTIFY <password>");
    };
    if !sasl::may_attempt(ctx.session) {
        return reply(ctx, TOO_MANY_FAILURES);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let password = password.to_owned();
    Flow::Wait(Box::pin(async move {
        if let Err(error) = server.accounts.log_in(&account, &password).await {
            notice(&server, id, "Password incorrect");
            return sasl::count_failure(&error);
        }
        let folded = server.fold(&account);
        // Its direct messages still queued are deleted with it: not
        // while the database refuses them, or they would be written after.
        let written = server.world().history.written();
        if !written.wait().await {
            notice(&server, id, &AccountError::Unavailable.to_string());
            return None;
        }
        match server.accounts.store().delete_account(&folded).await {
            Ok(_) => {
                tracing::info!(account = %account, "account dropped");
                // Every connection logged in to it, not only this one: a
                // login left behind would count as the owner of a new
                // account registered under the same name.
                account::log_out_everywhere(&server, &folded);
                notice(&server, id, &format!("Account {account} dropped"));
            }
            Err(_) => notice(&server, id, &AccountError::Unavailable.to_string()),
        }
        None
    }))
}

/// GHOST disconnects whoever uses `nick`; RECOVER also gives the nick to
/// the caller. Allowed to the owner of the nick's account: logged in to
/// it, or giving its password.
fn ghost(ctx: &mut Ctx<'_>, nick: &str, password: Option<&str>, recover: bool) -> Flow {
    {
        let world = ctx.world();
        let me = world.clients.get(&ctx.id());
        if me.is_some_and(|me| ctx.server.fold(&me.nick) == ctx.server.fold(nick)) {
            drop(world);
            return reply(ctx, "That is you: /QUIT to leave");
        }
        if world.registered_by_nick(nick).is_none() {
            drop(world);
            return reply(ctx, &format!("Nobody is using {nick}"));
        }
    }
    if password.is_some() && !sasl::may_attempt(ctx.session) {
        return reply(ctx, TOO_MANY_FAILURES);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let login = account::login_of(ctx.server, ctx.id());
    let (nick, password) = (nick.to_owned(), password.map(str::to_owned));
    Flow::Wait(Box::pin(async move {
        let owner = match server
            .accounts
            .store()
            .account_owning_nick(&server.fold(&nick))
            .await
        {
            Ok(Some(owner)) => owner,
            Ok(None) => {
                notice(&server, id, &format!("{nick} is not registered"));
                return None;
            }
            Err(_) => {
                notice(&server, id, &AccountError::Unavailable.to_string());
                return None;
            }
        };
        let owns = match &login {
            Some(login) => account::is_login_of(&server, login, &owner).await,
            None => false,
        };
        let allowed = match (owns, &password) {
            (true, _) => Ok(()),
            (false, Some(password)) => server.accounts.log_in(&owner, password).await.map(drop),
            (false, None) => Err(AccountError::NoSuchAccount),
        };
        if let Err(error) = allowed {
            notice(&server, id, &format!("You may not ghost {nick}"));
            return password.and_then(|_| sasl::count_failure(&error));
        }
        take_nick(&server, id, &nick, recover);
        None
    }))
}

/// Disconnects the client using `nick` and, for RECOVER, renames the caller
/// to it, all under one lock so nobody can take the nick in between.
fn take_nick(server: &Arc<Server>, id: ClientId, nick: &str, recover: bool) {
    let mut world = server.world();
    let Some(ghost) = world.registered_by_nick(nick).map(|c| c.id) else {
        drop(world);
        notice(server, id, &format!("Nobody is using {nick}"));
        return;
    };
    let caller = world
        .clients
        .get(&id)
        .map(|c| c.nick.clone())
        .unwrap_or_default();
    if recover {
        // The ghost gives the nick up now; its connection ends shortly.
        let guest = world.free_guest_nick();
        let line = world.clients[&ghost].line("NICK").last(&guest);
        world.announce_nick_change(ghost, &line);
        world.set_nick(ghost, &guest);
        if let Some(me) = world.clients.get(&id) {
            let line = me.line("NICK").last(nick);
            world.announce_nick_change(id, &line);
            world.set_nick(id, nick);
        }
    }
    world.clients[&ghost]
        .outbox
        .request_disconnect(format!("Ghosted by {caller}"));
    drop(world);
    let done = if recover { "recovered" } else { "ghosted" };
    notice(server, id, &format!("{nick} has been {done}"));
}

fn own_nick(ctx: &Ctx<'_>) -> String {
    ctx.world()
        .clients
        .get(&ctx.id())
        .map(|c| c.nick.to_string())
        .unwrap_or_default()
}

fn reply(ctx: &Ctx<'_>, text: &str) -> Flow {
    SERVICE.reply(ctx, text)
}

fn notice(server: &Server, id: ClientId, text: &str) {
    SERVICE.notice(server, id, text);
}
