//! Accounts and the nicks they own.

use super::temp_store;
use crate::store::{
    AccessLevel, Account, AccountSummary, ChannelState, CreateAccountError, NewAccount,
    ScramCredentials, Store,
};

fn scram(seed: u8) -> ScramCredentials {
    ScramCredentials {
        salt: vec![seed; 16],
        iterations: 4096 + u32::from(seed),
        stored_key: vec![seed.wrapping_add(1); 32],
        server_key: vec![seed.wrapping_add(2); 32],
    }
}

fn new_account<'a>(name: &'a str, name_folded: &'a str) -> NewAccount<'a> {
    NewAccount {
        name,
        name_folded,
        email: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        scram: None,
        created_at: 1_700_000_000,
    }
}

async fn create_accounts(store: &Store, names: &[(&str, &str)]) {
    for (name, name_folded) in names {
        store
            .create_account(&new_account(name, name_folded))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn created_account_round_trips() {
    let (_dir, store) = temp_store().await;
    let credentials = scram(7);
    let account = NewAccount {
        email: Some("alice@example.org"),
        scram: Some(&credentials),
        ..new_account("Alice", "alice")
    };
    store.create_account(&account).await.unwrap();

    let stored = store.account("alice").await.unwrap().unwrap();
    assert_eq!(
        stored,
        Account {
            name: "Alice".into(),
            name_folded: "alice".into(),
            email: Some("alice@example.org".into()),
            password_hash: account.password_hash.into(),
            scram: Some(credentials.clone()),
            created_at: 1_700_000_000,
            uid: stored.uid,
            last_seen_ms: 0,
            nicks: vec!["Alice".into()],
        }
    );
    assert!(stored.uid > 0, "a new account gets a uid");
    // The same name registered again is another account.
    assert!(store.delete_account("alice").await.unwrap());
    store.create_account(&account).await.unwrap();
    let again = store.account("alice").await.unwrap().unwrap();
    assert_ne!(again.uid, stored.uid);
    assert_eq!(
        store.account_owning_nick("alice").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.account("bob").await.unwrap(), None);
    assert_eq!(store.account_owning_nick("bob").await.unwrap(), None);
}

#[tokio::test]
async fn duplicate_account_name_is_refused() {
    let (_dir, store) = temp_store().await;
    store
        .create_account(&new_account("Alice", "alice"))
        .await
        .unwrap();
    let again = NewAccount {
        email: Some("other@example.org"),
        ..new_account("ALICE", "alice")
    };

    let error = store.create_account(&again).await.unwrap_err();
    assert!(matches!(error, CreateAccountError::Exists), "{error:?}");
    let stored = store.account("alice").await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.email), ("Alice", None));
}

