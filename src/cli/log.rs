//! Where the log and the commands' messages go: standard error, and, when standard error is a
//! pipe or a socket, through a thread of its own, so that a proxy never waits for its reader.
//!
//! A harness that starts `ims-vcr` with a pipe as standard error and reads it only at the end
//! (Python's `subprocess.Popen(..., stderr=PIPE)` and `communicate()` after the tests) used to
//! stop it dead: once the pipe was full (64 KiB on Linux, some 300 replay misses), the next log
//! line waited for a reader, on a thread that was serving requests, and every request waited with
//! it; a `SIGTERM` then could not even print the exit summary, so the harness's wait for the
//! process never ended. Now a line for a pipe is queued for a writer thread, and a line that
//! finds [`QUEUED_LINES`] lines already queued is dropped and counted: the requests never wait,
//! and at exit the queue is given up to [`EXIT_WAIT`] to drain before the process ends (the
//! dropped lines are counted in a last line when there were any). A terminal or a file is
//! written directly, line by line as before: neither is left unread, and a test reading a log
//! file finds each line there as soon as it was logged.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// How many lines may wait for a slow (or absent) reader of a piped standard error before the
/// next is dropped: a miss report is a few lines of up to a few KiB, so at most some tens of MiB.
pub const QUEUED_LINES: usize = 8192;

/// How long the end of the process waits for the queued lines (and the exit summary) to be
/// written to a pipe whose reader is slow or gone.
pub const EXIT_WAIT: Duration = Duration::from_secs(2);

/// The writer thread of a piped standard error, once [`init`] has started it.
static PIPED: OnceLock<Piped> = OnceLock::new();

struct Piped {
    queue: SyncSender<Message>,
    dropped: AtomicUsize,
}

enum Message {
    Text(Vec<u8>),
    /// Everything before it is written: say so on the channel.
    Flushed(SyncSender<()>),
}

/// Sets up the log (`RUST_LOG`, else INFO, and `ims_vcr` at DEBUG with `verbose`) on standard
/// error, and, when standard error is a pipe or a socket, the thread that writes it. The returned
/// guard waits (at most [`EXIT_WAIT`]) for what is queued when it is dropped: keep it until the
/// process ends.
pub fn init(verbose: bool) -> LogGuard {
    if stderr_is_pipe() {
        start_writer();
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(if verbose {
                "info,ims_vcr=debug"
            } else {
                "info"
            })
        }))
        .with_writer(|| Stderr)
        // A log line that cannot be written (stderr on a full disk, its reader gone) is lost:
        // by default tracing-subscriber then reports it with `eprintln!`, which panics on the same
        // stderr, and a panic in the middle of the shutdown aborted the recorder (exit 134).
        .log_internal_errors(false)
        .with_ansi(super::colored_logs())
        .fmt_fields(escaped_fields())
        .init();
    LogGuard(())
}

/// The log's fields as tracing-subscriber writes them (the message, then `name=value`), with
/// control characters in every value written visibly (`\x1b`), not only in the message: a
/// field quotes a file name, a folder or a value from a cassette or a request, which could
/// otherwise clear the terminal, set its title or hide lines. The fields tracing-log adds to a
/// `log` record (sled's, rustls': `log.file`, naming the build machine's source paths) are left
/// out, as the default formatter leaves them out.
fn escaped_fields() -> EscapedFields {
    EscapedFields
}

/// See [`escaped_fields`].
struct EscapedFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for EscapedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = EscapedVisitor {
            writer,
            result: Ok(()),
            written: false,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes one event's or span's fields for [`EscapedFields`].
struct EscapedVisitor<'w> {
    writer: tracing_subscriber::fmt::format::Writer<'w>,
    result: std::fmt::Result,
    /// Whether a field was written (the next one is preceded by a space).
    written: bool,
}

impl tracing::field::Visit for EscapedVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let text = format!("{value:?}");
        let text = crate::tools::escape_controls(&text);
        let space = if self.written { " " } else { "" };
        self.result = match field.name() {
            "message" => write!(self.writer, "{space}{text}"),
            name => write!(self.writer, "{space}{name}={text}"),
        };
        self.written = true;
    }
}

