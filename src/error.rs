//! The error vocabulary of ims-vcr: one enum, messages that name the path, URL, flag or field at
//! fault and, where there is an obvious fix, say it.

use std::path::PathBuf;

/// Everything that can go wrong outside the request path. (Inside it, failures become HTTP answers:
/// see `proxy.rs`.)
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sled store could not be opened because another process holds its lock.
    #[error(
        "store {path} is in use by another process ({holder}); stop that process first, or pass a \
         different --store"
    )]
    StoreLocked {
        /// The store directory.
        path: PathBuf,
        /// Who holds it, as the holder wrote it when it opened the store (`pid N: ims-vcr
        /// SUBCOMMAND`), or a generic description when that is unknown.
        holder: String,
    },
    /// A `--store` that is not a store: missing or empty where one must exist already, or a
    /// folder holding other things (a store is never made inside one).
    #[error("--store {path}: not an ims-vcr store: {reason}")]
    NotAStore {
        /// The folder given as the store.
        path: PathBuf,
        /// What is there instead, and what to do.
        reason: String,
    },
    /// A store whose files cannot be written (read-only folder, file or file system): sled has
    /// no read-only mode, so even reading a store writes to it.
    #[error(
        "store {path} cannot be written ({file}: {source}): ims-vcr opens a store read-write even \
         to read it; make the folder writable, or copy it (`cp -r`) and pass the copy as --store"
    )]
    StoreNotWritable {
        /// The store directory.
        path: PathBuf,
        /// The file or folder that could not be written.
        file: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Any other sled failure, with the store it happened in.
    #[error("store {path}: {}", sled_reason(source))]
    Store {
        /// The store directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// A store whose files were truncated or garbled: sled lost recordings that were on disk, or
    /// found corrupted data. It is refused rather than served short.
    #[error(
        "store {path} is damaged: {reason}; restore the directory from a copy, or `ims-vcr import` \
         exported cassettes into a new --store"
    )]
    StoreDamaged {
        /// The store directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// A store entry that does not decode (torn write, foreign data, older format).
    #[error("store {path}: entry {entry} is corrupt: {reason}")]
    StoreCorrupt {
        /// The store directory.
        path: PathBuf,
        /// Hex of the sled key at fault.
        entry: String,
        /// What failed to decode.
        reason: String,
    },
    /// A cassette file (or a HAR file, named so) that cannot be read or does not validate.
    #[error("{} {}: {reason}", recordings_file_kind(path), path.display())]
    Cassette {
        /// The cassette file.
        path: PathBuf,
        /// What is wrong with it, naming the field when there is one.
        reason: String,
    },
    /// A file-system operation on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for with --listen.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A setting (environment variable, config entry) with a bad value, or anything else the
    /// user must fix before running again.
    #[error("{0}")]
    Config(String),
    /// The store refuses an operation in its current state (a failed write, another format, a
    /// damaged durability marker, too many answers for one request).
    #[error("{0}")]
    StoreRefused(String),
    /// Recordings that cannot be served together (conflicting redaction stamps, keys).
    #[error("{0}")]
    Recordings(String),
    /// A lookup by the user (`show REQUEST`) matched no recording, or more than one.
    #[error("{0}")]
    NoMatch(String),
    /// A failure inside ims-vcr itself (a server task that panicked).
    #[error("{0}")]
    Internal(String),
    /// A flag with a bad value, or a missing one (the message names it). The binary exits with
    /// code 2 for it, as for the errors clap reports.
    #[error("{0}")]
    Usage(String),
    /// A CI verdict failed (`--fail-on-miss`, `--fail-on-unused`, `verify` findings, drift).
    /// The binary exits with code 3 for it.
    #[error("{0}")]
    Verdict(String),
    /// Exit with this status, the cause having been reported already: `run` passes on its
    /// command's non-zero status (128 + N when a signal N ended it, 126/127 when it could not be
    /// started). The binary prints nothing more for it.
    #[error("exit status {0}")]
    ExitCode(u8),
    /// `drift` found no breaking change but could not check some requests: the upstream could
    /// not be reached, or refused the credentials. The binary exits with code 4 for it.
    #[error("{0}")]
    Unchecked(String),
}

