//! Writing a folder of cassettes (`export`): one file per recording, each in its session's
//! folder, written whole or not at all, checked before the first is written, and the folder
//! kept a mirror of the store (stale cassettes removed, anything else left alone).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::formats::atomic::stage;
use crate::formats::cassette::{
    MAX_CASSETTE_FILE, cassette_paths, file_name, file_name_with_full_digest, is_exported_name,
    parse_in, render, session_dir,
};
use crate::formats::unchanged::same_answers;
use crate::model::key::MatchRules;
use crate::model::recording::Recording;

/// What an export did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Cassette files written (one per recorded request).
    pub files: usize,
    /// Answers across all files.
    pub answers: usize,
    /// Stale cassette files removed (requests no longer in the store), in path order.
    pub removed: Vec<PathBuf>,
    /// Cassette files left as they were: they already held these answers, recorded at another
    /// time, at another speed or by another ims-vcr version ([`same_answers`]).
    pub unchanged: usize,
}

/// Writes one file per recording into `dir` (created if needed). Each file is written to a
/// temporary name, and once every one is, they are renamed, so a crash never leaves a
/// half-written cassette and a write that fails leaves the folder as it was (see
/// [`crate::formats::atomic::write_atomically`]); a symlink or a folder at a cassette's name fails the export before
/// anything is written. Older cassette files in `dir` for requests no longer recorded are
/// removed so the folder mirrors the store; files that are not ims-vcr cassettes are left
/// alone.
#[cfg(any(test, feature = "internals"))]
pub fn write_dir(
    dir: &Path,
    recordings: &[Recording],
    rules: &MatchRules,
) -> Result<ExportSummary> {
    write_dir_with_progress(dir, recordings, rules, true, &indicatif::ProgressBar::hidden())
}

/// [`write_dir`], advancing `progress` once per file written; stale cassettes are removed only
/// when `remove_stale` (an export that left damaged entries out keeps them: one may be theirs).
pub fn write_dir_with_progress(
    dir: &Path,
    recordings: &[Recording],
    rules: &MatchRules,
    remove_stale: bool,
    progress: &indicatif::ProgressBar,
) -> Result<ExportSummary> {
    let started = std::time::SystemTime::now();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Listed before anything is written: a file that cannot be listed (a symlink to nothing,
    // a pipe) fails the export with the folder as it was, not half updated.
    let existing = cassette_paths(dir)?;
    let hand_named = hand_named(dir, &existing);
    // Keyed by path: a session's cassettes go to the folder of its name.
    let mut files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let mut sources: HashMap<PathBuf, &Recording> = HashMap::new();
    for recording in recordings {
        let folder = session_dir(dir, recording.key.session());
        let mut path = folder.join(file_name(recording));
        if files.contains_key(&path) {
            // 48 bits of digest collided: fall back to the full digest for this one.
            path = folder.join(file_name_with_full_digest(recording));
        }
        // A request a hand-named cassette holds (`image_404.json`) is written there, unless the
        // folder has its exported file too: beside it, the folder would record the request
        // twice, which import and replay refuse.
        if let Some(named) = hand_named.get(recording.key.digest())
            && std::fs::symlink_metadata(&path).is_err()
        {
            path = named.clone();
        }
        files.insert(path.clone(), render(recording, rules));
        sources.insert(path, recording);
    }
    // What import and replay would refuse is not written: checked before anything is, so the
    // folder stays as it was.
    if let Some(error) = too_large(&files, MAX_CASSETTE_FILE) {
        return Err(error);
    }
    // Nor is anything when a cassette's name or its session's folder is taken by what the
    // export must not write through or replace (a symlink, a folder, a file where the folder
    // goes): found mid-way, the folder would be left half updated.
    if let Some(error) = blocked_target(dir, &files) {
        return Err(error);
    }
    let mut summary = ExportSummary {
        files: files.len(),
        answers: recordings.iter().map(|r| r.answers.len()).sum(),
        removed: Vec::new(),
        unchanged: 0,
    };
    let written: HashSet<[u8; 32]> = recordings.iter().map(|r| *r.key.digest()).collect();
    let existing = if remove_stale { existing } else { Vec::new() };
    // What an export interrupted by a crash or a `kill -9` left in the folders this one writes
    // (half-written `.NAME.json.<random>.tmp` files): removed, so `git add` never takes them.
    let folders: std::collections::BTreeSet<&Path> = std::iter::once(dir)
        .chain(files.keys().filter_map(|path| path.parent()))
        .collect();
    for folder in folders {
        crate::formats::atomic::remove_leftover_temporaries(folder, started);
    }
    // Every changed cassette is written under its temporary name first, and only then are they
    // all renamed into place: one that cannot be written (a full disk) leaves the folder as it
    // was, the temporary files removed, rather than half old and half new.
    let mut staged = Vec::new();
    for (path, bytes) in &files {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
        }
        // Recording the same answers again rewrites no cassette, so a diff shows only what the
        // API changed. Only a regular file of about the new one's size is read: never through
        // a symlink (which `stage` refuses), nor a device or a FIFO at the name.
        let comparable = std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_file() && m.len() <= bytes.len() as u64 + 4096);
        let old = comparable.then(|| std::fs::read(path).ok()).flatten();
        if old.as_ref().is_some_and(|old| same_answers(old, bytes)) {
            summary.unchanged += 1;
        } else {
            // A changed cassette keeps when and how fast each answer that did not change was
            // recorded, so its diff shows only the answers that did.
            let carried = (old.as_deref())
                .and_then(|old| keep_unchanged_answers_times(dir, path, old, sources[path], rules));
            staged.push(stage(path, carried.as_deref().unwrap_or(bytes))?);
        }
        progress.inc(1);
    }
    for file in staged {
        file.commit()?;
    }
    for path in existing {
        // A symlink is left alone like any file that is not a cassette: reading or removing
        // through it would reach outside the folder.
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if !files.contains_key(&path) && !is_link && looks_like_cassette(dir, &path, &written) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            tracing::debug!(file = %path.display(), "removed a stale cassette");
            summary.removed.push(path);
        }
    }
    // A session no longer recorded leaves no empty folder behind (nor do the folders above it,
    // up to `dir`): `remove_dir` takes only an empty one, so nothing else is touched.
    for path in &summary.removed {
        let mut folder = path.parent();
        while let Some(f) = folder.filter(|f| *f != dir && f.starts_with(dir)) {
            if std::fs::remove_dir(f).is_err() {
                break;
            }
            folder = f.parent();
        }
    }
    summary.removed.sort();
    Ok(summary)
}

