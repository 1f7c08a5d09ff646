//! Accounts on the wire: the logged-in state (900/901 and `ACCOUNT` for
//! account-notify) and `REGISTER` (IRCv3 draft/account-registration).

use std::sync::Arc;

use super::{nick_claims, Ctx, Flow};
use crate::accounts::AccountError;
use crate::config::Registration;
use crate::proto::numeric::Response;
use crate::proto::{LineBuilder, Message};
use crate::server::caps::Cap;
use crate::server::host::address_host;
use crate::server::restore;
use crate::server::world::{Client, ClientId, LoggedIn};
use crate::server::Server;
use crate::store::Account;

/// The account the client is logged in to.
pub fn logged_in(ctx: &Ctx<'_>) -> Option<String> {
    ctx.world()
        .clients
        .get(&ctx.id())?
        .account()
        .map(str::to_owned)
}

/// Who a client is logged in as: the account's folded name and uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub folded: String,
    pub uid: i64,
}

pub fn login_of(server: &Server, id: ClientId) -> Option<Login> {
    let world = server.world();
    let me = world.clients.get(&id)?;
    let login = me.login.as_deref()?;
    Some(Login {
        folded: server.fold(&login.name),
        uid: login.uid,
    })
}

/// Whether `login` is a login to the account `owner` (folded) as it is
/// now, not to an earlier account of that name.
pub async fn is_login_of(server: &Server, login: &Login, owner: &str) -> bool {
    if login.folded != owner {
        return false;
    }
    matches!(
        server.accounts.store().account(owner).await,
        Ok(Some(account)) if account.uid == login.uid
    )
}

/// Forgets the dropped account `folded`: logs out every client logged in
/// to it, lifts the claims made for it, and unregisters its channels.
pub fn log_out_everywhere(server: &Arc<Server>, folded: &str) {
    let ids: Vec<ClientId> = {
        let mut world = server.world();
        world.nick_claims.retain(|_, claims| {
            claims.retain(|claim| claim.owner != folded);
            !claims.is_empty()
        });
        // The store dropped its channels and access entries with it.
        world
            .registered_channels
            .retain(|_, channel| channel.founder != folded);
        for channel in world.registered_channels.values_mut() {
            channel.access.retain(|(account, _)| account != folded);
        }
        world
            .clients
            .values()
            .filter(|c| c.account().is_some_and(|a| server.fold(a) == folded))
            .map(|c| c.id)
            .collect()
    };
    for id in ids {
        log_out(server, id);
    }
}

/// Logs client `id` in to `account`: `900`, and `ACCOUNT` to those who
/// share a channel with it and asked for account-notify. `false` if the
/// client is gone.
pub fn log_in(server: &Arc<Server>, id: ClientId, account: &Account) -> bool {
    let mut world = server.world();
    let Some(me) = world.clients.get_mut(&id) else {
        return false;
    };
    let before = me.login.replace(Box::new(LoggedIn {
        name: account.name.as_str().into(),
        uid: account.uid,
        // Join replay shows a returning account only what it has not seen.
        last_seen_ms: account.last_seen_ms,
    }));
    if let Some(before) = before {
        world.uncount_login(&server.fold(&before.name));
    }
    world.count_login(server.fold(&account.name));
    tracing::info!(client = id, account = %account.name, "logged in");
    let login_host = &server.config().accounts.login_host;
    if !login_host.is_empty() {
        world.change_host(
            &server.name,
            id,
            login_host.replace("{account}", &account.name),
        );
    }
    nick_claims::release(&mut world, id, &server.fold(&account.name));
    // Channels remember members by account from now on.
    world.member_changed(id);
    restore::give_back_on_login(&mut world, &server.name, id);
    let me = &world.clients[&id];
    me.send(
        &LineBuilder::numeric(&server.name, Response::RPL_LOGGEDIN, &me.nick)
            .param(&source_of(me))
            .param(&account.name)
            .trailing(&format!("You are now logged in as {}", account.name)),
    );
    let registered = me.registered;
    if registered {
        let line = me.line("ACCOUNT").last(&account.name);
        world.send_to_peers_with(id, &line, Cap::AccountNotify, true);
        drop(world);
        // Logged in during registration, it is shown them after the MOTD.
        super::missed::replay_direct(server, id);
    }
    true
}

