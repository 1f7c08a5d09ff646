//! `parlor backup FILE`: a consistent copy of the database, taken while
//! the server runs.
//!
//! SQLite's `VACUUM INTO` reads the database in one read transaction, so
//! the copy is the database as of one commit, whatever the server writes
//! meanwhile (WAL lets it go on writing; it never waits for the copy). The
//! copy is a single compact file with no `-wal` beside it. It is written
//! under a temporary name in the target's directory, synced, and only
//! then given its name, so a failed or interrupted backup never leaves a
//! half-written file under that name, nor destroys the one `--force`
//! replaces.
//!
//! Why not SQLite's online backup API: sqlx does not expose it (it would
//! take `unsafe` calls into the C library), and copied page by page it
//! starts over whenever the server commits between two steps, so under
//! steady chat it may never finish unless done in one step, which reads
//! like `VACUUM INTO` anyway. `VACUUM INTO` also leaves out free pages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::database_path;

/// How long the copy waits for a lock the server holds (only a
/// checkpoint that truncates the log takes one that stops a reader).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0} (is --data-dir, or server.data_dir in --config, right?)")]
    NoDatabase(PathBuf),
    #[error("{0} already exists; give --force to replace it")]
    Exists(PathBuf),
    #[error("{0} is the database itself; name another file")]
    SameFile(PathBuf),
    #[error("{0}: the path is not UTF-8, which SQLite needs; name another file")]
    NotUtf8(PathBuf),
    #[error("cannot read the database {path}: {source}")]
    Read { path: PathBuf, source: sqlx::Error },
    #[error("cannot copy the database {path} to {target}: {source}")]
    Copy {
        path: PathBuf,
        target: PathBuf,
        source: sqlx::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Copies the database of `data_dir` to `target` (replacing it only if
/// `force`) and returns the copy's size in bytes. The file work runs on
/// the blocking pool, the copy on SQLite's own thread (sqlx's), so this
/// may be awaited on any runtime.
pub async fn backup(data_dir: &Path, target: &Path, force: bool) -> Result<u64, BackupError> {
    let source = database_path(data_dir);
    let plan = {
        let (source, target) = (source.clone(), target.to_owned());
        blocking(move || plan(&source, &target, force)).await?
    };
    let copied = copy_into(&source, &plan.partial_text, target).await;
    let target = target.to_owned();
    blocking(move || {
        let result = copied.and_then(|()| finish(&plan, &target, force));
        if result.is_err() {
            let _ = std::fs::remove_file(&plan.partial);
        }
        result
    })
    .await
}

/// Where the copy is written before it takes its name.
struct Plan {
    directory: PathBuf,
    partial: PathBuf,
    partial_text: String,
}

/// Checks the source and the target, and names the partial file.
fn plan(source: &Path, target: &Path, force: bool) -> Result<Plan, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_owned()));
    }
    if target.is_dir() {
        return Err(write_error(target, "a directory; name a file".into()));
    }
    if target.exists() {
        if same_file(source, target) {
            return Err(BackupError::SameFile(target.to_owned()));
        }
        if !force {
            return Err(BackupError::Exists(target.to_owned()));
        }
    }
    let name = target
        .file_name()
        .ok_or_else(|| write_error(target, "not a file name".into()))?;
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !directory.is_dir() {
        let missing = format!("no directory {}", directory.display());
        return Err(write_error(target, missing.into()));
    }
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = directory.join(partial_name);
    let partial_text = partial
        .to_str()
        .ok_or_else(|| BackupError::NotUtf8(target.to_owned()))?
        .to_owned();
    // Left by a killed backup that had this process id: never another's.
    let _ = std::fs::remove_file(&partial);
    Ok(Plan {
        directory,
        partial,
        partial_text,
    })
}

/// Syncs the copy, gives it its name, and returns its size.
fn finish(plan: &Plan, target: &Path, force: bool) -> Result<u64, BackupError> {
    // SQLite does not sync what VACUUM INTO writes.
    let sync = |path: &Path| std::fs::File::open(path).and_then(|file| file.sync_all());
    sync(&plan.partial).map_err(|e| write_error(target, e.into()))?;
    put_in_place(&plan.partial, target, force)?;
    // The new name itself, so a power cut does not lose it.
    let _ = sync(&plan.directory);
    std::fs::metadata(target)
        .map(|metadata| metadata.len())
        .map_err(|e| write_error(target, e.into()))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(write_error(Path::new("."), e.into())))
}

/// `VACUUM INTO` from its own connection to the live database: it opens
/// the file as the server does (the `-wal` and `-shm` are shared), runs
/// no migration, and never creates a database where none is.
async fn copy_into(source: &Path, into: &str, target: &Path) -> Result<(), BackupError> {
    let read_error = |source_error| BackupError::Read {
        path: source.to_owned(),
        source: source_error,
    };
    let mut connection = SqliteConnectOptions::new()
        .filename(source)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .map_err(read_error)?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(into)
        .execute(&mut connection)
        .await;
    let _ = connection.close().await;
    // SQLite's message names the cause: "unable to open database file"
    // for the copy, "database or disk is full", ...
    copied.map(drop).map_err(|source_error| BackupError::Copy {
        path: source.to_owned(),
        target: target.to_owned(),
        source: source_error,
    })
}

/// Gives the finished copy its name: replacing whatever is there with
/// `force`, else only if nothing is (a link fails if the name is taken,
/// even by a file that appeared meanwhile).
fn put_in_place(partial: &Path, target: &Path, force: bool) -> Result<(), BackupError> {
    if force {
        return std::fs::rename(partial, target).map_err(|e| write_error(target, e.into()));
    }
    match std::fs::hard_link(partial, target) {
        Ok(()) => {
            let _ = std::fs::remove_file(partial);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::Exists(target.to_owned()))
        }
        // A file system without hard links: the check at the start stands.
        Err(_) if !target.exists() => {
            std::fs::rename(partial, target).map_err(|e| write_error(target, e.into()))
        }
        Err(_) => Err(BackupError::Exists(target.to_owned())),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn write_error(path: &Path, source: Box<dyn std::error::Error + Send + Sync>) -> BackupError {
    BackupError::Write {
        path: path.to_owned(),
        source,
    }
}
