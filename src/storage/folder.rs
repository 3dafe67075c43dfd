//! What a store folder is: the files that make a folder one, and making a new one (with a
//! `.gitignore`, so raw recordings stay out of the user's repository). `Store::open` creates only
//! in a new or empty folder; `Store::open_existing` opens only a folder that is a store already.

use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::durability::{DURABLE_FILE, HOLDER_FILE};
use crate::storage::journal::JOURNAL_FILE;
use crate::storage::log_file::LOG_FILE;

/// Files whose presence makes a folder a store: ims-vcr's own (any one is enough, so a store
/// missing some of its files is still opened, and refused as damaged if it is), or sled's two
/// together ([`SLED_PAIR`]: a store older than ims-vcr's own files). One generic name alone (a
/// user's `db` or `conf`) does not: such a folder is someone else's, and nothing is written in it.
const STORE_FILES: [&str; 3] = [JOURNAL_FILE, LOG_FILE, DURABLE_FILE];

/// sled's files: both make a folder a store (see [`STORE_FILES`]).
const SLED_PAIR: [&str; 2] = ["conf", "db"];

/// Files a store holds besides [`STORE_FILES`]: alone (with a `.gitignore`), they are a store
/// another process is creating this moment (sled makes `blobs` before its `conf` and `db`), and
/// a second recorder started with it is told the store is in use, not that the folder holds
/// other things.
const STORE_PARTS: [&str; 2] = ["blobs", HOLDER_FILE];

/// What is at a `--store` path.
#[derive(Debug, PartialEq, Eq)]
enum Folder {
    /// Nothing: a store may be created there.
    Missing,
    /// An empty folder (a `.gitignore` aside): a store may be created there.
    Empty,
    /// A store (it holds at least one of [`STORE_FILES`]).
    Store,
    /// A file, or a folder holding other things (a cassette folder, a source tree).
    Other(&'static str),
}

impl Folder {
    /// What is at `path`.
    fn at(path: &Path) -> Result<Folder> {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Folder::Missing),
            Err(_) if path.is_file() => return Ok(Folder::Other("it is a file")),
            // Under a file (`afile/store`), or a folder that cannot be read.
            Err(e) => {
                return Err(Error::Config(format!(
                    "--store {}: cannot read the folder: {e}",
                    path.display()
                )));
            }
        };
        let (mut other, mut parts, mut sled) = (false, false, 0);
        for entry in entries {
            let name = entry.map_err(|e| Error::io(path, e))?.file_name();
            if STORE_FILES.iter().any(|f| name == *f) {
                return Ok(Folder::Store);
            }
            let of_sled = SLED_PAIR.iter().any(|f| name == *f);
            sled += usize::from(of_sled);
            let part = STORE_PARTS.iter().any(|f| name == *f);
            parts |= part;
            other |= name != GITIGNORE && !part && !of_sled;
        }
        // One of sled's files beside a store's parts only: a store sled is creating this moment
        // (it makes `blobs`, then `conf`, then `db`), or one that lost a file (refused as damaged
        // once opened). Alone, or beside other files, a user's.
        let foreign = other || (sled > 0 && !parts);
        Ok(match (sled == SLED_PAIR.len(), foreign, parts) {
            (true, _, _) => Folder::Store,
            (false, true, _) => Folder::Other("it holds other files and none of a store's"),
            (false, false, true) => Folder::Store,
            (false, false, false) => Folder::Empty,
        })
    }
}

/// Whether `path` is a store folder (holds a store's files), for messages that tell a store from
/// a cassette folder; anything that cannot be read is none.
pub fn is_store(path: &Path) -> bool {
    matches!(Folder::at(path), Ok(Folder::Store))
}

/// Written into a store folder the store creates, so its recordings (raw owner and project ids
/// until exported with `--redact`) are not committed by accident.
const GITIGNORE: &str = ".gitignore";

/// What [`GITIGNORE`] says: ignore everything here, this file included.
const GITIGNORE_TEXT: &str = "# Written by ims-vcr: a store holds raw recordings (owner and project ids).\n\
                              # Share them as cassettes: `ims-vcr export --redact --out DIR`.\n\
                              *\n";

