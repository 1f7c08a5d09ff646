//! History rows: appending, range reads and pruning.

use super::temp_store;
use crate::store::{HistoryRecord, Kinds};

fn record(target: &str, msgid: u64, time_ms: u64, command: &'static str) -> HistoryRecord {
    HistoryRecord {
        target: target.to_owned(),
        msgid,
        time_ms,
        command,
        line: format!(":n!u@h {command} {target} :{msgid}"),
    }
}

#[tokio::test]
async fn ranges_exclude_their_bounds_and_come_oldest_first() {
    let (_dir, store) = temp_store().await;
    let rows: Vec<_> = (1..=5).map(|id| record("#c", id, id, "PRIVMSG")).collect();
    store.append_history(&rows).await.unwrap();
    // Appending the same rows again (a retried batch) changes nothing.
    store.append_history(&rows).await.unwrap();
    let ids =
        |rows: Vec<crate::store::StoredMessage>| rows.iter().map(|r| r.msgid).collect::<Vec<_>>();
    let newest = store
        .history_range("#c", 1, 5, 2, true, Kinds::Messages)
        .await
        .unwrap();
    assert_eq!(ids(newest), [3, 4]);
    let oldest = store
        .history_range("#c", 1, 5, 2, false, Kinds::Messages)
        .await
        .unwrap();
    assert_eq!(ids(oldest), [2, 3]);
    assert!(store.history_has("#c", 3).await.unwrap());
    assert!(!store.history_has("#other", 3).await.unwrap());
    assert_eq!(store.newest_msgid().await.unwrap(), Some(5));
}

#[tokio::test]
async fn events_are_read_only_when_asked_for() {
    let (_dir, store) = temp_store().await;
    let rows = [
        record("#c", 1, 1, "JOIN"),
        record("#c", 2, 2, "PRIVMSG"),
        record("#c", 3, 3, "TAGMSG"),
        record("#c", 4, 4, "NOTICE"),
    ];
    store.append_history(&rows).await.unwrap();
    let read = |kinds| store.history_range("#c", 0, u64::MAX, 10, true, kinds);
    let commands = |rows: Vec<crate::store::StoredMessage>| {
        rows.into_iter().map(|r| r.command).collect::<Vec<_>>()
    };
    assert_eq!(
        commands(read(Kinds::Messages).await.unwrap()),
        ["PRIVMSG", "NOTICE"]
    );
    assert_eq!(
        commands(read(Kinds::Everything).await.unwrap()),
        ["JOIN", "PRIVMSG", "TAGMSG", "NOTICE"]
    );
}

#[tokio::test]
async fn pruning_keeps_the_newest_lines_within_age_and_count() {
    let (_dir, store) = temp_store().await;
    let mut rows: Vec<_> = (1..=10)
        .map(|id| record("#busy", id, 100 + id, "PRIVMSG"))
        .collect();
    rows.push(record("#quiet", 11, 5, "PRIVMSG"));
    rows.push(record("#quiet", 12, 200, "PRIVMSG"));
    store.append_history(&rows).await.unwrap();
    // #quiet's line at time 5 is too old; #busy keeps its newest 3.
    assert_eq!(store.prune_history(Some(50), Some(3)).await.unwrap(), 1 + 7);
    let busy = store
        .history_range("#busy", 0, u64::MAX, 100, false, Kinds::Messages)
        .await
        .unwrap();
    assert_eq!(busy.iter().map(|r| r.msgid).collect::<Vec<_>>(), [8, 9, 10]);
    let quiet = store
        .history_range("#quiet", 0, u64::MAX, 100, false, Kinds::Messages)
        .await
        .unwrap();
    assert_eq!(quiet.len(), 1);
    assert_eq!(store.channels_active_since(150).await.unwrap(), ["#quiet"]);
    assert_eq!(store.prune_history(None, None).await.unwrap(), 0);
}
