//! Tests against real SQLite files in temporary directories.

mod accounts;
mod channel_snapshots;
mod channels;
mod history;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection;
use tempfile::TempDir;

use super::{narrow, NewAccount, Store, StoreError};

/// A store in a fresh directory; keep the TempDir alive as long as it.
async fn temp_store() -> (TempDir, Store) {
    let dir = TempDir::new().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("open store");
    (dir, store)
}

#[tokio::test]
async fn open_creates_database_with_wal_and_pragmas() {
    let dir = TempDir::new().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let store = Store::open(&data_dir).await.unwrap();

    assert_eq!(store.path(), data_dir.join("parlor.db"));
    assert!(store.path().is_file());
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(journal_mode, "wal");
    // NORMAL is 1 (FULL, the default, is 2).
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(synchronous, 1);
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    let busy_timeout_ms: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(busy_timeout_ms, 5000);
    store.close().await;
}

#[tokio::test]
async fn dollar_placeholders_bind_by_number_not_position() {
    let (_dir, store) = temp_store().await;
    let joined: String = sqlx::query_scalar("SELECT $2 || $1 || $2")
        .bind("a")
        .bind("b")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(joined, "bab");
}

#[tokio::test]
async fn reopening_keeps_data() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store
        .create_account(&NewAccount {
            name: "Alice",
            name_folded: "alice",
            email: None,
            password_hash: "$argon2id$stub",
            scram: None,
            created_at: 100,
        })
        .await
        .unwrap();
    store.close().await;

    let reopened = Store::open(dir.path()).await.unwrap();
    let account = reopened.account("alice").await.unwrap().unwrap();
    assert_eq!(account.name, "Alice");
    assert_eq!(account.nicks, ["Alice"]);
}

#[tokio::test]
async fn close_checkpoints_the_wal() {
    // A connection still on its way back to the pool at close is a race
    // that only sometimes happens, so try several times.
    for _ in 0..10 {
        let (_dir, store) = temp_store().await;
        store
            .create_account(&NewAccount {
                name: "Alice",
                name_folded: "alice",
                email: None,
                password_hash: "$argon2id$stub",
                scram: None,
                created_at: 100,
            })
            .await
            .unwrap();
        let wal = store.path().with_extension("db-wal");
        let wal_len = || std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
        assert!(wal_len() > 0, "writes should have gone to the WAL first");
        store.close().await;
        // SQLite deletes the WAL when the last connection closes, unless
        // two connections close at once; then it stays, but empty.
        assert_eq!(wal_len(), 0, "closing should checkpoint the WAL");
        assert_eq!(store.pool.size(), 0, "no connection should outlive close");
    }
}

#[tokio::test]
async fn open_failure_names_the_path() {
    let dir = TempDir::new().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();

    let error = Store::open(&not_a_dir).await.unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    let expected = format!(
        "cannot open database {}: ",
        not_a_dir.join("parlor.db").display()
    );
    assert!(error.to_string().starts_with(&expected), "{error}");
}

#[tokio::test]
async fn migration_failure_names_the_path() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let path = store.path().to_owned();
    store.close().await;
    // An applied migration whose recorded checksum no longer matches
    // the embedded one is what a hand-edited migration file looks like.
    let mut connection =
        sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00'")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();

    let error = Store::open(dir.path()).await.unwrap_err();
    assert!(matches!(error, StoreError::Migrate { .. }), "{error:?}");
    let expected = format!("cannot migrate database {}: ", path.display());
    assert!(error.to_string().starts_with(&expected), "{error}");
}

#[test]
fn narrow_rejects_out_of_range_values() {
    assert_eq!(narrow::<u32>(7, "c").unwrap(), 7);
    assert!(narrow::<u32>(-1, "c").is_err());
    assert!(narrow::<u32>(i64::from(u32::MAX) + 1, "c").is_err());
}