#[tokio::test]
async fn name_owned_as_nick_by_another_account_is_refused() {
    let (_dir, store) = temp_store().await;
    store
        .create_account(&new_account("Alice", "alice"))
        .await
        .unwrap();
    assert!(store.add_nick("alice", "Bob", "bob", 5).await.unwrap());

    let error = store
        .create_account(&new_account("Bob", "bob"))
        .await
        .unwrap_err();
    assert!(matches!(error, CreateAccountError::Exists), "{error:?}");
    // The account row inserted before the nick clash was rolled back.
    assert_eq!(store.account("bob").await.unwrap(), None);
    assert_eq!(
        store.account_owning_nick("bob").await.unwrap().as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn nicks_are_added_and_removed_by_their_owner_only() {
    let (_dir, store) = temp_store().await;
    create_accounts(&store, &[("Alice", "alice"), ("Bob", "bob")]).await;

    assert!(store.add_nick("alice", "Ally", "ally", 5).await.unwrap());
    assert!(!store.add_nick("bob", "ALLY", "ally", 6).await.unwrap());
    assert!(!store.add_nick("bob", "Alice", "alice", 6).await.unwrap());
    // Re-adding updates the display form.
    assert!(store.add_nick("alice", "ALLY", "ally", 7).await.unwrap());
    assert_eq!(
        store.account_owning_nick("ally").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        store.account("alice").await.unwrap().unwrap().nicks,
        ["Alice", "ALLY"]
    );

    assert!(!store.remove_nick("bob", "ally").await.unwrap());
    assert!(!store.remove_nick("alice", "alice").await.unwrap());
    assert!(store.remove_nick("alice", "ally").await.unwrap());
    assert!(!store.remove_nick("alice", "ally").await.unwrap());
    assert_eq!(store.account_owning_nick("ally").await.unwrap(), None);
    assert_eq!(
        store.account("alice").await.unwrap().unwrap().nicks,
        ["Alice"]
    );
}

#[tokio::test]
async fn set_password_replaces_or_clears_scram() {
    let (_dir, store) = temp_store().await;
    let old_credentials = scram(1);
    let account = NewAccount {
        scram: Some(&old_credentials),
        ..new_account("Alice", "alice")
    };
    store.create_account(&account).await.unwrap();

    let new_credentials = scram(2);
    assert!(store
        .set_password("alice", "hash-2", Some(&new_credentials))
        .await
        .unwrap());
    let stored = store.account("alice").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "hash-2");
    assert_eq!(stored.scram, Some(new_credentials));

    assert!(store.set_password("alice", "hash-3", None).await.unwrap());
    let stored = store.account("alice").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "hash-3");
    assert_eq!(stored.scram, None);

    assert!(!store.set_password("nobody", "hash", None).await.unwrap());
}

#[tokio::test]
async fn delete_account_cascades() {
    let (_dir, store) = temp_store().await;
    create_accounts(&store, &[("Alice", "alice"), ("Bob", "bob")]).await;
    store.add_nick("alice", "Ally", "ally", 5).await.unwrap();
    let state = ChannelState::default();
    store
        .register_channel("#Alice", "#alice", "alice", &state, 5)
        .await
        .unwrap();
    store
        .register_channel("#Bob", "#bob", "bob", &state, 5)
        .await
        .unwrap();
    store
        .set_access("#bob", "alice", Some(AccessLevel::Op))
        .await
        .unwrap();
    store
        .set_access("#bob", "bob", Some(AccessLevel::Voice))
        .await
        .unwrap();

    assert!(store.delete_account("alice").await.unwrap());
    assert!(!store.delete_account("alice").await.unwrap());

    assert_eq!(store.account("alice").await.unwrap(), None);
    assert_eq!(store.account_owning_nick("alice").await.unwrap(), None);
    assert_eq!(store.account_owning_nick("ally").await.unwrap(), None);
    assert_eq!(store.registered_channel("#alice").await.unwrap(), None);
    let bob_channel = store.registered_channel("#bob").await.unwrap().unwrap();
    assert_eq!(bob_channel.access, [("bob".to_owned(), AccessLevel::Voice)]);
    // The name is free again, as account and as nick.
    store
        .create_account(&new_account("Ally", "ally"))
        .await
        .unwrap();
}

#[tokio::test]
async fn accounts_are_listed_in_folded_order_with_nick_counts() {
    let (_dir, store) = temp_store().await;
    store
        .create_account(&new_account("zed", "zed"))
        .await
        .unwrap();
    let with_email = NewAccount {
        email: Some("a@example.org"),
        created_at: 42,
        ..new_account("Alice", "alice")
    };
    store.create_account(&with_email).await.unwrap();
    store.add_nick("alice", "Ally", "ally", 5).await.unwrap();

    let summaries = store.accounts().await.unwrap();
    assert_eq!(
        summaries,
        [
            AccountSummary {
                name: "Alice".into(),
                email: Some("a@example.org".into()),
                created_at: 42,
                nick_count: 2,
            },
            AccountSummary {
                name: "zed".into(),
                email: None,
                created_at: 1_700_000_000,
                nick_count: 1,
            },
        ]
    );
}