/// Waits, when dropped, for the lines queued for a piped standard error (see [`init`]).
pub struct LogGuard(());

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(piped) = PIPED.get() else { return };
        let deadline = Instant::now() + EXIT_WAIT;
        let dropped = piped.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let line = format!(
                "ims-vcr: {dropped} log line(s) dropped: standard error (a pipe) was not read as \
                 fast as they were written\n"
            );
            send_until(piped, Message::Text(line.into_bytes()), deadline);
        }
        let (flushed, written) = std::sync::mpsc::sync_channel(1);
        if send_until(piped, Message::Flushed(flushed), deadline) {
            let _ = written.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

/// Queues `message`, trying again until `deadline` while the queue is full.
fn send_until(piped: &Piped, mut message: Message, deadline: Instant) -> bool {
    loop {
        match piped.queue.try_send(message) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                message = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TrySendError::Full(_)) => return false,
        }
    }
}

fn start_writer() {
    let (queue, lines) = std::sync::mpsc::sync_channel(QUEUED_LINES);
    let spawned = std::thread::Builder::new()
        .name("ims-vcr-stderr".into())
        .spawn(move || write_lines(&lines));
    // Without its thread (no thread to be had), standard error is written directly.
    if spawned.is_ok() {
        let _ = PIPED.set(Piped {
            queue,
            dropped: AtomicUsize::new(0),
        });
    }
}

/// The writer thread: each text as it comes, a failed write lost (there is nowhere left to report
/// it, and the process must not depend on its log).
fn write_lines(lines: &Receiver<Message>) {
    let stderr = std::io::stderr();
    for message in lines {
        match message {
            Message::Text(text) => {
                let mut err = stderr.lock();
                let _ = err.write_all(&text).and_then(|()| err.flush());
            }
            Message::Flushed(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Whether standard error is a pipe or a socket: what a reader may leave unread.
fn stderr_is_pipe() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        use std::os::unix::fs::FileTypeExt as _;
        let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
            return false;
        };
        std::fs::File::from(fd)
            .metadata()
            .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
    }
    #[cfg(not(unix))]
    false
}

/// Standard error as the log and the commands write it: each `write` is one whole line (or
/// message), queued when standard error is piped (see [`init`]), written directly otherwise.
/// Never fails: a line that cannot be written is lost.
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, text: &[u8]) -> std::io::Result<usize> {
        write_text(text);
        Ok(text.len())
    }

    fn write_all(&mut self, text: &[u8]) -> std::io::Result<()> {
        write_text(text);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One line on standard error, as the log writes it (see [`init`]): for the binary's last words
/// (an error, a verdict), after everything the command logged.
///
/// Control characters are written visibly (`\x1b`, line feeds and tabs kept): an error quotes
/// file names, field names and values from cassettes, HAR files and flags, which could
/// otherwise clear the terminal, set its title or hide lines.
pub fn say(line: &str) {
    let line = crate::tools::escape_controls(line);
    write_waiting(format!("{line}\n").as_bytes());
}

/// Writes `text` to standard error as [`write_text`] does, but a queue that is full is waited
/// for (at most [`EXIT_WAIT`]) instead of dropping it: the commands' own messages (the exit
/// summary, a verdict, an error) are not dropped with the log's lines when a reader is slow.
pub(crate) fn write_waiting(text: &[u8]) {
    match PIPED.get() {
        Some(piped) => {
            let deadline = Instant::now() + EXIT_WAIT;
            if !send_until(piped, Message::Text(text.to_vec()), deadline) {
                piped.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => write_text(text),
    }
}

/// Writes `text` to standard error (see [`Stderr`]).
pub(crate) fn write_text(text: &[u8]) {
    match PIPED.get() {
        Some(piped) => {
            if let Err(TrySendError::Full(_)) = piped.queue.try_send(Message::Text(text.to_vec())) {
                piped.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text).and_then(|()| err.flush());
        }
    }
}
