//! Where access lines go: a bounded buffer that calls append to and one thread writes out, so
//! that no call ever waits on standard error (nginx's `access_log … buffer= flush=`, Envoy's
//! flushing thread). Whole lines only, so none is ever torn; written at least every
//! [`FLUSH_EVERY`], sooner once the buffer is half full, and at exit (`flush`). When the buffer
//! is full the line is dropped and counted (`swf_warden_log_lines_dropped_total`) rather than
//! the call waiting.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// The most the buffer holds before lines are dropped.
pub const CAPACITY: usize = 1 << 20;
/// The longest a line waits to be written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// The process's access log, once `init` has set it up.
static WRITER: OnceLock<Writer> = OnceLock::new();

pub(super) struct Writer {
    buffer: Mutex<Vec<u8>>,
    /// Woken when the buffer is half full, or to flush now.
    wake: Condvar,
    /// Serializes writing out (the thread, and `flush` at exit); holds the spare buffer that
    /// is swapped in for the full one, so that nothing is allocated under the buffer's lock.
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
    pub(super) json: bool,
    /// Lines dropped because the buffer was full.
    dropped: AtomicU64,
}

/// Sets up the access log on standard error, JSON or text, and starts its writing thread.
/// Without it (in tests that run the proxy in-process) access lines are not written.
pub fn init(json: bool) {
    init_to(Box::new(std::io::stderr()), json);
}

/// Sets up the access log on `out` (the benchmarks give a sink).
pub fn init_to(out: Box<dyn Write + Send>, json: bool) {
    let mut first = false;
    WRITER.get_or_init(|| {
        first = true;
        Writer {
            buffer: Mutex::new(Vec::with_capacity(CAPACITY)),
            wake: Condvar::new(),
            out: Mutex::new((out, Vec::with_capacity(CAPACITY))),
            json,
            dropped: AtomicU64::new(0),
        }
    });
    if first {
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(|| loop {
                if let Some(writer) = WRITER.get() {
                    writer.wait_and_write();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the access log's writer: lines are kept until exit");
        }
    }
}

pub(super) fn writer() -> Option<&'static Writer> {
    WRITER.get()
}

/// Lines dropped so far because the buffer was full.
pub fn dropped() -> u64 {
    WRITER.get().map_or(0, |w| w.dropped.load(Relaxed))
}

/// Writes out what the buffer holds now (at exit, after the last call).
pub fn flush() {
    if let Some(writer) = WRITER.get() {
        writer.write_out();
    }
}

impl Writer {
    /// Appends one whole line, or drops and counts it if it does not fit.
    pub(super) fn append(&self, line: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.len() + line.len() > CAPACITY {
            drop(buffer);
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        buffer.extend_from_slice(line);
        let half = buffer.len() >= CAPACITY / 2;
        drop(buffer);
        if half {
            self.wake.notify_one();
        }
    }

    fn wait_and_write(&self) {
        {
            let buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buffer.len() < CAPACITY / 2 {
                drop(
                    self.wake
                        .wait_timeout(buffer, FLUSH_EVERY)
                        .unwrap_or_else(|p| p.into_inner()),
                );
            }
        }
        self.write_out();
    }

    /// Takes what the buffer holds (swapping the empty spare in) and writes it: the buffer is
    /// free again at once.
    fn write_out(&self) {
        let mut guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let (out, spare) = &mut *guard;
        {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if buffer.is_empty() {
                return;
            }
            std::mem::swap(&mut *buffer, spare);
        }
        // Standard error is locked for the whole write: the process's other log lines go
        // between blocks of whole lines, never inside one.
        let _ = out.write_all(spare).and_then(|()| out.flush());
        spare.clear();
    }
}

#[cfg(test)]
pub(super) fn test_writer(json: bool) -> &'static std::sync::Arc<Mutex<Vec<u8>>> {
    static SINK: OnceLock<std::sync::Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = std::sync::Arc::new(Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        init_to(Box::new(Shared(sink.clone())), json);
        sink
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_does_not_fit_is_dropped_whole_and_counted() {
        let writer = Writer {
            buffer: Mutex::new(vec![b'x'; CAPACITY - 10]),
            wake: Condvar::new(),
            out: Mutex::new((Box::new(Vec::new()), Vec::new())),
            json: false,
            dropped: AtomicU64::new(0),
        };
        writer.append(b"0123456789\n");
        assert_eq!(writer.dropped.load(Relaxed), 1);
        writer.append(b"012345678\n");
        assert_eq!(writer.dropped.load(Relaxed), 1, "a line that fits is kept");
        assert_eq!(writer.buffer.lock().unwrap().len(), CAPACITY);
        writer.write_out();
        assert!(writer.buffer.lock().unwrap().is_empty());
    }
}
