//! What a returning account missed. When a logged-in client's connection
//! ends, its account's last-seen time is stored; when the account logs in
//! again (`account::log_in` reads it with the account), joining a channel
//! replays the lines it has not seen (up to the replay count) instead of
//! the last day's.
//!
//! Direct messages cannot be missed: a message to someone offline is
//! refused (401), as on every IRC server without always-on clients.

use std::sync::Arc;

use crate::proto::tags;
use crate::server::Server;

/// Records that `account_folded`'s connection ended now.
pub fn remember_departure(server: &Arc<Server>, account_folded: String) {
    let store = server.accounts.store().clone();
    let now = tags::Stamp::now().time_ms;
    tokio::spawn(async move {
        if let Err(error) = store.set_last_seen(&account_folded, now).await {
            tracing::warn!(%error, account = %account_folded, "cannot store when the account left");
        }
    });
}

/// Whether `line` was sent by the nick `folded_nick`.
pub(super) fn is_own(line: &[u8], folded_nick: &str, server: &Server) -> bool {
    let body = match line.first() {
        Some(b'@') => memchr::memchr(b' ', line).map_or(line, |space| &line[space + 1..]),
        _ => line,
    };
    let Some(source) = body.strip_prefix(b":") else {
        return false;
    };
    let end = memchr::memchr2(b'!', b' ', source).unwrap_or(source.len());
    std::str::from_utf8(&source[..end]).is_ok_and(|nick| server.fold(nick) == folded_nick)
}
