//! What a store folder is: the files that make a folder one, and making a new one (with a
//! `.gitignore`, so raw recordings stay out of the user's repository). `Store::open` creates only
//! in a new or empty folder; `Store::open_existing` opens only a folder that is a store already.

use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::durability::DURABLE_FILE;
use crate::storage::journal::JOURNAL_FILE;

/// Files whose presence makes a folder a store: sled's own and ims-vcr's. Any one is enough, so
/// a store missing some of its files is still opened, and refused as damaged if it is.
const STORE_FILES: [&str; 4] = ["conf", "db", JOURNAL_FILE, DURABLE_FILE];

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
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut other = false;
        for entry in entries {
            let name = entry.map_err(|e| Error::io(path, e))?.file_name();
            if STORE_FILES.iter().any(|f| name == *f) {
                return Ok(Folder::Store);
            }
            other |= name != GITIGNORE;
        }
        Ok(if other {
            Folder::Other("it holds other files and none of a store's")
        } else {
            Folder::Empty
        })
    }
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
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
    for dir in parent.into_iter().chain([path]) {
        let file = dir.join(GITIGNORE);
        if let Err(e) = std::fs::write(&file, GITIGNORE_TEXT) {
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
