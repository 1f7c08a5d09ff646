//! The process's own figures, read from the kernel when scraped: CPU time,
//! resident memory and file descriptors. Reading `/proc/self/fd` walks a
//! directory as long as the descriptors are many (one per client), so a
//! scrape reads these on the blocking pool.

/// What [`read`] found; a figure the system would not give is `None`.
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    /// The soft limit on open descriptors (`ulimit -n`).
    pub max_fds: Option<u64>,
}

/// Reads the figures now. Blocking (a walk of `/proc/self/fd`): call it
/// off the async threads.
pub fn read() -> Process {
    Process {
        cpu_seconds: cpu_seconds(),
        resident_bytes: resident_bytes(),
        open_fds: open_fds(),
        max_fds: max_fds(),
    }
}

/// From `/proc/self/stat`: user and system time (its 14th and 15th
/// fields, after the command name, which may hold spaces and parentheses),
/// in clock ticks.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second();
    (ticks > 0).then(|| (user + system) as f64 / ticks as f64)
}

/// From `/proc/self/statm`: its second field is the resident pages.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// Entries of `/proc/self/fd`, less the one the listing itself opens.
fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(entries.saturating_sub(1))
}

fn max_fds() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_figures_are_read_and_move_as_the_process_works() {
        let before = super::read();
        let file = std::fs::File::open("/proc/self/statm").unwrap();
        // The kernel counts CPU time in clock ticks (10 ms): spin until
        // one passes, for at most two seconds of a busy machine.
        let mut spin = 0u64;
        let start = std::time::Instant::now();
        let mut after = super::read();
        while after.cpu_seconds <= before.cpu_seconds
            && start.elapsed() < std::time::Duration::from_secs(2)
        {
            for _ in 0..100_000 {
                spin = spin.wrapping_add(std::hint::black_box(1));
            }
            after = super::read();
        }
        assert!(after.cpu_seconds.unwrap() > before.cpu_seconds.unwrap());
        assert!(after.resident_bytes.unwrap() > 1 << 20);
        // The file opened is counted (other tests may open and close
        // theirs meanwhile, so only a lower bound is sure).
        assert!(after.open_fds.unwrap() >= 4, "{after:?}");
        assert!(after.max_fds.unwrap_or(u64::MAX) >= after.open_fds.unwrap());
        drop((file, spin));
    }
}
