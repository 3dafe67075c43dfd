//! Storage: the sled-backed store facade, what makes a folder a store, its write-ahead journal,
//! the file its recordings are appended to,
//! the replay pack codec, and the note a clean close leaves for a quick replay.

pub mod closed;
pub mod durability;
pub mod folder;
pub mod journal;
pub mod layout;
pub mod log_file;
pub mod pack;
pub(crate) mod reservation;
pub(crate) mod sliced_io;
pub mod snapshot;
pub mod store;

/// `options` set not to follow a symbolic link at the file's own name (`O_NOFOLLOW`): the files
/// ims-vcr keeps in a store folder (the journal, the log, the holder's note) are its own, and a
/// link planted there must not get another file truncated or overwritten. Opening one fails
/// (`ELOOP`, "too many levels of symbolic links"), and the error names it.
pub(crate) fn own_file(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// The text of one of ims-vcr's own files in a store folder, never through a link planted at
/// its name (see [`own_file`]).
pub(crate) fn read_own(path: &std::path::Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut own_file(std::fs::OpenOptions::new().read(true)).open(path)?, &mut text)?;
    Ok(text)
}

/// Writes `bytes` to a new file at `path` (a temporary file renamed into place after, or a note
/// rewritten whole): what is there is removed first, and the file is created exclusively, so a
/// link planted at the name is removed, never written through.
pub(crate) fn write_new(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    std::io::Write::write_all(&mut file, bytes)
}

/// Syncs the folder `dir` itself, so that files created, renamed or deleted in it stay so after a
/// power loss (a file's own sync does not cover its name). Where a file system cannot sync a
/// folder this fails; callers say whether that is an error or a warning.
pub(crate) fn sync_folder(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