#[test]
fn debug_output_hides_secrets() {
    let credentials = ScramCredentials {
        salt: b"SALTSALT".to_vec(),
        iterations: 4096,
        stored_key: b"STOREDKEY".to_vec(),
        server_key: b"SERVERKEY".to_vec(),
    };
    let new = NewAccount {
        password_hash: "$argon2id$SECRETHASH",
        scram: Some(&credentials),
        ..new_account("Alice", "alice")
    };
    let account = Account {
        name: "Alice".into(),
        name_folded: "alice".into(),
        email: None,
        password_hash: "$argon2id$SECRETHASH".into(),
        scram: Some(credentials.clone()),
        created_at: 0,
        uid: 1,
        last_seen_ms: 0,
        nicks: vec!["Alice".into()],
    };

    for debug in [
        format!("{credentials:?}"),
        format!("{new:?}"),
        format!("{account:?}"),
    ] {
        assert!(debug.contains("4096"), "{debug}");
        // Byte vectors print as numbers: these are "SALT", "STOR", "SERV".
        for secret in [
            "SECRETHASH",
            "83, 65, 76, 84",
            "83, 84, 79, 82",
            "83, 69, 82, 86",
        ] {
            assert!(!debug.contains(secret), "{debug} shows {secret}");
        }
    }
}

/// The nicks of `nicks` that have an owner, with it, as the store answers
/// from memory.
fn owners(store: &Store, nicks: &[&str]) -> Vec<(String, String)> {
    nicks
        .iter()
        .filter_map(|nick| Some(((*nick).to_owned(), store.owner_of_nick(nick)?)))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(nick, owner)| ((*nick).to_owned(), (*owner).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_nick_owners_in_memory_follow_every_change() {
    let (_dir, store) = temp_store().await;
    create_accounts(&store, &[("Alice", "alice"), ("Bob", "bob")]).await;
    // A refused creation changes nothing.
    assert!(store
        .create_account(&new_account("ALICE", "alice"))
        .await
        .is_err());
    assert!(store.add_nick("alice", "Ally", "ally", 5).await.unwrap());
    assert!(!store.add_nick("bob", "Ally", "ally", 6).await.unwrap());
    assert!(store.add_nick("bob", "Bobby", "bobby", 6).await.unwrap());
    let everyone = ["alice", "ally", "bob", "bobby", "carol"];
    assert_eq!(
        owners(&store, &everyone),
        pairs(&[
            ("alice", "alice"),
            ("ally", "alice"),
            ("bob", "bob"),
            ("bobby", "bob")
        ])
    );

    assert!(store.remove_nick("bob", "bobby").await.unwrap());
    assert!(store.delete_account("alice").await.unwrap());
    assert_eq!(owners(&store, &everyone), pairs(&[("bob", "bob")]));

    // What the database holds, read again, is the same.
    store.reload_nick_owners().await.unwrap();
    assert_eq!(owners(&store, &everyone), pairs(&[("bob", "bob")]));
}

/// `parlor account` writes the database from another process: a running
/// server learns of it when it reloads, and a store opened later at once.
#[tokio::test]
async fn accounts_another_process_writes_arrive_with_a_reload() {
    let (dir, server_store) = temp_store().await;
    let admin_store = Store::open(dir.path()).await.unwrap();
    admin_store
        .create_account(&new_account("Dana", "dana"))
        .await
        .unwrap();
    assert_eq!(owners(&server_store, &["dana"]), pairs(&[]));
    server_store.reload_nick_owners().await.unwrap();
    assert_eq!(owners(&server_store, &["dana"]), pairs(&[("dana", "dana")]));

    admin_store.delete_account("dana").await.unwrap();
    server_store.reload_nick_owners().await.unwrap();
    assert_eq!(owners(&server_store, &["dana"]), pairs(&[]));
    admin_store
        .create_account(&new_account("Erin", "erin"))
        .await
        .unwrap();
    assert_eq!(
        owners(&Store::open(dir.path()).await.unwrap(), &["erin"]),
        pairs(&[("erin", "erin")])
    );
}
