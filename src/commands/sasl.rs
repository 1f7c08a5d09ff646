//! SASL authentication (IRCv3 sasl-3.1 and 3.2): `AUTHENTICATE` with the
//! EXTERNAL (a TLS client certificate), PLAIN and SCRAM-SHA-256
//! mechanisms, before or after registration.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{account, Ctx, Flow, Session, SessionUpdate};
use crate::accounts::{AccountError, MAX_PASSWORD_BYTES};
use crate::metrics::{self, Mechanism};
use crate::proto::numeric::Response;
use crate::proto::LineBuilder;
use crate::proto::Message;
use crate::scram::{self, ServerFirstSent};
use crate::server::outbox::Outbox;
use crate::server::world::ClientId;
use crate::server::Server;
use crate::store::Account;

/// The mechanisms offered, as `CAP LS 302` and `908` list them.
pub const MECHANISMS: &str = "EXTERNAL,PLAIN,SCRAM-SHA-256";
/// An `AUTHENTICATE` parameter carries at most this much base64; a full one
/// means more follows.
const CHUNK: usize = 400;
/// Base64 accepted for one message of an exchange: room for a PLAIN
/// message with the longest password, and a bound on what a client can
/// make the server buffer.
const MAX_MESSAGE: usize = 4 * CHUNK;
/// The longest account name (`accounts.name_length` is at most 64).
const MAX_NAME_BYTES: usize = 64;
// `authzid NUL authcid NUL password`, all of the longest, fits.
const _: () = assert!(MAX_MESSAGE >= (2 * MAX_NAME_BYTES + 2 + MAX_PASSWORD_BYTES).div_ceil(3) * 4);
/// Failed logins one connection may make; later attempts fail unchecked,
/// so one connection cannot guess passwords at Argon2's speed.
pub const MAX_LOGIN_FAILURES: u8 = 5;

/// Where an exchange stands, and the base64 received for its next message.
pub struct Exchange {
    step: Step,
    received: String,
}

enum Step {
    /// EXTERNAL: waiting for the authzid (empty: the certificate's account).
    External,
    /// PLAIN: waiting for `authzid NUL authcid NUL password`.
    Plain,
    /// SCRAM: waiting for the client-first-message.
    ScramFirst,
    /// SCRAM: server-first sent, waiting for the client-final-message. The
    /// account is `None` for a name that cannot log in (no proof matches).
    ScramFinal(ServerFirstSent, Option<Account>),
    /// SCRAM: server-final sent, waiting for the client's empty reply.
    ScramDone(Account),
}