/// Logs client `id` out: `901`, and `ACCOUNT *` for account-notify.
pub fn log_out(server: &Arc<Server>, id: ClientId) {
    end_login(server, id);
    // Their nick may be the account's: they must log in again to keep it.
    nick_claims::check(server, id);
}

fn end_login(server: &Arc<Server>, id: ClientId) {
    let mut world = server.world();
    let Some(me) = world.clients.get_mut(&id) else {
        return;
    };
    let Some(login) = me.login.take() else {
        return;
    };
    let address = address_host(me.ip);
    world.uncount_login(&server.fold(&login.name));
    world.member_changed(id);
    world.change_host(&server.name, id, address);
    let me = &world.clients[&id];
    me.send(
        &LineBuilder::numeric(&server.name, Response::RPL_LOGGEDOUT, &me.nick)
            .param(&source_of(me))
            .trailing("You are now logged out"),
    );
    if me.registered {
        let line = LineBuilder::new(Some(me.mask()), "ACCOUNT").last("*");
        world.send_to_peers_with(id, &line, Cap::AccountNotify, true);
    }
}

/// `nick!user@host`, or `nick!*@*` for a client that has not sent USER.
fn source_of(me: &Client) -> String {
    if me.user().is_empty() {
        format!("{}!*@*", me.nick)
    } else {
        me.mask().to_string()
    }
}

