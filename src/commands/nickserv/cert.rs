//! `NickServ CERT ADD|DEL|LIST`: the client certificates (by fingerprint)
//! that log in to the account with SASL EXTERNAL.

use super::{notice, reply};
use crate::commands::{account, Ctx, Flow};
use crate::store::{CertAdded, MAX_CERTS_PER_ACCOUNT};

/// `CERT <subcommand> [fingerprint]`.
pub fn cert(ctx: &mut Ctx<'_>, args: &[&str]) -> Flow {
    let Some(account) = account::logged_in(ctx) else {
        return reply(
            ctx,
            "Log in first: CERT manages your account's certificates",
        );
    };
    let folded = ctx.server.fold(&account);
    let own = ctx.session.outbox.wire().certfp().map(str::to_owned);
    let subcommand = args.first().map(|s| s.to_ascii_uppercase());
    let named = match args.get(1) {
        Some(text) => match normalize(text) {
            Some(fingerprint) => Some(fingerprint),
            None => {
                return reply(
                    ctx,
                    "A fingerprint is the SHA-256 of the certificate: 64 hex digits",
                )
            }
        },
        None => None,
    };
    let (server, id) = (ctx.server.clone(), ctx.id());
    match (subcommand.as_deref(), args.len()) {
        (Some("LIST"), 1) => Flow::Wait(Box::pin(async move {
            match server.accounts.store().certificates(&folded).await {
                Ok(list) if list.is_empty() => {
                    notice(&server, id, &format!("{account} has no certificates"));
                }
                Ok(list) => {
                    notice(&server, id, &format!("Certificates of {account}:"));
                    for fingerprint in list {
                        notice(&server, id, &format!("  {fingerprint}"));
                    }
                }
                Err(_) => notice(&server, id, "The account store is unavailable; try again"),
            }
            None
        })),
        (Some("ADD"), 1 | 2) => {
            let Some(fingerprint) = named.or(own) else {
                return reply(
                    ctx,
                    "This connection shows no client certificate: connect over TLS with one, or name a fingerprint",
                );
            };
            Flow::Wait(Box::pin(async move {
                let now = crate::server::unix_now() as i64;
                let added = server
                    .accounts
                    .store()
                    .add_certificate(&folded, &fingerprint, now)
                    .await;
                let text = match added {
                    Ok(Some(CertAdded::Added)) => {
                        format!("Certificate {fingerprint} added to {account}: it logs in with SASL EXTERNAL")
                    }
                    Ok(Some(CertAdded::AlreadyYours)) => {
                        format!("{account} already has certificate {fingerprint}")
                    }
                    Ok(Some(CertAdded::Taken)) => {
                        format!("Certificate {fingerprint} belongs to another account")
                    }
                    Ok(None) => format!(
                        "{account} has {MAX_CERTS_PER_ACCOUNT} certificates already; remove one first"
                    ),
                    Err(_) => "The account store is unavailable; try again".to_owned(),
                };
                notice(&server, id, &text);
                None
            }))
        }
        (Some("DEL"), 2) => {
            let Some(fingerprint) = named else {
                return Flow::Continue;
            };
            Flow::Wait(Box::pin(async move {
                let removed = server
                    .accounts
                    .store()
                    .remove_certificate(&folded, &fingerprint)
                    .await;
                let text = match removed {
                    Ok(true) => format!("Certificate {fingerprint} removed from {account}"),
                    Ok(false) => format!("{account} has no certificate {fingerprint}"),
                    Err(_) => "The account store is unavailable; try again".to_owned(),
                };
                notice(&server, id, &text);
                None
            }))
        }
        _ => reply(
            ctx,
            "Usage: CERT LIST | CERT ADD [fingerprint] | CERT DEL <fingerprint>",
        ),
    }
}

/// A fingerprint as stored: 64 lowercase hex digits. Colons and upper
/// case, as other tools print fingerprints, are accepted.
fn normalize(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}