/// The parent folder of the default store (`.ims-vcr/store`): ignored too when the store made it.
const DEFAULT_PARENT: &str = ".ims-vcr";

/// Makes the folder of a new store, with a [`GITIGNORE`] in it, and in the `.ims-vcr` folder
/// above it when that folder is new too. sled ignores files it does not know, and the store
/// checks only its own, so the extra file changes nothing else. Failing to write it is a
/// warning: the store itself is fine.
fn create_folder(path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == DEFAULT_PARENT) && !p.exists());
    std::fs::create_dir_all(path).map_err(|e| {
        Error::Config(format!("--store {}: cannot make the store's folder: {e}", path.display()))
    })?;
    for dir in parent.into_iter().chain([path]) {
        let file = dir.join(GITIGNORE);
        // One the folder holds already (the user's) is kept as it is.
        let written = std::fs::OpenOptions::new().write(true).create_new(true).open(&file);
        let written = match written {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let ignores_all = std::fs::read_to_string(&file).is_ok_and(|text| text.lines().any(|l| l.trim() == "*"));
                if !ignores_all {
                    tracing::warn!(file = %file.display(), "the store's folder has a .gitignore that does not ignore everything (`*`); the store holds raw recordings (owner and project ids): keep it out of version control");
                }
                continue;
            }
            written => written.and_then(|mut f| std::io::Write::write_all(&mut f, GITIGNORE_TEXT.as_bytes())),
        };
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "cannot write a .gitignore for the store; keep it out of version control yourself");
        }
    }
    Ok(())
}

/// Checks that `path` is a store folder, or makes a new one when `path` is missing or an empty
/// folder. A file, or a folder holding anything else, is refused.
pub(crate) fn find_or_make(path: &Path) -> Result<()> {
    match Folder::at(path)? {
        Folder::Store => Ok(()),
        Folder::Missing | Folder::Empty => create_folder(path),
        Folder::Other(why) => Err(Error::NotAStore {
            path: path.to_owned(),
            reason: format!(
                "{why}; `record`, `auto` and `import` make a store only in a new or empty folder"
            ),
        }),
    }
}

/// Checks that `path` is a store folder, changing nothing.
pub(crate) fn find(path: &Path) -> Result<()> {
    let why = match Folder::at(path)? {
        Folder::Store => return Ok(()),
        Folder::Missing => "no such folder",
        Folder::Empty => "the folder is empty",
        Folder::Other(why) => why,
    };
    Err(Error::NotAStore {
        path: path.to_owned(),
        reason: format!(
            "{why}; a store is made by `ims-vcr record`, `auto` or `import`, and a folder of \
             cassette files is read with --cassettes"
        ),
    })
}

/// Past this (32 MiB), a store whose sled files and log take more than [`OUTGROWN_FACTOR`] times
/// its replay pack has outgrown what it holds (see [`outgrown`]).
const OUTGROWN_SLACK: u64 = 32 * 1024 * 1024;
/// See [`OUTGROWN_SLACK`].
const OUTGROWN_FACTOR: u64 = 4;

/// The bytes sled's files (its log and config, snapshots and `blobs/`) and the store's log take in
/// the store at `dir`, and its replay pack's (what is current), when the first are more than four
/// times the pack's and 32 MiB besides: a store recorded again session after session, whose log
/// keeps every answer replaced (and sled the room of the answers it held). `None` otherwise, or
/// when the sizes cannot be read.
pub(crate) fn outgrown(dir: &Path) -> Option<(u64, u64)> {
    use crate::storage::closed::{SLED_FILES, SNAPSHOT_PREFIX};
    let pack = std::fs::metadata(dir.join(crate::storage::snapshot::PACK_FILE)).ok()?.len();
    let mut sled = 0;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if SLED_FILES.contains(&name.as_ref())
            || name == LOG_FILE
            || name.starts_with(SNAPSHOT_PREFIX)
        {
            sled += entry.metadata().map_or(0, |m| m.len());
        }
    }
    for entry in std::fs::read_dir(dir.join("blobs")).into_iter().flatten().flatten() {
        sled += entry.metadata().map_or(0, |m| m.len());
    }
    (pack > 0 && sled > OUTGROWN_FACTOR * pack + OUTGROWN_SLACK).then_some((sled, pack))
}

