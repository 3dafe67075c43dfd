//! What the commands print. `println!` and `eprintln!` panic when the write fails; here a reader
//! that goes away early (`ims-vcr ls | head -1`) ends the command quietly, as it ends `cat`, and
//! a standard error that cannot be written (a full disk under a log file) loses the message,
//! never the command: nothing a command prints may panic.

use std::io::Write as _;

use crate::error::{Error, Result};

/// Writes `text` to standard output and flushes it. A closed pipe (`EPIPE`: the reader has
/// gone, e.g. `head -1`) is the normal early end of an output command: `Error::ExitCode(0)`,
/// which ends the process with status 0 and prints nothing more. Any other failure names
/// standard output (exit 1).
pub(crate) fn stdout(text: impl AsRef<[u8]>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::ExitCode(0)),
        Err(e) => Err(Error::io("standard output", e)),
    }
}

/// [`stdout`] for a command whose exit status is a verdict (`verify`, `drift`): a closed pipe
/// drops the rest of the report but never the verdict, so `ims-vcr verify | head -1` still exits
/// 3 on findings.
pub(crate) fn report(text: &str) -> Result<()> {
    match stdout(text) {
        Err(Error::ExitCode(0)) => Ok(()),
        other => other,
    }
}

/// Writes `text` to standard error, in order with the log (through its thread when standard
/// error is a pipe: [`super::log`]); a failure to write it is ignored (there is nowhere left to
/// report it, and the command's own work and exit status must not depend on its log).
pub(crate) fn stderr(text: &str) {
    super::log::write_waiting(text.as_bytes());
}

/// `println!` through [`stdout`]: a `Result` to `?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` through [`stderr`]: never fails, never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` through [`stderr`]: never fails, never panics.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(&format!($($arg)*))
    };
}

pub(crate) use {err, errln, outln};