/// Exit code of a runtime error (see `cli::exit`, the table every `--help` prints).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage error: a bad or missing flag (clap's own errors exit with it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a failed CI verdict.
pub const EXIT_VERDICT: u8 = 3;
/// Exit code of a `drift` that could not check requests (set-up, not drift).
pub const EXIT_UNCHECKED: u8 = 4;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`Error::Cassette`] calls its file: `HAR file` for a `.har`, else `cassette`.
fn recordings_file_kind(path: &std::path::Path) -> &'static str {
    // `formats::har::is_har_path`'s test, written here: errors sit below every other module.
    match path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("har"))
    {
        true => "HAR file",
        false => "cassette",
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Verdict(_) => EXIT_VERDICT,
            Error::Unchecked(_) => EXIT_UNCHECKED,
            Error::ExitCode(code) => *code,
            _ => EXIT_RUNTIME,
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An I/O error on `file` in the store at `store`: [`Error::StoreNotWritable`] when the
    /// store is read-only, [`Error::Io`] otherwise.
    pub(crate) fn store_io(store: &std::path::Path, file: PathBuf, source: std::io::Error) -> Self {
        use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
        match source.kind() {
            PermissionDenied | ReadOnlyFilesystem => Error::StoreNotWritable {
                path: store.to_owned(),
                file,
                source,
            },
            _ => Error::io(file, source),
        }
    }

    /// A cassette validation error on `path`. A reason quoting a long value (a 70 KB path) is
    /// [`elided`] to [`MAX_REASON`] bytes or so: what is wrong is usually said after the value.
    pub(crate) fn cassette(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        let reason = elided(reason.into(), MAX_REASON);
        Error::Cassette {
            path: path.into(),
            reason,
        }
    }
}

/// The longest reason an [`Error::Cassette`] gives, in bytes.
const MAX_REASON: usize = 2_000;

/// `text` as an error may quote it: longer than `max` bytes, its first and last `max / 2` bytes
/// (at character boundaries) with how many were left out between them, so a reason said after
/// a long value it quotes (a path, a session name) is kept.
pub(crate) fn elided(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let boundary = |mut at: usize| {
        while !text.is_char_boundary(at) {
            at += 1;
        }
        at
    };
    let (head, tail) = (boundary(max / 2), boundary(text.len() - max / 2));
    format!(
        "{}… ({} bytes left out) …{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

/// What sled said, as people read it. sled copies an I/O error as the text of its debug form
/// (`Os { code: 28, kind: StorageFull, message: "No space left on device" }`) each time it
/// clones one; that is turned back into the system's own words: `No space left on device (os
/// error 28)`.
fn sled_reason(error: &sled::Error) -> String {
    let sled::Error::Io(io) = error else {
        return error.to_string();
    };
    if io.raw_os_error().is_some() {
        return io.to_string();
    }
    let text = io.to_string();
    // Cloned twice, the debug form of the debug form: `Custom { kind: .., error: "Os { code: ..`.
    let code = text
        .find("Os { code: ")
        .map(|at| &text[at + "Os { code: ".len()..])
        .and_then(|rest| rest.split(',').next())
        .and_then(|code| code.parse::<i32>().ok());
    match code {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => {
            // `Custom { kind: Other, error: "boom" }`, once or more: the innermost message.
            let mut reason = text.as_str().to_owned();
            while let Some(inner) = reason
                .strip_prefix("Custom { kind: ")
                .and_then(|rest| rest.split_once(", error: \""))
                .and_then(|(_, rest)| rest.strip_suffix("\" }"))
            {
                reason = inner.replace("\\\"", "\"").replace("\\\\", "\\");
            }
            if reason.starts_with("Kind(") {
                std::io::Error::from(io.kind()).to_string()
            } else {
                reason
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sled_io_error_reads_as_the_system_says_it() {
        let store = |source: sled::Error| {
            Error::Store {
                path: "st".into(),
                source,
            }
            .to_string()
        };
        let full = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        let expected = format!("store st: {}", std::io::Error::from_raw_os_error(28));
        assert_eq!(store(full.clone()), expected);
        // What sled hands on after cloning it: the debug form as the message.
        assert_eq!(store(full.clone().clone()), expected);
        assert!(!store(full.clone()).contains("Os {"));
        let custom = sled::Error::Io(std::io::Error::other("boom"));
        assert_eq!(store(custom.clone()), "store st: boom");
        assert!(!store(custom.clone().clone()).contains("Custom {"));
        assert_eq!(
            store(sled::Error::Unsupported("x".into())),
            "store st: Unsupported: x"
        );
    }
}
