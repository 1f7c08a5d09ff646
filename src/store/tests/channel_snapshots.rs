//! Snapshots of live channels: saved, replaced, forgotten, and a bad row
//! skipped rather than fatal.

use super::temp_store;
use crate::store::{ChannelSnapshot, ChannelState, MemberKey, SavedMember, Topic};

fn snapshot(topic: &str) -> ChannelSnapshot {
    ChannelSnapshot {
        name: "#Rust".into(),
        created: 1_700_000_000,
        history_after: 42 << 16,
        state: ChannelState {
            topic: Some(Topic {
                text: topic.into(),
                set_by: "alice!~alice@host".into(),
                set_at: 1_700_000_100,
            }),
            modes: "nt".into(),
            key: Some("sesame".into()),
            limit: Some(10),
            lists: Vec::new(),
        },
        members: vec![
            SavedMember {
                who: MemberKey::Account {
                    account: "alice".into(),
                    uid: 7,
                },
                op: true,
                voice: false,
                wait_until: None,
            },
            SavedMember {
                who: MemberKey::Address {
                    nick: "bob".into(),
                    ip: "::1".parse().unwrap(),
                },
                op: false,
                voice: true,
                wait_until: Some(1_700_086_400),
            },
        ],
        wait_until: None,
    }
}

#[tokio::test]
async fn snapshots_are_saved_replaced_and_forgotten() {
    let (_dir, store) = temp_store().await;
    let changes = [
        ("#rust".to_owned(), Some(snapshot("first"))),
        ("#go".to_owned(), Some(snapshot("other"))),
    ];
    store.save_channel_snapshots(&changes).await.unwrap();
    let changes = [
        ("#rust".to_owned(), Some(snapshot("second"))),
        ("#go".to_owned(), None),
    ];
    store.save_channel_snapshots(&changes).await.unwrap();
    assert_eq!(
        store.channel_snapshots().await.unwrap(),
        [snapshot("second")]
    );
    store.clear_channel_snapshots().await.unwrap();
    assert!(store.channel_snapshots().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_read_is_left_out_and_forgotten() {
    let (_dir, store) = temp_store().await;
    store
        .save_channel_snapshots(&[("#rust".to_owned(), Some(snapshot("kept")))])
        .await
        .unwrap();
    sqlx::query("INSERT INTO channel_snapshots (name_folded, snapshot) VALUES ('#bad', '{')")
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(store.channel_snapshots().await.unwrap(), [snapshot("kept")]);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_snapshots")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the unreadable row is deleted");
}