/// `REGISTER <account> <email|*> <password>`: registers an account and
/// logs the client in to it. `*` as the account means the current nick or,
/// while the client has none because its NICK was refused, the nick that
/// NICK asked for.
pub fn register(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let (requested, email, password) = (msg.params[0], msg.params[1], msg.params[2]);
    let nick = {
        let world = ctx.world();
        match world.clients.get(&ctx.id()) {
            Some(me) => me.nick.clone(),
            None => return Flow::Continue,
        }
    };
    let rules = &ctx.server.config().accounts;
    if !ctx.session.registered && !rules.register_before_connect {
        ctx.send(
            &LineBuilder::new(Some(&ctx.server.name), "FAIL")
                .param("REGISTER")
                .param("COMPLETE_CONNECTION_REQUIRED")
                .trailing("Complete the connection before registering an account"),
        );
        return Flow::Continue;
    }
    if let Some(refusal) = super::plaintext::password_refusal(ctx) {
        return register_fail(
            ctx,
            "UNACCEPTABLE_PASSWORD",
            requested,
            &format!("Passwords are {refusal}"),
        );
    }
    let has_nick = &*nick != "*";
    // A client without a nick that sent NICK (refused) has asked for an
    // account all the same: it is answered about it.
    if !has_nick && ctx.session.refused_nick().is_none() {
        return register_fail(
            ctx,
            "NEED_NICK",
            "*",
            "You must choose a nickname before registering",
        );
    }
    let name = match requested {
        "*" if has_nick => nick.to_string(),
        "*" => ctx.session.refused_nick().unwrap_or("*").to_owned(),
        name => name.to_owned(),
    };
    if logged_in(ctx).is_some() {
        return register_fail(
            ctx,
            "ALREADY_AUTHENTICATED",
            &name,
            "You are already logged in to an account",
        );
    }
    if ctx.server.fold(&name) != ctx.server.fold(&nick) {
        return not_the_nick(ctx, name);
    }
    if let Some(refusal) = registration_refusal(ctx) {
        return register_fail(ctx, "TEMPORARILY_UNAVAILABLE", &name, refusal);
    }
    let email = (email != "*").then_some(email);
    let accounts = &ctx.server.accounts;
    let checked = accounts
        .check_name(&name)
        .and_then(|()| accounts.check_email(email))
        .and_then(|()| accounts.check_password(password));
    if let Err(error) = checked {
        return register_failed(ctx, &name, &error);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let (email, password) = (email.map(str::to_owned), password.to_owned());
    Flow::Wait(Box::pin(async move {
        let registered = server
            .accounts
            .register(&name, email.as_deref(), &password)
            .await;
        match registered {
            Ok(account) => {
                // SUCCESS first, then 900, as the specification's VERIFY
                // example and other servers order them.
                send_to(
                    &server,
                    id,
                    &LineBuilder::new(Some(&server.name), "REGISTER")
                        .param("SUCCESS")
                        .param(&account.name)
                        .trailing("Account successfully registered"),
                );
                log_in(&server, id, &account);
                None
            }
            Err(error) => {
                let line = fail_line(&server, &name, &error);
                send_to(&server, id, &line);
                None
            }
        }
    }))
}

/// `REGISTER` of an account other than the client's nick (or with no nick
/// at all): the answer is about that account. A name that cannot be an
/// account is `BAD_ACCOUNT_NAME`, a registered one `ACCOUNT_EXISTS`; any
/// other would have to be the client's nick first.
fn not_the_nick(ctx: &Ctx<'_>, name: String) -> Flow {
    if let Err(error) = ctx.server.accounts.check_name(&name) {
        return register_failed(ctx, &name, &error);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    Flow::Wait(Box::pin(async move {
        let line = match server.accounts.store().account(&server.fold(&name)).await {
            Ok(Some(account)) => fail_line(&server, &name, &AccountError::Exists(account.name)),
            Ok(None) => fail(
                &server,
                "ACCOUNT_NAME_MUST_BE_NICK",
                &name,
                "Your account name must be your current nickname",
            ),
            Err(error) => {
                tracing::error!(%error, "account store failed");
                fail_line(&server, &name, &AccountError::Unavailable)
            }
        };
        send_to(&server, id, &line);
        None
    }))
}

/// Why this client may not register at all, if it may not.
pub fn registration_refusal(ctx: &Ctx<'_>) -> Option<&'static str> {
    match ctx.server.config().accounts.registration {
        Registration::Open => None,
        Registration::Closed => Some("Account registration is disabled on this server"),
        Registration::Opers => {
            let is_oper = ctx
                .world()
                .clients
                .get(&ctx.id())
                .is_some_and(|me| me.modes.oper);
            (!is_oper).then_some("Only server operators may register accounts on this server")
        }
    }
}

fn register_failed(ctx: &Ctx<'_>, name: &str, error: &AccountError) -> Flow {
    ctx.send(&fail_line(ctx.server, name, error));
    Flow::Continue
}

fn register_fail(ctx: &Ctx<'_>, code: &str, name: &str, text: &str) -> Flow {
    ctx.send(&fail(ctx.server, code, name, text));
    Flow::Continue
}

/// The `FAIL REGISTER` line for `error`.
fn fail_line(server: &Server, name: &str, error: &AccountError) -> bytes::Bytes {
    let code = match error {
        AccountError::Exists(_) => "ACCOUNT_EXISTS",
        AccountError::BadName(_) => "BAD_ACCOUNT_NAME",
        AccountError::WeakPassword(_) => "WEAK_PASSWORD",
        AccountError::UnacceptablePassword(_) => "UNACCEPTABLE_PASSWORD",
        AccountError::BadEmail(_) => "INVALID_EMAIL",
        AccountError::NoSuchAccount | AccountError::Unavailable => "TEMPORARILY_UNAVAILABLE",
    };
    fail(server, code, name, &error.to_string())
}

fn fail(server: &Server, code: &str, name: &str, text: &str) -> bytes::Bytes {
    LineBuilder::new(Some(&server.name), "FAIL")
        .param("REGISTER")
        .param(code)
        .param(name)
        .trailing(text)
}

fn send_to(server: &Server, id: ClientId, line: &bytes::Bytes) {
    if let Some(me) = server.world().clients.get(&id) {
        me.send(line);
    }
}
