//! Files written whole or not at all: through an exclusively created temporary file beside the
//! target and a rename (cassettes, HAR exports).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` via a temporary file in the same folder and a rename, so a crash
/// never leaves a half-written file.
///
/// The temporary file has an unpredictable name and is created exclusively (`O_EXCL`, which
/// never follows a symlink), so nothing planted in the folder can redirect the write. `path`
/// itself must not be a symlink (the write would replace the link, not reach the file it
/// points to, which is never what was meant) nor name a folder.
///
/// Once written, the temporary files an earlier write of the same `path` left (a `kill -9`
/// mid-write: `.<name>.<16 hex digits>.tmp`, as large as what it wrote) are removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let started = std::time::SystemTime::now();
    stage(path, bytes)?.commit()?;
    if let (Some(name), Some(folder)) = (path.file_name().and_then(|n| n.to_str()), path.parent()) {
        let folder = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
        remove_leftovers(folder, started, |leftover| is_temporary_of(leftover, name));
    }
    Ok(())
}

/// Whether `name` is a temporary file [`create_temporary`] makes for a file named `target`.
fn is_temporary_of(name: &str, target: &str) -> bool {
    let inner = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp"));
    inner.and_then(|inner| inner.rsplit_once('.')).is_some_and(|(of, random)| {
        of == target && random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A file written whole under its temporary name, not yet renamed to its own: [`Staged::commit`]
/// puts it in place; dropped uncommitted, the temporary file is removed. An export stages every
/// cassette before it puts any in place, so one that cannot be written (a full disk) leaves the
/// folder as it was.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Renames the temporary file to its own name.
    pub fn commit(mut self) -> Result<()> {
        let renamed = std::fs::rename(&self.tmp, &self.path);
        self.committed = renamed.is_ok();
        renamed.map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// [`write_atomically`]'s first half: `bytes` written to a temporary file beside `path`.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged> {
    use std::io::Write as _;
    let not_a_file = || {
        Error::Config(format!(
            "{}: names a folder, not a file: give the file to write, e.g. recording.har",
            path.display()
        ))
    };
    let file_name = path.file_name().ok_or_else(not_a_file)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::Config(format!(
                "{}: is a symlink; ims-vcr does not write through symlinks: remove it or write elsewhere",
                path.display()
            )));
        }
        Ok(meta) if meta.is_dir() => return Err(not_a_file()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    let (tmp, mut file) = create_temporary(path, file_name)?;
    let staged = Staged {
        tmp,
        path: path.to_owned(),
        committed: false,
    };
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| Error::io(path, e))?;
    Ok(staged)
}

/// Whether `name` is one [`create_temporary`] makes for a file named `*.json`
/// (`.<name>.json.<16 hex digits>.tmp`): what a write interrupted by a crash or a `kill -9`
/// leaves behind.
pub fn is_leftover_cassette_temporary(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((target, random)) = inner.rsplit_once('.') else {
        return false;
    };
    target.to_ascii_lowercase().ends_with(".json")
        && random.len() == 16
        && random.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the temporary files an interrupted export left in `folder` (see
/// [`is_leftover_cassette_temporary`]) last written before `before`
/// (an export started later into the same folder writes its own meanwhile); one that cannot be
/// removed is left, with a warning.
pub(crate) fn remove_leftover_temporaries(folder: &Path, before: std::time::SystemTime) {
    remove_leftovers(folder, before, is_leftover_cassette_temporary);
}

/// Removes the files in `folder` whose names `leftover` says are what an interrupted write
/// left, last written before `before`; one that cannot be removed is left, with a warning.
fn remove_leftovers(folder: &Path, before: std::time::SystemTime, leftover: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let leftover = name.to_str().is_some_and(&leftover);
        let older = || {
            (entry.metadata())
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified <= before)
        };
        if leftover && entry.file_type().is_ok_and(|t| t.is_file()) && older() {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "removed what an interrupted export left"),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot remove what an interrupted export left"),
            }
        }
    }
}

/// A new, exclusively created file next to `path`: `.<name>.<random>.tmp`.
fn create_temporary(
    path: &Path,
    file_name: &std::ffi::OsStr,
) -> Result<(PathBuf, std::fs::File)> {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut last = None;
    for attempt in 0..16u32 {
        // RandomState is seeded from the OS for each process; the time, the process id and
        // the attempt make every name differ within one too.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(attempt);
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".{:016x}.tmp", hasher.finish()));
        let tmp = path.with_file_name(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            // Named as the file asked for: the temporary name is ims-vcr's own business.
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Err(Error::io(
        path,
        last.unwrap_or_else(|| std::io::Error::other("no free temporary name")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_cannot_be_made_is_named_as_asked_not_by_its_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-folder").join("recording.har");
        let error = write_atomically(&path, b"{}").unwrap_err().to_string();
        assert!(error.contains("no-such-folder/recording.har"), "{error}");
        assert!(!error.contains(".recording.har."), "{error}");
        write_atomically(&dir.path().join("recording.har"), b"{}").unwrap();
        assert_eq!(std::fs::read(dir.path().join("recording.har")).unwrap(), b"{}");
    }

    /// What a killed write of a file left (its temporary file) goes with the next write of the
    /// same file; another file's, or a name that only looks alike, stays.
    #[test]
    fn a_killed_writes_temporary_file_goes_with_the_next_write_of_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(".recording.har.0123456789abcdef.tmp");
        let others = [".other.har.0123456789abcdef.tmp", ".recording.har.xyz.tmp", "recording.har.bak"];
        std::fs::write(&left, "half a HAR").unwrap();
        for other in others {
            std::fs::write(dir.path().join(other), "x").unwrap();
        }
        write_atomically(&dir.path().join("recording.har"), b"{}").unwrap();
        assert!(!left.exists());
        for other in others {
            assert!(dir.path().join(other).exists(), "{other}");
        }
    }
}