pub fn authenticate(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> Flow {
    let data = msg.params[0];
    if account::logged_in(ctx).is_some() {
        ctx.session.sasl = None;
        ctx.reply(Response::ERR_SASLALREADY, |b| {
            b.trailing("You have already authenticated using SASL")
        });
        return Flow::Continue;
    }
    if data == "*" {
        ctx.session.sasl = None;
        ctx.reply(Response::ERR_SASLABORT, |b| {
            b.trailing("SASL authentication aborted")
        });
        return Flow::Continue;
    }
    let Some(exchange) = ctx.session.sasl.as_mut() else {
        return start(ctx, data);
    };
    if data.len() > CHUNK {
        return too_long(ctx, &format!("at most {CHUNK} bytes per AUTHENTICATE"));
    }
    if data != "+" {
        exchange.received.push_str(data);
    }
    if exchange.received.len() > MAX_MESSAGE {
        return too_long(
            ctx,
            &format!("at most {MAX_MESSAGE} bytes of base64 in all"),
        );
    }
    if data.len() == CHUNK {
        // A full chunk: the message goes on in the next one.
        return Flow::Continue;
    }
    let Some(mut exchange) = ctx.session.sasl.take() else {
        return Flow::Continue;
    };
    let Ok(message) = BASE64.decode(std::mem::take(&mut exchange.received)) else {
        return fail(ctx);
    };
    match exchange.step {
        Step::External => external(ctx, &message),
        Step::Plain => plain(ctx, &message),
        Step::ScramFirst => scram_first(ctx, &message),
        Step::ScramFinal(sent, account) => scram_final(ctx, sent, account, &message),
        Step::ScramDone(account) if message.is_empty() => {
            metrics::login(Mechanism::ScramSha256, true);
            log_in(ctx.server, ctx.id(), &account);
            Flow::Continue
        }
        Step::ScramDone(_) => fail(ctx),
    }
}

/// `AUTHENTICATE <mechanism>`.
fn start(ctx: &mut Ctx<'_>, mechanism: &str) -> Flow {
    let step = if mechanism.eq_ignore_ascii_case("PLAIN") {
        if let Some(refusal) = super::plaintext::password_refusal(ctx) {
            // Before the password is sent, so that it never crosses the
            // network in the clear.
            let text = format!("SASL authentication failed: PLAIN {refusal}");
            ctx.reply(Response::ERR_SASLFAIL, |b| b.trailing(&text));
            return Flow::Continue;
        }
        Step::Plain
    } else if mechanism.eq_ignore_ascii_case("EXTERNAL") {
        if ctx.session.outbox.wire().certfp().is_none() {
            ctx.reply(Response::ERR_SASLFAIL, |b| {
                b.trailing("SASL authentication failed: EXTERNAL needs a TLS client certificate")
            });
            return Flow::Continue;
        }
        Step::External
    } else if mechanism.eq_ignore_ascii_case("SCRAM-SHA-256") {
        Step::ScramFirst
    } else {
        ctx.reply(Response::RPL_SASLMECHS, |b| {
            b.param(MECHANISMS)
                .trailing("are available SASL mechanisms")
        });
        return fail(ctx);
    };
    ctx.session.sasl = Some(Box::new(Exchange {
        step,
        received: String::new(),
    }));
    send_authenticate(&ctx.session.outbox, b"");
    Flow::Continue
}

/// The fields of a PLAIN message (RFC 4616), `authzid NUL authcid NUL
/// password`, each UTF-8; `None` for anything else.
pub fn plain_fields(message: &[u8]) -> Option<(&str, &str, &str)> {
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    Some((
        std::str::from_utf8(authzid).ok()?,
        std::str::from_utf8(authcid).ok()?,
        std::str::from_utf8(password).ok()?,
    ))
}

fn plain(ctx: &mut Ctx<'_>, message: &[u8]) -> Flow {
    let Some((authzid, authcid, password)) = plain_fields(message) else {
        return fail(ctx);
    };
    // Logging in as someone else (an authzid that is not the authcid)
    // would need privileges nobody has here.
    if !authzid.is_empty() && ctx.server.fold(authzid) != ctx.server.fold(authcid) {
        return fail(ctx);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        // No account has such a password: refused unchecked, and said why.
        ctx.session.sasl = None;
        let text = format!(
            "SASL authentication failed: passwords are at most {MAX_PASSWORD_BYTES} bytes long"
        );
        ctx.reply(Response::ERR_SASLFAIL, |b| b.trailing(&text));
        return Flow::Continue;
    }
    if !may_attempt(ctx.session) {
        return fail(ctx);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let (authcid, password) = (authcid.to_owned(), password.to_owned());
    Flow::Wait(Box::pin(async move {
        match server.accounts.log_in(&authcid, &password).await {
            Ok(account) => {
                metrics::login(Mechanism::Plain, true);
                log_in(&server, id, &account);
                None
            }
            Err(error) => {
                // Counted only when a password was checked.
                if !matches!(
                    error,
                    AccountError::Unavailable | AccountError::UnacceptablePassword(_)
                ) {
                    metrics::login(Mechanism::Plain, false);
                }
                sasl_failed(&server, id);
                count_failure(&error)
            }
        }
    }))
}

/// EXTERNAL: the account the connection's certificate is registered to
/// (NickServ CERT), if the authzid is empty or names it.
fn external(ctx: &mut Ctx<'_>, authzid: &[u8]) -> Flow {
    let Some(certfp) = ctx.session.outbox.wire().certfp().map(str::to_owned) else {
        return fail(ctx);
    };
    let Ok(authzid) = std::str::from_utf8(authzid) else {
        return fail(ctx);
    };
    let wanted = (!authzid.is_empty()).then(|| ctx.server.fold(authzid));
    let (server, id) = (ctx.server.clone(), ctx.id());
    Flow::Wait(Box::pin(async move {
        let store = server.accounts.store();
        let account = match store.account_of_certificate(&certfp).await {
            Ok(Some(folded)) if wanted.as_ref().is_none_or(|w| *w == folded) => {
                store.account(&folded).await.ok().flatten()
            }
            _ => None,
        };
        metrics::login(Mechanism::External, account.is_some());
        match account {
            Some(account) => log_in(&server, id, &account),
            None => sasl_failed(&server, id),
        }
        None
    }))
}

fn scram_first(ctx: &mut Ctx<'_>, message: &[u8]) -> Flow {
    let Ok(client_first) = scram::parse_client_first(message) else {
        return fail(ctx);
    };
    if client_first
        .authzid()
        .is_some_and(|authzid| ctx.server.fold(authzid) != ctx.server.fold(client_first.username()))
    {
        return fail(ctx);
    }
    if !may_attempt(ctx.session) {
        return fail(ctx);
    }
    let (server, id) = (ctx.server.clone(), ctx.id());
    let outbox = ctx.session.outbox.clone();
    Flow::Wait(Box::pin(async move {
        let username = client_first.username().to_owned();
        let Ok((account, credentials)) = server.accounts.scram_credentials(&username).await else {
            sasl_failed(&server, id);
            return None;
        };
        let (server_first, sent) =
            scram::server_first(client_first, &credentials, &scram::random_nonce());
        send_authenticate(&outbox, server_first.as_bytes());
        let update: SessionUpdate = Box::new(move |session: &mut Session| {
            session.sasl = Some(Box::new(Exchange {
                step: Step::ScramFinal(sent, account),
                received: String::new(),
            }));
        });
        Some(update)
    }))
}

fn scram_final(
    ctx: &mut Ctx<'_>,
    sent: ServerFirstSent,
    account: Option<Account>,
    message: &[u8],
) -> Flow {
    match (sent.verify_client_final(message), account) {
        (Ok(server_final), Some(account)) => {
            send_authenticate(&ctx.session.outbox, server_final.as_bytes());
            ctx.session.sasl = Some(Box::new(Exchange {
                step: Step::ScramDone(account),
                received: String::new(),
            }));
            Flow::Continue
        }
        _ => {
            metrics::login(Mechanism::ScramSha256, false);
            ctx.session.login_failures += 1;
            fail(ctx)
        }
    }
}

/// Whether the connection may still try a password: a connection that
/// failed [`MAX_LOGIN_FAILURES`] times may not, whatever it did since (a
/// success in between must not reset the count, or logging in to one's
/// own account between guesses would make them unlimited).
pub fn may_attempt(session: &Session) -> bool {
    session.login_failures < MAX_LOGIN_FAILURES
}

/// The session update that counts a failed login, unless no password was
/// checked: the failure was the server's (the store was unavailable), or
/// the password was one no account can have (too long).
pub fn count_failure(error: &AccountError) -> Option<SessionUpdate> {
    match error {
        AccountError::Unavailable | AccountError::UnacceptablePassword(_) => None,
        _ => Some(Box::new(|session: &mut Session| {
            session.login_failures = session.login_failures.saturating_add(1);
        })),
    }
}

/// `905`, naming the limit passed, and the exchange ends.
fn too_long(ctx: &mut Ctx<'_>, limit: &str) -> Flow {
    ctx.session.sasl = None;
    let text = format!("SASL message too long: {limit}");
    ctx.reply(Response::ERR_SASLTOOLONG, |b| b.trailing(&text));
    Flow::Continue
}

fn fail(ctx: &mut Ctx<'_>) -> Flow {
    ctx.session.sasl = None;
    sasl_failed(ctx.server, ctx.id());
    Flow::Continue
}

fn sasl_failed(server: &Server, id: ClientId) {
    let world = server.world();
    if let Some(me) = world.clients.get(&id) {
        me.send(
            &LineBuilder::numeric(&server.name, Response::ERR_SASLFAIL, &me.nick)
                .trailing("SASL authentication failed"),
        );
    }
}

/// Logs the client in (900) and ends the exchange successfully (903).
fn log_in(server: &Arc<Server>, id: ClientId, account: &Account) {
    if account::log_in(server, id, account) {
        let world = server.world();
        if let Some(me) = world.clients.get(&id) {
            me.send(
                &LineBuilder::numeric(&server.name, Response::RPL_SASLSUCCESS, &me.nick)
                    .trailing("SASL authentication successful"),
            );
        }
    }
}

/// Sends `data` as `AUTHENTICATE` lines of at most 400 base64 characters;
/// a message that fills its last line exactly (or is empty) ends with
/// `AUTHENTICATE +`.
fn send_authenticate(outbox: &Outbox, data: &[u8]) {
    let encoded = BASE64.encode(data);
    for chunk in encoded.as_bytes().chunks(CHUNK) {
        // Base64 is ASCII, so any byte boundary is a char boundary.
        let chunk = std::str::from_utf8(chunk).unwrap_or("+");
        outbox.send(&LineBuilder::new(None, "AUTHENTICATE").last(chunk));
    }
    if encoded.len() % CHUNK == 0 {
        outbox.send(&LineBuilder::new(None, "AUTHENTICATE").last("+"));
    }
}