/// `recording` rendered with the `recorded_at` and `latency_ms` of each answer the cassette at
/// `path` (`old`, its bytes) holds at the same place with the same status, headers, body and
/// origins; `None` when no answer's differ or `old` does not read as a cassette.
fn keep_unchanged_answers_times(
    dir: &Path,
    path: &Path,
    old: &[u8],
    recording: &Recording,
    rules: &MatchRules,
) -> Option<Vec<u8>> {
    let (old, _) = parse_in(dir, path, old).ok()?;
    let mut kept = recording.clone();
    let mut any = false;
    for (was, now) in old.answers.iter().zip(kept.answers.iter_mut()) {
        let (was, now) = (&was.response, &mut now.response);
        let same = was.status == now.status
            && was.headers == now.headers
            && was.body == now.body
            && was.upstream == now.upstream
            && was.other_upstreams == now.other_upstreams;
        if same && (was.recorded_at != now.recorded_at || was.latency_ms != now.latency_ms) {
            now.recorded_at.clone_from(&was.recorded_at);
            now.latency_ms = was.latency_ms;
            any = true;
        }
    }
    any.then(|| render(&kept, rules))
}

/// The error naming the first of `files` (rendered cassettes, all under `dir`) whose path the
/// export cannot write: a symlink or a folder at its name, or, at any folder between `dir` and
/// it (a session's, `suite/` of `suite/t1`), something other than a folder (a file, a symlink:
/// written through, it would reach outside `dir`). `dir` itself may be a symlink to a folder.
fn blocked_target(dir: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Option<Error> {
    let mut folders = std::collections::BTreeSet::new();
    for path in files.keys() {
        let mut folder = path.parent();
        while let Some(f) = folder.filter(|f| *f != dir && f.starts_with(dir)) {
            folders.insert(f);
            folder = f.parent();
        }
    }
    for folder in folders {
        match std::fs::symlink_metadata(folder) {
            Ok(meta) if !meta.is_dir() => {
                let what = if meta.file_type().is_symlink() { "a symlink" } else { "a file" };
                return Some(Error::cassette(
                    folder,
                    format!(
                        "is {what} where export writes a session's folder of cassettes; nothing \
                         was written: move it away or export elsewhere"
                    ),
                ));
            }
            _ => {}
        }
    }
    files.keys().find_map(|path| {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let what = match () {
            () if meta.file_type().is_symlink() => "a symlink (ims-vcr does not write through symlinks)",
            () if meta.is_dir() => "a folder",
            () => return None,
        };
        Some(Error::cassette(
            path,
            format!(
                "is {what} where export writes this cassette; nothing was written: move it away \
                 or export elsewhere"
            ),
        ))
    })
}

/// The error naming the first of `files` (rendered cassettes) larger than `limit`.
fn too_large(files: &BTreeMap<PathBuf, Vec<u8>>, limit: u64) -> Option<Error> {
    let (path, bytes) = files.iter().find(|(_, bytes)| bytes.len() as u64 > limit)?;
    Some(Error::cassette(
        path,
        format!(
            "would hold {} MiB, more than the {} MiB a cassette may (import and replay read no \
             larger one); nothing was written. Record fewer or smaller answers for this request",
            bytes.len() >> 20,
            limit >> 20
        ),
    ))
}

/// The valid cassettes among `existing` (in `dir`) that are not named as export names files
/// (a fixture written by hand, `image_404.json`), by the digest of the request each holds.
fn hand_named(dir: &Path, existing: &[PathBuf]) -> HashMap<[u8; 32], PathBuf> {
    existing
        .iter()
        .filter(|path| {
            let exported = path.file_name().and_then(|n| n.to_str()).is_some_and(is_exported_name);
            // A symlink too: its request is written there or nowhere (the write refuses a
            // symlink, naming it), never beside it.
            !exported && std::fs::metadata(path).is_ok_and(|m| m.is_file())
        })
        .filter_map(|path| {
            let bytes = std::fs::read(path).ok()?;
            let (recording, _) = parse_in(dir, path, &bytes).ok()?;
            Some((*recording.key.digest(), path.clone()))
        })
        .collect()
}

/// A cassette an export may remove as stale: one export could have written, i.e. a valid
/// cassette, in `dir` or a session's folder, named exactly as [`file_name`] names what it holds,
/// or named as export names files and holding a request this export writes under another name
/// (an older ims-vcr's key for it: left, it would record the request twice). A fixture written
/// by hand under another name (`image_404.json`), or in a folder that is no session's, is never
/// removed, even when it is a valid cassette.
fn looks_like_cassette(dir: &Path, path: &Path, written: &HashSet<[u8; 32]>) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if !is_exported_name(name) {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    parse_in(dir, path, &bytes).is_ok_and(|(recording, _)| {
        name == file_name(&recording)
            || name == file_name_with_full_digest(&recording)
            || written.contains(recording.key.digest())
    })
}



#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_cassette_keeps_the_times_of_the_answers_that_did_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let rules = MatchRules::default();
        let at = |recording: &mut Recording, times: [&str; 2]| {
            for (answer, time) in recording.answers.iter_mut().zip(times) {
                answer.response.recorded_at = time.to_owned();
                answer.response.latency_ms = time.len() as u64;
            }
        };
        let mut first = crate::model::fixtures::recording("/v2/images", &["queued", "active"]);
        at(&mut first, ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"]);
        write_dir(dir.path(), std::slice::from_ref(&first), &rules).unwrap();
        // Recorded again later: the first answer the same, the second changed.
        let mut again = crate::model::fixtures::recording("/v2/images", &["queued", "killed"]);
        at(&mut again, ["2026-02-02T00:00:00Z", "2026-02-02T00:00:01Z"]);
        write_dir(dir.path(), std::slice::from_ref(&again), &rules).unwrap();
        let file = cassette_paths(dir.path()).unwrap().remove(0);
        let (written, _) = crate::formats::cassette::parse(&file, &std::fs::read(&file).unwrap()).unwrap();
        let times: Vec<&str> = written.answers.iter().map(|a| a.response.recorded_at.as_str()).collect();
        assert_eq!(times, ["2026-01-01T00:00:00Z", "2026-02-02T00:00:01Z"]);
        let body = crate::model::interaction::body_bytes(&written.answers[1].response.body).unwrap();
        assert_eq!(&body[..], br#"{"status":"killed"}"#);
    }

    #[test]
    fn export_checks_every_cassettes_size_before_it_writes_one() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        let files = BTreeMap::from([(dir.path().join("a.json"), vec![b' '; 10]), (big, vec![b' '; 2048])]);
        let err = too_large(&files, 1024).unwrap().to_string();
        assert!(err.contains("big.json") && err.contains("nothing was written"), "{err}");
        assert!(too_large(&files, 4096).is_none());
    }

    #[test]
    fn a_blocked_folder_anywhere_below_the_export_folder_is_named_but_a_symlinked_export_folder_is_fine() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let dir = root.path().join("cassettes");
        std::os::unix::fs::symlink(&real, &dir).unwrap();
        let files = BTreeMap::from([
            (dir.join("a.json"), b"{}".to_vec()),
            (dir.join("suite").join("t1").join("b.json"), b"{}".to_vec()),
        ]);
        assert!(blocked_target(&dir, &files).is_none(), "--out may be a symlink to a folder");
        std::fs::write(real.join("suite"), "a file").unwrap();
        let error = blocked_target(&dir, &files).unwrap().to_string();
        assert!(error.contains("cassettes/suite:") && error.contains("is a file"), "{error}");
        std::fs::remove_file(real.join("suite")).unwrap();
        std::os::unix::fs::symlink(root.path(), real.join("suite")).unwrap();
        let error = blocked_target(&dir, &files).unwrap().to_string();
        assert!(error.contains("is a symlink"), "{error}");
    }
}
