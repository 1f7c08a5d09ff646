//! Registered channels, their state and access lists.

use tempfile::TempDir;

use super::temp_store;
use crate::store::{
    AccessLevel, ChannelState, ListEntry, NewAccount, RegisteredChannel, Store, StoreError, Topic,
};

/// A store holding the accounts alice, bob and carol.
async fn store_with_accounts() -> (TempDir, Store) {
    let (dir, store) = temp_store().await;
    for (name, name_folded) in [("Alice", "alice"), ("Bob", "bob"), ("Carol", "carol")] {
        let account = NewAccount {
            name,
            name_folded,
            email: None,
            password_hash: "$argon2id$stub",
            scram: None,
            created_at: 1,
        };
        store.create_account(&account).await.unwrap();
    }
    (dir, store)
}

fn entry(mode: char, mask: &str, set_at: i64) -> ListEntry {
    ListEntry {
        mode,
        mask: mask.into(),
        set_by: "Alice".into(),
        set_at,
    }
}

/// A state with every field set, lists already in the order loads return.
fn full_state() -> ChannelState {
    ChannelState {
        topic: Some(Topic {
            text: "Welcome to Rust".into(),
            set_by: "Alice!alice@host".into(),
            set_at: 1_700_000_100,
        }),
        modes: "imnst".into(),
        key: Some("sekrit".into()),
        limit: Some(42),
        lists: vec![
            entry('I', "*!*@friends.example", 30),
            entry('b', "*!*@spam.example", 10),
            entry('b', "troll!*@*", 20),
            entry('e', "*!*@staff.example", 15),
        ],
    }
}

