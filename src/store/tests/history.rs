//! History rows: appending, range reads and pruning.

use super::temp_store;
use crate::proto::tags::{self, MessageId};
use crate::store::{HistoryRecord, Kinds};

/// A record whose id is `msgid` (so its time is `msgid >> 16` ms).
fn record(target: &str, msgid: u64, command: &'static str) -> HistoryRecord {
    HistoryRecord {
        target: target.to_owned(),
        msgid,
        command,
        line: format!(":n!u@h {command} {target} :{msgid}"),
    }
}

/// An id at `time_ms`.
fn at(time_ms: u64) -> u64 {
    time_ms << 16
}

#[tokio::test]
async fn lines_are_stored_without_their_stamp_and_read_back_with_it() {
    let (_dir, store) = temp_store().await;
    let id = MessageId(at(1_700_000_000_123) + 7);
    let time = String::from_utf8(tags::format_time(1_700_000_000_123).to_vec()).unwrap();
    let msgid = String::from_utf8(id.encode().to_vec()).unwrap();
    let lines = [
        format!("@time={time};msgid={msgid} :n!u@h PRIVMSG #c :plain"),
        format!("@time={time};msgid={msgid};account=acc;+x=1 :n!u@h PRIVMSG #c :tagged"),
        ":n!u@h PRIVMSG #c :never stamped".to_owned(),
    ];
    for (index, line) in lines.iter().enumerate() {
        let target = format!("#c{index}");
        let record = HistoryRecord {
            target: target.clone(),
            msgid: id.0,
            command: "PRIVMSG",
            line: line.clone(),
        };
        store.append_history(&[record]).await.unwrap();
        let stored: String = sqlx::query_scalar("SELECT line FROM history WHERE target = ?")
            .bind(&target)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(
            !stored.contains(&msgid),
            "stored without the stamp: {stored}"
        );
        let read = store
            .history_range(&target, 0, u64::MAX, 1, true, Kinds::Messages)
            .await
            .unwrap();
        let expected = if index == 2 {
            format!("@time={time};msgid={msgid} {line}")
        } else {
            line.clone()
        };
        assert_eq!(read[0].line, expected);
        assert_eq!(read[0].time_ms, 1_700_000_000_123);
    }
}

#[tokio::test]
async fn ranges_exclude_their_bounds_and_come_oldest_first() {
    let (_dir, store) = temp_store().await;
    let rows: Vec<_> = (1..=5).map(|id| record("#c", id, "PRIVMSG")).collect();
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
        record("#c", 1, "JOIN"),
        record("#c", 2, "PRIVMSG"),
        record("#c", 3, "TAGMSG"),
        record("#c", 4, "NOTICE"),
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
        .map(|n| record("#busy", at(100 + n), "PRIVMSG"))
        .collect();
    rows.push(record("#quiet", at(5), "PRIVMSG"));
    rows.push(record("#quiet", at(200), "PRIVMSG"));
    store.append_history(&rows).await.unwrap();
    // #quiet's line at time 5 is too old; #busy keeps its newest 3.
    assert_eq!(store.prune_history(Some(50), Some(3)).await.unwrap(), 1 + 7);
    let busy = store
        .history_range("#busy", 0, u64::MAX, 100, false, Kinds::Messages)
        .await
        .unwrap();
    assert_eq!(
        busy.iter().map(|r| r.time_ms).collect::<Vec<_>>(),
        [108, 109, 110]
    );
    let quiet = store
        .history_range("#quiet", 0, u64::MAX, 100, false, Kinds::Messages)
        .await
        .unwrap();
    assert_eq!(quiet.len(), 1);
    assert_eq!(store.channels_active_since(150).await.unwrap(), ["#quiet"]);
    assert_eq!(store.prune_history(None, None).await.unwrap(), 0);
}

#[tokio::test]
async fn each_side_finds_its_own_conversations_only() {
    let (_dir, store) = temp_store().await;
    store
        .append_history(&[
            record("dm:alice bob", at(10), "PRIVMSG"),
            record("dm:alice bob", at(30), "NOTICE"),
            record("dm:~carol alice", at(20), "PRIVMSG"),
            record("dm:bob dave", at(40), "PRIVMSG"),
            record("dm:bob dave", at(50), "TAGMSG"),
        ])
        .await
        .unwrap();
    let mut alice = store.direct_targets_of("alice", 0, u64::MAX).await.unwrap();
    alice.sort();
    assert_eq!(
        alice,
        [
            ("dm:alice bob".to_owned(), 30),
            ("dm:~carol alice".to_owned(), 20)
        ]
    );
    // Only messages count, and only inside the range.
    assert_eq!(
        store.direct_targets_of("dave", 0, u64::MAX).await.unwrap(),
        [("dm:bob dave".to_owned(), 40)]
    );
    assert_eq!(
        store
            .direct_targets_of("alice", at(25), u64::MAX)
            .await
            .unwrap(),
        [("dm:alice bob".to_owned(), 30)]
    );
    assert!(store
        .direct_targets_of("erin", 0, u64::MAX)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn targets_are_listed_by_their_latest_message_only() {
    let (_dir, store) = temp_store().await;
    store
        .append_history(&[
            record("#a", at(10), "PRIVMSG"),
            record("#a", at(30), "NOTICE"),
            record("#b", at(20), "PRIVMSG"),
            record("#c", at(40), "PRIVMSG"),
            record("#c", at(50), "TAGMSG"),
            record("dm:alice bob", at(10), "PRIVMSG"),
            record("dm:alice bob", at(30), "PRIVMSG"),
            record("dm:~carol alice", at(20), "PRIVMSG"),
        ])
        .await
        .unwrap();
    let channels = ["#a", "#b", "#c"].map(str::to_owned);
    let targets = |after, before| {
        let store = &store;
        let channels = &channels;
        async move {
            store
                .history_targets(channels, after, before, 10)
                .await
                .unwrap()
        }
    };
    let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|&(t, ms)| (t.to_owned(), ms)).collect()
    };
    assert_eq!(
        targets(at(5), at(45)).await,
        owned(&[("#b", 20), ("#a", 30), ("#c", 40)])
    );
    // #a went on after 25: its latest message is not in the window.
    assert_eq!(targets(at(5), at(25)).await, owned(&[("#b", 20)]));
    // The bounds are exclusive: a message at a bound is outside.
    assert_eq!(targets(at(20), at(40)).await, owned(&[("#a", 30)]));
    // Only messages count: #c's TAGMSG at 50 is not its latest message.
    assert_eq!(targets(at(35), u64::MAX).await, owned(&[("#c", 40)]));

    let mut alice = store.direct_targets_of("alice", 0, at(25)).await.unwrap();
    alice.sort();
    assert_eq!(alice, owned(&[("dm:~carol alice", 20)]));
    assert_eq!(
        store
            .direct_targets_of("alice", at(20), at(31))
            .await
            .unwrap(),
        owned(&[("dm:alice bob", 30)])
    );
}
