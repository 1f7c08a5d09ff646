//! Log output written in batches by a thread of its own.
//!
//! Log lines are formatted on the connection tasks and appended to a shared
//! buffer; a thread writes the buffer out every [`FLUSH_INTERVAL`], or at
//! once when it grows past [`FLUSH_SIZE`] or a warning or error comes in.
//! `tracing-appender` does the same with a channel, but wakes its thread
//! for every line: two log lines per connection then cost more than the
//! rest of a client's registration.

pub mod plain;

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait to be written when nothing urgent comes.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Buffered bytes that get written without waiting for the interval.
const FLUSH_SIZE: usize = 64 * 1024;
/// Past this, lines are dropped (and counted) rather than letting a stuck
/// output grow the server's memory or stall the clients.
const MAX_BUFFERED: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    urgent: bool,
    stopping: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while appending leaves at worst a partial line.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer handed to `tracing_subscriber`. Cheap to clone.
#[derive(Clone)]
pub struct BatchedLog {
    shared: Arc<Shared>,
}

/// Writes what is buffered and stops the thread when dropped.
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedLog {
    /// Starts the thread that writes to `output`.
    pub fn new<W: Write + Send + 'static>(output: W) -> (BatchedLog, FlushOnDrop) {
        BatchedLog::with_interval(output, FLUSH_INTERVAL)
    }

    fn with_interval<W: Write + Send + 'static>(
        output: W,
        interval: Duration,
    ) -> (BatchedLog, FlushOnDrop) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn({
                let shared = shared.clone();
                move || write_batches(&shared, output, interval)
            })
            .expect("the log thread can be started");
        (
            BatchedLog {
                shared: shared.clone(),
            },
            FlushOnDrop {
                shared,
                thread: Some(thread),
            },
        )
    }

    fn append(&self, line: &[u8], urgent: bool) {
        let mut pending = self.shared.lock();
        if pending.bytes.len() + line.len() > MAX_BUFFERED {
            pending.dropped += 1;
            return;
        }
        pending.bytes.extend_from_slice(line);
        let wake = urgent || pending.bytes.len() >= FLUSH_SIZE;
        pending.urgent |= wake;
        drop(pending);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

fn write_batches<W: Write>(shared: &Shared, mut output: W, interval: Duration) {
    let mut batch = Vec::new();
    loop {
        let (dropped, stopping) = {
            let pending = shared.lock();
            let mut pending = shared
                .wake
                .wait_timeout_while(pending, interval, |p| !p.urgent && !p.stopping)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            pending.urgent = false;
            std::mem::swap(&mut batch, &mut pending.bytes);
            (std::mem::take(&mut pending.dropped), pending.stopping)
        };
        if dropped > 0 {
            let _ = writeln!(
                output,
                "{dropped} log lines dropped: the log output fell behind"
            );
        }
        if !batch.is_empty() {
            // Nowhere to report a failing log output; the lines are lost.
            let _ = output.write_all(&batch);
            let _ = output.flush();
            batch.clear();
        }
        if stopping {
            return;
        }
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's output: `tracing_subscriber` writes each event whole, in
/// one call, so the line is appended as one piece.
pub struct EventWriter {
    log: BatchedLog,
    urgent: bool,
}

impl Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.log.append(bytes, self.urgent);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            log: self.clone(),
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter {
        EventWriter {
            log: self.clone(),
            // Someone may be watching for these: they are not kept waiting.
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const NEVER: Duration = Duration::from_secs(3600);

    /// An output whose contents the test can read while the thread writes.
    #[derive(Clone, Default)]
    pub(super) struct Shelf(Arc<Mutex<Vec<u8>>>);

    impl Write for Shelf {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shelf {
        pub(super) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// What the thread wrote first, waited for up to 10 s (a test on a
    /// busy machine may wait long for the thread to run).
    fn first_written(shelf: &Shelf) -> String {
        let started = Instant::now();
        while shelf.text().is_empty() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        shelf.text()
    }

    fn log_through(log: &BatchedLog, event: impl FnOnce()) {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(log.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, event);
    }

    #[test]
    fn lines_from_many_threads_are_all_written_whole_and_in_order() {
        let shelf = Shelf::default();
        let (log, flush) = BatchedLog::new(shelf.clone());
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let log = log.clone();
                scope.spawn(move || {
                    for n in 0..500 {
                        log.make_writer()
                            .write_all(format!("thread {thread} line {n}\n").as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        drop(flush);
        let text = shelf.text();
        assert_eq!(text.lines().count(), 2000);
        for thread in 0..4 {
            let numbers: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {thread} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..500).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_warning_is_written_without_waiting_for_the_interval() {
        let shelf = Shelf::default();
        let (log, _flush) = BatchedLog::with_interval(shelf.clone(), NEVER);
        log_through(&log, || tracing::warn!("disk full"));
        let text = first_written(&shelf);
        assert!(text.ends_with("disk full\n"), "{text}");
    }

    #[test]
    fn ordinary_lines_are_written_when_the_interval_passes() {
        let shelf = Shelf::default();
        let (log, _flush) = BatchedLog::with_interval(shelf.clone(), Duration::from_millis(50));
        log_through(&log, || tracing::info!("connected"));
        let text = first_written(&shelf);
        assert!(text.ends_with("connected\n"), "{text}");
    }

    #[test]
    fn ordinary_lines_are_not_written_one_by_one_but_all_at_the_end() {
        let shelf = Shelf::default();
        let (log, flush) = BatchedLog::with_interval(shelf.clone(), NEVER);
        log_through(&log, || tracing::info!("connected"));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(shelf.text(), "", "written without a reason");
        drop(flush);
        assert!(shelf.text().ends_with("connected\n"), "{}", shelf.text());
    }

    #[test]
    fn a_stuck_output_drops_lines_and_says_how_many() {
        let shelf = Shelf::default();
        let (log, flush) = BatchedLog::new(shelf.clone());
        let line = vec![b'x'; 1024];
        // Holding the lock keeps the thread from writing meanwhile.
        let guard = shelf.0.lock().unwrap();
        // The thread can take at most one full buffer before it blocks on
        // the output, and the buffer holds at most another.
        let lines = 3 * MAX_BUFFERED / line.len();
        for _ in 0..lines {
            log.append(&line, false);
        }
        let dropped = log.shared.lock().dropped;
        drop(guard);
        drop(flush);
        assert!(dropped >= (lines / 3) as u64, "{dropped}");
        assert!(shelf.text().contains("log lines dropped"));
    }
}