/// `path` as one word of a shell command line: as it is when it holds only letters, digits and
/// `/._-+,:=@%`, else in single quotes (a `'` in it written `'\''`).
pub(crate) fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    match !text.is_empty() && text.chars().all(plain) {
        true => text.into_owned(),
        false => format!("'{}'", text.replace('\'', "'\\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_shown_as_one_shell_word() {
        assert_eq!(shell_word(Path::new("/tmp/ims-vcr/store")), "/tmp/ims-vcr/store");
        assert_eq!(shell_word(Path::new("/tmp/my store")), "'/tmp/my store'");
        assert_eq!(shell_word(Path::new("it's")), r"'it'\''s'");
        assert_eq!(shell_word(Path::new("$HOME")), "'$HOME'");
    }

    #[test]
    fn a_store_being_created_is_a_store_and_a_folder_with_other_files_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Folder::at(dir.path()).unwrap(), Folder::Empty);
        // What another recorder has made of it so far: sled's `blobs`, the holder's note.
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        assert_eq!(Folder::at(dir.path()).unwrap(), Folder::Store);
        std::fs::write(dir.path().join(HOLDER_FILE), "pid 1: ims-vcr record").unwrap();
        assert_eq!(Folder::at(dir.path()).unwrap(), Folder::Store);
        // Beside a file of the user's, those names make no store.
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert!(matches!(Folder::at(dir.path()).unwrap(), Folder::Other(_)));
    }

    /// A user's `db` or `conf` alone is no store, whatever else the folder holds; sled's two
    /// together are (an older store), and any one of ims-vcr's own files.
    #[test]
    fn one_generic_name_alone_makes_no_store() {
        for (files, store) in [
            (&["db"][..], false),
            (&["conf"], false),
            (&["db", "notes.txt"], false),
            (&["conf", "blobs", "notes.txt"], false),
            // sled creating a store: `blobs`, then `conf`.
            (&["conf", "blobs"], true),
            (&["conf", "db"], true),
            (&["conf", "db", "snap.0000"], true),
            (&[JOURNAL_FILE, "notes.txt"], true),
            (&[LOG_FILE], true),
        ] {
            let dir = tempfile::tempdir().unwrap();
            for name in files {
                std::fs::write(dir.path().join(name), "x").unwrap();
            }
            let found = Folder::at(dir.path()).unwrap();
            assert_eq!(found == Folder::Store, store, "{files:?}: {found:?}");
        }
    }

    /// A `.gitignore` the folder holds already is the user's, kept as it is.
    #[test]
    fn a_users_gitignore_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join(GITIGNORE), "mine\n").unwrap();
        find_or_make(&store).unwrap();
        assert_eq!(std::fs::read_to_string(store.join(GITIGNORE)).unwrap(), "mine\n");
        let fresh = dir.path().join("fresh");
        find_or_make(&fresh).unwrap();
        assert_eq!(std::fs::read_to_string(fresh.join(GITIGNORE)).unwrap(), GITIGNORE_TEXT);
    }

    #[test]
    fn a_store_is_outgrown_when_sleds_files_are_many_times_its_pack() {
        let dir = tempfile::tempdir().unwrap();
        let sized = |name: &str, bytes: u64| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::File::create(path).unwrap().set_len(bytes).unwrap();
        };
        const MIB: u64 = 1024 * 1024;
        sized("db", 20 * MIB);
        // No pack yet: nothing to compare with.
        assert_eq!(outgrown(dir.path()), None);
        sized(crate::storage::snapshot::PACK_FILE, 2 * MIB);
        assert_eq!(outgrown(dir.path()), None, "40 MiB over the pack's 4x is the bar");
        // sled's blobs and snapshots, and the log, count with its db; the journal and the pack
        // do not.
        sized("blobs/1234", 16 * MIB);
        sized("snap.00000001", 5 * MIB);
        sized(LOG_FILE, 3 * MIB);
        sized(JOURNAL_FILE, 100 * MIB);
        assert_eq!(outgrown(dir.path()), Some((44 * MIB, 2 * MIB)));
    }
}
