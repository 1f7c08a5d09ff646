//! How the `parlor` binary uses memory: what an idle client costs is
//! mostly allocator pages, so the process keeps them small and gives back
//! what it freed. Part of the binary, not the library, because the binary
//! chooses the allocator (mimalloc, in `main.rs`).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often a worker thread going idle may hand freed memory back.
const IDLE_COLLECT_INTERVAL: Duration = Duration::from_secs(1);

/// Turns transparent huge pages off for this process. mimalloc asks the
/// kernel for them on its arenas (`MADV_HUGEPAGE`), so a heap that grows by
/// small objects spread over many pages becomes resident 2 MiB at a time:
/// 2.9 KiB of RSS per idle client instead of 1.7 in the connect benchmark,
/// with the same CPU per registration (see bench/README.md). The flag is
/// the process's and is checked when a page is faulted in, so it also
/// covers the arena mimalloc reserved before `main`.
pub fn keep_pages_small() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integers only and sets one flag
        // of this process; it touches no memory of ours. A kernel without
        // it returns an error, which leaves things as they were.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

/// Run when a runtime worker thread runs out of work. mimalloc purges the
/// pages freed on a thread (returns them to the OS) only after a delay, and
/// only when that thread calls into it again: pages freed by a burst of
/// work (the Argon2 decoy hashed at start-up, a wave of registrations, a
/// mass QUIT) stayed resident once the threads went idle. At most once per
/// interval per thread, so a busy server pays a clock read per park.
pub fn give_back_when_idle() {
    thread_local! {
        static LAST_COLLECT: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    LAST_COLLECT.with(|last| {
        if last
            .get()
            .is_some_and(|at| now.duration_since(at) < IDLE_COLLECT_INTERVAL)
        {
            return;
        }
        last.set(Some(now));
        // SAFETY: `mi_collect` takes no pointers and has no preconditions:
        // it only frees what mimalloc itself holds for the calling thread
        // and purges pages whose delay passed, never a live allocation.
        unsafe { libmimalloc_sys::mi_collect(false) };
    });
}