async fn count_rows(store: &Store, table: &str, channel: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE channel = $1"))
        .bind(channel)
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

async fn access_of(store: &Store, channel: &str) -> Vec<(String, AccessLevel)> {
    store
        .registered_channel(channel)
        .await
        .unwrap()
        .unwrap()
        .access
}

#[tokio::test]
async fn registered_channel_round_trips_state_and_access() {
    let (_dir, store) = store_with_accounts().await;
    let state = full_state();
    assert!(store
        .register_channel("#Rust", "#rust", "alice", &state, 1_700_000_000)
        .await
        .unwrap());
    assert!(store
        .set_access("#rust", "carol", Some(AccessLevel::Voice))
        .await
        .unwrap());
    assert!(store
        .set_access("#rust", "bob", Some(AccessLevel::Op))
        .await
        .unwrap());

    let channel = store.registered_channel("#rust").await.unwrap().unwrap();
    assert_eq!(
        channel,
        RegisteredChannel {
            name: "#Rust".into(),
            name_folded: "#rust".into(),
            founder: "alice".into(),
            registered_at: 1_700_000_000,
            state,
            access: vec![
                ("bob".into(), AccessLevel::Op),
                ("carol".into(), AccessLevel::Voice)
            ],
        }
    );
    assert_eq!(store.registered_channel("#other").await.unwrap(), None);
}

#[tokio::test]
async fn empty_state_round_trips() {
    let (_dir, store) = store_with_accounts().await;
    let state = ChannelState::default();
    store
        .register_channel("#quiet", "#quiet", "bob", &state, 5)
        .await
        .unwrap();

    let channel = store.registered_channel("#quiet").await.unwrap().unwrap();
    assert_eq!(channel.state, state);
    assert!(channel.access.is_empty());
}

#[tokio::test]
async fn registering_twice_keeps_the_first_registration() {
    let (_dir, store) = store_with_accounts().await;
    let state = full_state();
    assert!(store
        .register_channel("#Rust", "#rust", "alice", &state, 5)
        .await
        .unwrap());

    let other_state = ChannelState {
        modes: "t".into(),
        lists: vec![entry('b', "*!*@elsewhere", 1)],
        ..ChannelState::default()
    };
    assert!(!store
        .register_channel("#RUST", "#rust", "bob", &other_state, 9)
        .await
        .unwrap());

    let channel = store.registered_channel("#rust").await.unwrap().unwrap();
    assert_eq!(
        (channel.name.as_str(), channel.founder.as_str()),
        ("#Rust", "alice")
    );
    assert_eq!(channel.registered_at, 5);
    assert_eq!(channel.state, state);
}

#[tokio::test]
async fn registering_for_an_unknown_founder_fails() {
    let (_dir, store) = store_with_accounts().await;
    let error = store
        .register_channel("#x", "#x", "nobody", &full_state(), 5)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    assert_eq!(store.registered_channel("#x").await.unwrap(), None);
    assert_eq!(count_rows(&store, "channel_list_entries", "#x").await, 0);
}

#[tokio::test]
async fn save_channel_state_replaces_everything() {
    let (_dir, store) = store_with_accounts().await;
    store
        .register_channel("#Rust", "#rust", "alice", &full_state(), 5)
        .await
        .unwrap();

    let new_state = ChannelState {
        topic: None,
        modes: "nt".into(),
        key: None,
        limit: None,
        lists: vec![
            entry('b', "*!*@new.example", 50),
            entry('b', "troll!*@*", 60),
        ],
    };
    assert!(store.save_channel_state("#rust", &new_state).await.unwrap());
    let channel = store.registered_channel("#rust").await.unwrap().unwrap();
    assert_eq!(channel.state, new_state);

    // And back, to check set values are written, not only cleared ones.
    assert!(store
        .save_channel_state("#rust", &full_state())
        .await
        .unwrap());
    let channel = store.registered_channel("#rust").await.unwrap().unwrap();
    assert_eq!(channel.state, full_state());

    assert!(!store
        .save_channel_state("#nowhere", &new_state)
        .await
        .unwrap());
    assert_eq!(
        count_rows(&store, "channel_list_entries", "#nowhere").await,
        0
    );
}

#[tokio::test]
async fn duplicate_list_entries_are_kept_once() {
    let (_dir, store) = store_with_accounts().await;
    let state = ChannelState {
        lists: vec![
            entry('b', "x!*@*", 1),
            entry('b', "x!*@*", 2),
            entry('e', "x!*@*", 3),
        ],
        ..ChannelState::default()
    };
    store
        .register_channel("#dup", "#dup", "alice", &state, 5)
        .await
        .unwrap();

    let channel = store.registered_channel("#dup").await.unwrap().unwrap();
    assert_eq!(
        channel.state.lists,
        [entry('b', "x!*@*", 1), entry('e', "x!*@*", 3)]
    );
}

#[tokio::test]
async fn set_access_grants_changes_and_revokes() {
    let (_dir, store) = store_with_accounts().await;
    store
        .register_channel("#Rust", "#rust", "alice", &ChannelState::default(), 5)
        .await
        .unwrap();

    assert!(store
        .set_access("#rust", "bob", Some(AccessLevel::Voice))
        .await
        .unwrap());
    assert_eq!(
        access_of(&store, "#rust").await,
        [("bob".to_owned(), AccessLevel::Voice)]
    );
    assert!(store
        .set_access("#rust", "bob", Some(AccessLevel::Op))
        .await
        .unwrap());
    assert_eq!(
        access_of(&store, "#rust").await,
        [("bob".to_owned(), AccessLevel::Op)]
    );
    assert!(store.set_access("#rust", "bob", None).await.unwrap());
    assert!(access_of(&store, "#rust").await.is_empty());
    // Revoking what was never granted still reports the channel exists.
    assert!(store.set_access("#rust", "carol", None).await.unwrap());

    assert!(!store
        .set_access("#nowhere", "bob", Some(AccessLevel::Op))
        .await
        .unwrap());
    assert!(!store.set_access("#nowhere", "bob", None).await.unwrap());
    assert_eq!(count_rows(&store, "channel_access", "#nowhere").await, 0);
}

#[tokio::test]
async fn drop_channel_removes_its_access_and_lists() {
    let (_dir, store) = store_with_accounts().await;
    store
        .register_channel("#Rust", "#rust", "alice", &full_state(), 5)
        .await
        .unwrap();
    store
        .set_access("#rust", "bob", Some(AccessLevel::Op))
        .await
        .unwrap();

    assert!(store.drop_channel("#rust").await.unwrap());
    assert!(!store.drop_channel("#rust").await.unwrap());

    assert_eq!(store.registered_channel("#rust").await.unwrap(), None);
    assert_eq!(count_rows(&store, "channel_access", "#rust").await, 0);
    assert_eq!(count_rows(&store, "channel_list_entries", "#rust").await, 0);
    // The name can be registered afresh, with nothing left over.
    let state = ChannelState::default();
    store
        .register_channel("#Rust", "#rust", "bob", &state, 9)
        .await
        .unwrap();
    let channel = store.registered_channel("#rust").await.unwrap().unwrap();
    assert_eq!((channel.state, channel.access), (state, Vec::new()));
}

#[tokio::test]
async fn registered_channels_groups_lists_and_access_by_channel() {
    let (_dir, store) = store_with_accounts().await;
    let rust_state = full_state();
    let go_state = ChannelState {
        modes: "n".into(),
        lists: vec![entry('b', "gopher!*@*", 7)],
        ..ChannelState::default()
    };
    let empty_state = ChannelState::default();
    // Registered out of name order, with access interleaved between them.
    store
        .register_channel("#rust", "#rust", "alice", &rust_state, 3)
        .await
        .unwrap();
    store
        .register_channel("#empty", "#empty", "carol", &empty_state, 2)
        .await
        .unwrap();
    store
        .register_channel("#Go", "#go", "bob", &go_state, 1)
        .await
        .unwrap();
    store
        .set_access("#go", "alice", Some(AccessLevel::Voice))
        .await
        .unwrap();
    store
        .set_access("#rust", "bob", Some(AccessLevel::Op))
        .await
        .unwrap();
    store
        .set_access("#go", "carol", Some(AccessLevel::Op))
        .await
        .unwrap();

    let channels = store.registered_channels().await.unwrap();
    let summary: Vec<_> = channels
        .iter()
        .map(|c| (c.name.as_str(), c.founder.as_str(), c.registered_at))
        .collect();
    assert_eq!(
        summary,
        [
            ("#empty", "carol", 2),
            ("#Go", "bob", 1),
            ("#rust", "alice", 3)
        ]
    );
    assert_eq!(channels[0].state, empty_state);
    assert!(channels[0].access.is_empty());
    assert_eq!(channels[1].state, go_state);
    assert_eq!(
        channels[1].access,
        [
            ("alice".to_owned(), AccessLevel::Voice),
            ("carol".to_owned(), AccessLevel::Op)
        ]
    );
    assert_eq!(channels[2].state, rust_state);
    assert_eq!(channels[2].access, [("bob".to_owned(), AccessLevel::Op)]);
}

#[tokio::test]
async fn registered_channels_is_empty_on_a_new_database() {
    let (_dir, store) = temp_store().await;
    assert!(store.registered_channels().await.unwrap().is_empty());
}
