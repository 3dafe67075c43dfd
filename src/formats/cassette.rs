//! The portable cassette format: one pretty-printed, versioned JSON file per recorded request,
//! holding its answers in order. Export is deterministic (same store, same bytes); import
//! validates every file before anything is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::interaction::{Interaction, RecordedRequest, RecordedResponse};
use crate::model::recording::Recording;
use crate::model::key::{MatchRules, RequestKey};
use crate::secrets::gate::{Gate, Refusal};
use crate::secrets::redact::{RedactionStamp, Redactor};
use crate::formats::strict;
use crate::formats::validate::{validate_request, validate_response};
pub use crate::formats::atomic::write_atomically;
pub use crate::formats::cassette_folder::write_dir_with_progress;
#[cfg(any(test, feature = "internals"))]
pub use crate::formats::cassette_folder::{ExportSummary, write_dir};
#[cfg_attr(not(any(test, feature = "internals")), allow(unused_imports))]
pub use crate::formats::validate::MAX_LATENCY_MS;

/// Version of the cassette file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// One cassette file, as serialised. Field order here is the order in the file.
#[derive(Debug, Serialize, Deserialize)]
struct CassetteFile {
    /// Always [`FORMAT_VERSION`]; files of another version are refused with a clear error.
    format: u32,
    /// `ims-vcr <version>` that wrote the file.
    #[serde(default)]
    tool: String,
    /// The redaction applied (policy and key fingerprint); absent for raw recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redaction: Option<RedactionStamp>,
    /// The match rules the recording was made with; absent for the default rules.
    #[serde(
        default,
        rename = "match",
        skip_serializing_if = "MatchRules::is_default"
    )]
    rules: MatchRules,
    /// The request (as first recorded).
    request: RecordedRequest,
    /// Its answers, oldest first; replay serves them in this order, then repeats the last.
    answers: Vec<RecordedResponse>,
}

/// The file name for a recording: method, a slug of the path, and 12 hex digits of the key
/// digest. Only `[a-z0-9._-]`, never a leading dot, never a separator: it cannot leave `--out`
/// whatever the request path holds.
pub fn file_name(recording: &Recording) -> String {
    let request = &recording.answers[0].request;
    let mut slug = String::new();
    for ch in request.path.chars() {
        let mapped = match ch {
            'a'..='z' | '0'..='9' | '-' => ch,
            'A'..='Z' => ch.to_ascii_lowercase(),
            _ => '_',
        };
        if !(mapped == '_' && (slug.is_empty() || slug.ends_with('_'))) {
            slug.push(mapped);
        }
        if slug.len() >= 80 {
            break;
        }
    }
    let slug = slug.trim_end_matches('_');
    let slug = if slug.is_empty() { "root" } else { slug };
    let method: String = request
        .method
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{method}_{slug}_{}.json", &recording.key.hex()[..12])
}

/// [`file_name`] with the key's full digest, for when 12 hex digits collide within an export.
pub(crate) fn file_name_with_full_digest(recording: &Recording) -> String {
    let hex = recording.key.hex();
    file_name(recording).replace(&hex[..12], &hex)
}

/// Whether `name` has the shape [`file_name`] gives (`{method}_{slug}_{hex}.json`, 12 or 64
/// lowercase hex digits, the full digest being the fallback when 12 collide).
pub(crate) fn is_exported_name(name: &str) -> bool {
    let Some((rest, hex)) = name
        .strip_suffix(".json")
        .and_then(|stem| stem.rsplit_once('_'))
    else {
        return false;
    };
    let Some((method, slug)) = rest.split_once('_') else {
        return false;
    };
    matches!(hex.len(), 12 | 64)
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && method.len() <= 16
        && method.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
        && !slug.is_empty()
        && slug.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

/// Renders a recording (made under `rules`) as the bytes of its cassette file.
pub fn render(recording: &Recording, rules: &MatchRules) -> Vec<u8> {
    let file = CassetteFile {
        rules: rules.clone(),
        format: FORMAT_VERSION,
        tool: format!("ims-vcr {}", env!("CARGO_PKG_VERSION")),
        redaction: common_stamp(recording),
        // The session is the folder the file is in, not a field of the file.
        request: RecordedRequest {
            session: None,
            ..recording.answers[0].request.clone()
        },
        answers: recording
            .answers
            .iter()
            .map(|i| i.response.clone())
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).expect("a cassette serialises");
    bytes.push(b'\n');
    bytes
}

/// The stamp shared by every answer (vouching for what any of them vouches for), if they all
/// share one. (Answers recorded under different policies get none, which `verify` reports.)
fn common_stamp(recording: &Recording) -> Option<RedactionStamp> {
    let stamps: Option<Vec<&RedactionStamp>> =
        recording.answers.iter().map(|a| a.redaction.as_ref()).collect();
    crate::secrets::vouch::merge(stamps?.into_iter())
}

/// Parses and validates one cassette file; returns the recording and the match rules it was
/// recorded with.
#[cfg(any(test, feature = "internals"))]
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(Recording, MatchRules)> {
    parse_in_session(path, bytes, None)
}

/// The largest cassette file read (and written: `export` refuses to write what `import` and
/// `replay` would refuse). A cassette is committed to git and read whole; a bigger one is
/// refused by name before it is read. Room for an answer at the 64 MiB body limit
/// (`--max-answer-body`) pretty-printed (compact JSON of many small objects nearly triples) or
/// as base64, several times over.
pub const MAX_CASSETTE_FILE: u64 = 512 << 20;
/// The largest HAR file imported (it is read whole, and a browser's capture of a session may
/// hold many large answers).
pub const MAX_HAR_FILE: u64 = 1 << 30;

/// The bytes of the file at `path` (a `kind`: a cassette, a HAR file); an error naming it when
/// it is larger than `limit`.
pub fn read_limited(path: &Path, limit: u64, kind: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let too_large = || {
        Error::cassette(
            path,
            format!(
                "the file is larger than {} MiB, the most ims-vcr reads of one {kind}",
                limit >> 20,
            ),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // A regular file says its size: refused before a byte is read (a 3 GB file would be read
    // whole into memory first). A pipe or a device says nothing, and is read up to the limit.
    if file.metadata().is_ok_and(|meta| meta.is_file() && meta.len() > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    (&file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// `bytes` without a leading UTF-8 byte order mark (what some Windows editors put first, and
/// not JSON): every reader of cassette and HAR files reads what follows it.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// [`parse`] of a cassette of `session` (the folder it was found in, under the cassettes
/// folder; `None` for the folder itself).
pub fn parse_in_session(
    path: &Path,
    bytes: &[u8],
    session: Option<&str>,
) -> Result<(Recording, MatchRules)> {
    let bytes = without_bom(bytes);
    // UTF-16 (as some Windows editors save): a NUL beside the first character, or its mark.
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") || bytes.get(..2).is_some_and(|two| two.contains(&0)) {
        return Err(Error::cassette(path, "is UTF-16 (or holds NUL bytes); a cassette is JSON in UTF-8: save it as UTF-8"));
    }
    // Named by field (`answers[0].status`), not just line and column; a field no cassette has,
    // a key given twice and bytes after the document are refused (see `strict.rs`).
    let file: CassetteFile = strict::from_slice_known(bytes).map_err(|(field, reason)| {
        // The type's name means nothing to whoever wrote the file (`[]`, `null`).
        let reason = reason
            .replace("struct CassetteFile with 6 elements", "struct CassetteFile")
            .replace(
                "struct CassetteFile",
                "a cassette: a JSON object with `format`, `request` and `answers`",
            );
        match field.as_str() {
            "." | "" => Error::cassette(path, reason),
            _ => Error::cassette(path, format!("field `{field}`: {reason}")),
        }
    })?;
    strict::refuse_duplicate_keys(bytes).map_err(|reason| Error::cassette(path, reason))?;
    if file.format != FORMAT_VERSION {
        return Err(Error::cassette(
            path,
            format!(
                "field `format` is {}, this ims-vcr reads format {FORMAT_VERSION}",
                file.format
            ),
        ));
    }
    validate_request(&file.request).map_err(|r| Error::cassette(path, format!("request.{r}")))?;
    if let Some(stamp) = &file.redaction {
        crate::formats::validate::validate_stamp(stamp).map_err(|r| Error::cassette(path, format!("field `redaction.{r}")))?;
    }
    // Methods are case-sensitive: `get` is a method of its own, which a client sending `GET`
    // never matches. Read as written (a client may send it so), but said.
    let method = &file.request.method;
    let upper = method.to_ascii_uppercase();
    if *method != upper && ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&upper.as_str()) {
        tracing::warn!(
            file = %path.display(),
            "request.method is {method:?}, not {upper:?}: methods are case-sensitive, so a {upper} \
             request never matches this cassette"
        );
    }
    if file.answers.is_empty() {
        return Err(Error::cassette(path, "field `answers` is empty"));
    }
    for (i, answer) in file.answers.iter().enumerate() {
        validate_response(answer)
            .map_err(|r| Error::cassette(path, format!("answers[{i}].{r}")))?;
        // HTTP gives these no body (RFC 9110, 15.3.5, 15.3.6, 15.4.5): served without it, so said.
        let bodiless = matches!(answer.status, 204 | 205 | 304);
        if bodiless && answer.body.as_ref().and_then(|b| b.to_bytes().ok()).is_some_and(|b| !b.is_empty()) {
            tracing::warn!(
                file = %path.display(),
                "answers[{i}] is a {} with a body: HTTP sends none with it, so replay serves it \
                 without one",
                answer.status
            );
        }
    }
    let mut file = file;
    file.request.session = session.map(str::to_owned);
    let rules = file.rules;
    for (field, list) in [("ignore_query", &rules.ignore_query), ("shift_time", &rules.shift_time)] {
        if let Some(i) = list.iter().position(|name| name.trim().is_empty()) {
            return Err(Error::cassette(
                path,
                format!("field `match.{field}[{i}]` is empty, which names nothing; remove it"),
            ));
        }
    }
    rules.validate().map_err(|e| {
        Error::cassette(path, format!("field `match.match_headers[{}]`: {e}", e.index))
    })?;
    let key = RequestKey::of_recorded(&rules, &file.request)
        .map_err(|r| Error::cassette(path, format!("request.body: {r}")))?;
    let answers = file
        .answers
        .into_iter()
        .map(|mut response| {
            crate::formats::validate::as_stored_answer_headers(&file.request.method, &mut response.headers);
            Interaction {
                request: file.request.clone(),
                response,
                redaction: file.redaction.clone(),
            }
        })
        .collect();
    Ok((Recording { key, answers }, rules))
}


/// Reads and validates every `*.json` file in `dir` (sorted by name). Fails on the first bad file,
/// naming it, on two files recording the same request, and on files recorded with different
/// match rules. Returns the recordings and their common rules.
pub fn read_dir(dir: &Path) -> Result<(Vec<Recording>, MatchRules)> {
    read_dir_with_progress(dir, &indicatif::ProgressBar::hidden())
}

/// [`read_dir`], advancing `progress` once per file.
pub fn read_dir_with_progress(
    dir: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<Recording>, MatchRules)> {
    let paths = cassette_paths(dir)?;
    progress.set_length(paths.len() as u64);
    let mut recordings = Vec::new();
    let mut folder = FolderCheck::default();
    for path in paths {
        progress.inc(1);
        let bytes = read_limited(&path, MAX_CASSETTE_FILE, "cassette")?;
        let (recording, rules) = parse_in(dir, &path, &bytes)?;
        if let Some(problem) = folder.add(&path, &recording, rules).into_iter().next() {
            return Err(Error::cassette(&path, problem));
        }
        recordings.push(recording);
    }
    Ok((recordings, folder.rules()))
}

/// What the cassettes of one folder may not hold between them: two files recording the same
/// request, or files recorded with different match rules. [`read_dir`] (so `import` and
/// `replay`) refuses such a folder; `verify` reports it, with the same words.
#[derive(Debug, Default)]
pub struct FolderCheck {
    common: Option<(MatchRules, PathBuf)>,
    seen: HashMap<[u8; 32], PathBuf>,
}

impl FolderCheck {
    /// Takes the cassette at `path` (`recording`, recorded with `rules`); returns why it cannot
    /// share the folder with the cassettes taken before (nothing when it can).
    pub fn add(&mut self, path: &Path, recording: &Recording, rules: MatchRules) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.common {
            None => self.common = Some((rules, path.to_path_buf())),
            Some((first, first_path)) if *first != rules => {
                let show = |r: &MatchRules| serde_json::to_string(r).expect("rules serialise");
                problems.push(format!(
                    "field `match` ({}) differs from {} ({}); one folder holds one set of match rules",
                    show(&rules),
                    first_path.display(),
                    show(first)
                ))
            }
            Some(_) => {}
        }
        if let Some(first) = self.seen.get(recording.key.digest()) {
            problems.push(format!(
                "records the same request as {} ({}); keep one of them",
                first.display(),
                recording.key.request_line()
            ));
        } else {
            self.seen
                .insert(*recording.key.digest(), path.to_path_buf());
        }
        problems
    }

    /// The match rules the folder's cassettes share (the default for an empty folder).
    pub fn rules(self) -> MatchRules {
        self.common.map(|(rules, _)| rules).unwrap_or_default()
    }
}

/// Whether `bytes` are one cassette (a JSON object with `request` and `answers`) rather than a
/// HAR (whose object has `log`): what `import FILE` tells them apart by.
pub fn is_one_cassette(bytes: &[u8]) -> bool {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Probe {
        request: Option<IgnoredAny>,
        answers: Option<IgnoredAny>,
        log: Option<IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(without_bom(bytes))
        .is_ok_and(|p| p.request.is_some() && p.answers.is_some() && p.log.is_none())
}

/// [`parse`] of the cassette at `path` in the cassettes folder `dir`: its session is the
/// subfolder it is in.
pub fn parse_in(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(Recording, MatchRules)> {
    let session = session_of_path(dir, path)?;
    parse_in_session(path, bytes, session.as_deref())
}

/// The `*.json` files in `dir` and, as sessions, in its subfolders at any depth (hidden
/// folders, whose names start with `.`, are skipped), sorted. Symlinked folders are not
/// followed (each is named in a warning, and `verify` fails on it); a `*.json` that is not a
/// file, or a symlink to nothing, is an error naming it.
pub fn cassette_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let listing = list_cassettes(dir)?;
    for folder in listing.symlinked_folders {
        tracing::warn!(
            folder = %folder.display(),
            "a symlinked folder is not read (import, replay and verify do not follow one): \
             its cassettes are left out; put the folder itself there"
        );
    }
    for file in listing.links_out {
        tracing::warn!(
            file = %file.display(),
            "a cassette that is a symlink to a file outside the repository: read, but what it \
             holds depends on the machine (git stores the link, not the file), and verify fails on it"
        );
    }
    Ok(listing.paths)
}

/// The cassettes under a folder, as [`list_cassettes`] finds them.
#[derive(Debug, Default)]
pub struct Listing {
    /// The cassette files, sorted (symlinks among them followed).
    pub paths: Vec<PathBuf>,
    /// The symlinked folders, not followed: `verify` fails on each.
    pub symlinked_folders: Vec<PathBuf>,
    /// The cassettes among `paths` that are symlinks to a file outside the git work tree the
    /// folder is in (outside the folder when it is in none; a git-annex object is inside): read,
    /// but what one holds depends on the machine, so `verify` fails on each, as on a symlinked
    /// folder.
    pub links_out: Vec<PathBuf>,
}

/// [`cassette_paths`], with what it warns of (sorted, without the warnings).
pub fn list_cassettes(dir: &Path) -> Result<Listing> {
    let mut paths = Vec::new();
    let mut skipped = Vec::new();
    let mut links_out = Vec::new();
    // Where a symlinked cassette may point without a finding: inside the repository.
    let root = link_root(dir);
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if kind.is_dir() {
                if !hidden {
                    folders.push(path);
                }
            } else if kind.is_symlink()
                && !hidden
                && !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
                && std::fs::metadata(&path).is_ok_and(|meta| meta.is_dir())
            {
                skipped.push(path);
            } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                // A symlink is followed to what it names. One that names nothing (a git-annex
                // or LFS file never fetched) or a device is an error, not a cassette silently
                // left out of what is replayed, imported or verified.
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        if kind.is_symlink() && points_outside(&path, &root) {
                            links_out.push(path.clone());
                        }
                        paths.push(path);
                    }
                    // A symlinked folder: not followed, as said above.
                    Ok(meta) if meta.is_dir() => {}
                    other => {
                        let why = match other {
                            Ok(_) => "is not a regular file (a device, a pipe or a socket)".into(),
                            // E.g. a git-annex or LFS file never fetched.
                            Err(e) => format!("cannot be read ({e}): a symlink to nothing?"),
                        };
                        let reason = format!("{why}; a cassette is a JSON file");
                        return Err(Error::cassette(&path, reason));
                    }
                }
            }
        }
    }
    paths.sort();
    skipped.sort();
    links_out.sort();
    Ok(Listing {
        paths,
        symlinked_folders: skipped,
        links_out,
    })
}

/// True when the symlink at `link` names a file outside `root` (a canonical path: the git work
/// tree the cassette folder is in, `.git` included, so a git-annex object or a file elsewhere in
/// the repository is inside; else the folder itself).
fn points_outside(link: &Path, root: &Path) -> bool {
    std::fs::canonicalize(link).is_ok_and(|target| !target.starts_with(root))
}

/// Where a cassette under `dir` may link to (see [`points_outside`]): the git work tree `dir`
/// is in (the nearest folder above it holding `.git`), else `dir`; canonical.
fn link_root(dir: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors()
        .find(|folder| folder.join(".git").exists())
        .map_or_else(|| dir.clone(), Path::to_path_buf)
}

/// The session a cassette at `path` under `dir` belongs to: its folder relative to `dir`
/// (`None` directly in `dir`). A folder name that is not a valid session name is an error
/// naming the file.
fn session_of_path(dir: &Path, path: &Path) -> Result<Option<String>> {
    let folder = path
        .parent()
        .and_then(|p| p.strip_prefix(dir).ok())
        .unwrap_or(Path::new(""));
    if folder.as_os_str().is_empty() {
        return Ok(None);
    }
    let name = folder
        .to_str()
        .map(|s| s.replace(std::path::MAIN_SEPARATOR, "/"))
        .ok_or_else(|| Error::cassette(path, "the session folder's name is not UTF-8"))?;
    crate::model::session::validate(&name).map_err(|why| {
        Error::cassette(path, format!("folder {name:?} is not a session name: {why}"))
    })?;
    Ok(Some(name))
}

/// The folder of `session`'s cassettes under `dir`.
pub(crate) fn session_dir(dir: &Path, session: Option<&str>) -> PathBuf {
    match session {
        None => dir.to_path_buf(),
        Some(name) => name.split('/').fold(dir.to_path_buf(), |p, s| p.join(s)),
    }
}

/// Redacts every recording for export or import (`--redact`), running the leak gate on each
/// answer. Fails naming the cassette file that would have leaked (nothing is written: the caller
/// writes only on success).
pub fn redact_recordings(
    recordings: &[Recording],
    redactor: &Redactor,
    rules: &MatchRules,
) -> Result<Vec<Recording>> {
    // The whole store first: a value selected anywhere is replaced everywhere, also in the
    // answers that come before the one that names it.
    for interaction in recordings.iter().flat_map(|r| &r.answers) {
        redactor.learn(interaction);
    }
    let mut out = Vec::with_capacity(recordings.len());
    for recording in recordings {
        // Named as it would be exported: a real id in its path is shown as its pseudonym.
        let name = redactor.pseudonymised(&file_name(recording));
        let refuse = |reason: String| Error::cassette(&name, format!("refused: {reason}"));
        let gate = Gate::new(Some(redactor), rules);
        let mut answers = Vec::with_capacity(recording.answers.len());
        let mut key = None;
        for interaction in &recording.answers {
            let passed = gate.pass(interaction, Vec::new()).map_err(|r| match r {
                Refusal::Leak { label, encoding } => refuse(format!(
                    "the real value of {label} is still present ({encoding}) after redaction"
                )),
                Refusal::Redaction(e) | Refusal::Key(e) => refuse(e),
                unreadable @ Refusal::Unreadable(_) => refuse(unreadable.to_string()),
            })?;
            key.get_or_insert(passed.key);
            answers.push(passed.interaction.into_owned());
        }
        let key = key.expect("a recording has at least one answer");
        out.push(Recording { key, answers });
    }
    out.sort_by(|a, b| a.key.digest().cmp(b.key.digest()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::unchanged::same_answers;
    use crate::model::interaction::Body;

    #[test]
    fn a_cassette_differing_only_in_times_and_tool_is_the_same_and_any_other_byte_is_not() {
        let rules = MatchRules::default();
        let with = |edit: &dyn Fn(&mut RecordedResponse)| {
            let mut rec = recording("GET", "/v2/images/x");
            edit(&mut rec.answers[0].response);
            render(&rec, &rules)
        };
        let old = with(&|_| {});
        let later = with(&|r| {
            r.recorded_at = "2026-12-01T10:00:00Z".into();
            r.latency_ms = 250;
        });
        assert_ne!(old, later);
        assert!(same_answers(&old, &later));
        let other_tool = String::from_utf8(old.clone())
            .unwrap()
            .replace(env!("CARGO_PKG_VERSION"), "0.0.9");
        assert!(same_answers(&old, other_tool.as_bytes()));
        for (what, changed) in [
            ("status", with(&|r| r.status = 201)),
            ("body", with(&|r| r.body = Body::from_bytes(br#"{"id":"y"}"#))),
            ("key order", with(&|r| r.body = Body::from_bytes(br#"{"b":1,"a":2}"#))),
            ("upstream", with(&|r| r.upstream = "https://ims.other.example".into())),
            ("header", with(&|r| r.headers.push(("etag".into(), "1".into())))),
        ] {
            assert!(!same_answers(&old, &changed), "{what}");
        }
        // A body's own `latency_ms` is compared like any byte; its fresh values (a request id,
        // the `…_at` times, at any depth) are not, but their names, order and type are.
        let body = |json: &str| with(&|r| r.body = Body::from_bytes(json.as_bytes()));
        assert!(!same_answers(&body(r#"{"latency_ms":1}"#), &body(r#"{"latency_ms":2}"#)));
        let fresh = |id: &str, at: &str| {
            body(&format!(
                r#"{{"error_code":"IMS.0001","request_id":"{id}","token":{{"expires_at":"{at}","issued_at":"{at}","n":1}}}}"#
            ))
        };
        assert!(same_answers(&fresh("r-1", "2026-01-01T00:00:00Z"), &fresh("r-2", "2026-01-02T00:00:00Z")));
        assert!(same_answers(&body(r#"{"recorded_at":"2026-01-01"}"#), &body(r#"{"recorded_at":"2026-01-02"}"#)));
        assert!(!same_answers(&fresh("r-1", "a"), &body(r#"{"error_code":"IMS.0002","request_id":"r-1","token":{"expires_at":"a","issued_at":"a","n":1}}"#)));
        assert!(!same_answers(&fresh("r-1", "a"), &body(r#"{"request_id":"r-1","error_code":"IMS.0001","token":{"expires_at":"a","issued_at":"a","n":1}}"#)));
        assert!(!same_answers(&body(r#"{"request_id":"r"}"#), &body(r#"{"request_id":1}"#)));
        // Python-style and pretty-printed JSON alike (Keystone's, Glance's), and a token's
        // audit ids; a value under an `…_at` name that is no time, or a time written another
        // way, is compared.
        for (a, b) in [
            (r#"{"token": {"expires_at": "2026-01-01T00:00:00.000000Z", "audit_ids": ["a1"]}}"#, r#"{"token": {"expires_at": "2026-02-02T01:01:01.000000Z", "audit_ids": ["b2"]}}"#),
            ("{\n  \"requestId\": \"r-1\",\n  \"createdAt\": \"2026-01-01T00:00:00Z\"\n}", "{\n  \"requestId\": \"r-2\",\n  \"createdAt\": \"2026-03-01T00:00:00Z\"\n}"),
        ] {
            assert!(same_answers(&body(a), &body(b)), "{a}");
        }
        // A token's roles, methods, catalog and endpoints in another order (Keystone lists a
        // token's roles from a set, in each worker process's own order) are the same answer;
        // a role added or renamed is not, nor another order of a list elsewhere (an API's own
        // role list, an image list).
        let token = |roles: &str, catalog: &str| {
            format!(
                r#"{{"token": {{"methods": ["password"], "roles": [{roles}], "catalog": [{catalog}], "issued_at": "2026-01-01T00:00:00.000000Z"}}}}"#
            )
        };
        let (reader, admin) = (r#"{"id": "r1", "name": "reader"}"#, r#"{"id": "r2", "name": "admin"}"#);
        let (public, internal) = (r#"{"interface": "public", "url": "https://a"}"#, r#"{"interface": "internal", "url": "https://b"}"#);
        let image = |endpoints: &str| format!(r#"{{"type": "image", "endpoints": [{endpoints}]}}"#);
        let identity = r#"{"type": "identity", "endpoints": []}"#;
        let recorded = token(&format!("{reader}, {admin}"), &format!("{}, {identity}", image(&format!("{public}, {internal}"))));
        let again = token(&format!("{admin}, {reader}"), &format!("{identity}, {}", image(&format!("{internal}, {public}"))));
        assert!(same_answers(&body(&recorded), &body(&again)));
        let pretty = |json: &str| serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(json).unwrap()).unwrap();
        assert!(same_answers(&body(&pretty(&recorded)), &body(&pretty(&again))));
        let renamed = again.replace("\"reader\"", "\"member\"");
        assert!(!same_answers(&body(&recorded), &body(&renamed)));
        let fewer = token(reader, &format!("{}, {identity}", image(&format!("{public}, {internal}"))));
        assert!(!same_answers(&body(&recorded), &body(&fewer)));
        for (a, b) in [
            (r#"{"located_at":"cn-north-4"}"#, r#"{"located_at":"cn-south-1"}"#),
            (r#"{"roles":[{"name":"a"},{"name":"b"}]}"#, r#"{"roles":[{"name":"b"},{"name":"a"}]}"#),
            (r#"{"images":[{"id":"a"},{"id":"b"}]}"#, r#"{"images":[{"id":"b"},{"id":"a"}]}"#),
            (r#"{"deleted_at":"2020-01-01T00:00:00Z"}"#, r#"{"deleted_at":"2020-01-01 00:00:00"}"#),
            (r#"{"format":"2020"}"#, r#"{"format":"2021"}"#),
            (r#"{"audit_ids":["a"]}"#, r#"{"audit_ids":["a","b"]}"#),
            (r#"{"retry_at":5}"#, r#"{"retry_at":6}"#),
        ] {
            assert!(!same_answers(&body(a), &body(b)), "{a}");
        }
        // Trace ids and a gateway's latency in the answer's headers.
        let traced = |trace: &str, latency: &str| {
            with(&|r| {
                r.headers.push(("traceparent".into(), trace.into()));
                r.headers.push(("x-apig-latency".into(), latency.into()));
            })
        };
        assert!(same_answers(&traced("00-ab-01", "12"), &traced("00-cd-01", "30")));
        // A request header's value (matching never reads one it does not name, and the file
        // name holds the request key), but not a header added.
        let sent = |headers: &[(&str, &str)]| {
            let mut rec = recording("GET", "/v2/images/x");
            rec.answers[0].request.headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            render(&rec, &rules)
        };
        assert!(same_answers(&sent(&[("x-trace", "aaa")]), &sent(&[("x-trace", "bbb")])));
        assert!(!same_answers(&sent(&[("x-trace", "aaa")]), &sent(&[("x-trace", "aaa"), ("x-new", "1")])));
        // An old value holding what is masked today (a URL's token) is rewritten.
        let url = "https://h/x?token=t-1";
        assert!(!same_answers(&sent(&[("referer", url)]), &sent(&[("referer", "https://h/x?token=REDACTED")])));
        let other_etag = with(&|r| r.headers.push(("etag".into(), "2".into())));
        assert!(!same_answers(&with(&|r| r.headers.push(("etag".into(), "1".into()))), &other_etag));
        // An answer's keys in another order are other bytes served; a request body's keys in
        // another order are the same request (a client sending a dictionary), and nothing else
        // may differ for the old file to be kept.
        let answer = |json: &[u8]| with(&|r| r.body = Body::from_bytes(json));
        assert!(!same_answers(&answer(br#"{"a":2,"b":1}"#), &answer(br#"{"b":1,"a":2}"#)));
        let request = |json: &[u8], status: u16| {
            let mut rec = recording("POST", "/v2/images");
            rec.answers[0].request.body = Body::from_bytes(json);
            rec.answers[0].response.status = status;
            rec.answers[0].response.recorded_at = format!("2026-12-0{}T00:00:00Z", status % 7 + 1);
            render(&rec, &rules)
        };
        let sent = request(br#"{"name":"n","disk_format":"qcow2"}"#, 201);
        assert!(same_answers(&sent, &request(br#"{"disk_format":"qcow2","name":"n"}"#, 201)));
        assert!(!same_answers(&sent, &request(br#"{"disk_format":"qcow2","name":"m"}"#, 201)));
        assert!(!same_answers(&sent, &request(br#"{"disk_format":"qcow2","name":"n"}"#, 202)));
        // An upload recorded again under the new random boundary its client drew.
        let upload = |boundary: &str, file: &str| {
            let mut rec = recording("POST", "/v1/upload");
            let request = &mut rec.answers[0].request;
            request.headers = vec![("content-type".into(), format!("multipart/form-data; boundary={boundary}"))];
            let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n{file}\r\n--{boundary}--\r\n");
            request.body = Body::from_bytes(body.as_bytes());
            render(&rec, &rules)
        };
        assert!(same_answers(&upload("a1b2c3", "bytes"), &upload("d4e5f6a7", "bytes")));
        assert!(!same_answers(&upload("a1b2c3", "bytes"), &upload("d4e5f6a7", "other")));
        // A binary part (the body stored as base64), and a gateway's fresh trace id beside it.
        let traced_upload = |boundary: &str, trace: &str| {
            let mut rec = recording("POST", "/v1/upload");
            let request = &mut rec.answers[0].request;
            request.headers = vec![("content-type".into(), format!("multipart/form-data; boundary={boundary}"))];
            let body = [format!("--{boundary}\r\n\r\n").as_bytes(), b"\xff\x00\xfe", format!("\r\n--{boundary}--\r\n").as_bytes()].concat();
            request.body = Body::from_bytes(&body);
            rec.answers[0].response.headers.push(("x-trace-id".into(), trace.into()));
            render(&rec, &rules)
        };
        assert!(String::from_utf8_lossy(&traced_upload("a1", "t")).contains("base64"));
        assert!(same_answers(&traced_upload("a1b2c3", "t-1"), &traced_upload("d4e5f6a7", "t-2")));
    }

    #[test]
    fn an_owner_only_an_encoded_json_answer_names_is_redacted_or_refused_never_exported_raw() {
        use crate::model::redaction::RedactionPolicy;
        use crate::secrets::pseudonym::PseudonymKey;
        let real = "realacct-only-here-42";
        let redactor = Redactor::new(RedactionPolicy::default(), PseudonymKey::new(b"k"));
        let json = format!(r#"{{"owner": "{real}", "name": "Ren"#);
        let with_body = |bytes: Vec<u8>| {
            let mut rec = recording("GET", "/v2/images");
            rec.answers[0].response.body = Body::from_bytes(&bytes);
            rec
        };
        // A UTF-8 byte-order mark before the JSON: read, and the owner replaced.
        let bom = with_body([b"\xef\xbb\xbf".as_slice(), format!("{json}e\"}}").as_bytes()].concat());
        let out = redact_recordings(&[bom], &redactor, &MatchRules::default()).unwrap();
        let body = out[0].answers[0].response.body.as_ref().unwrap().to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&body).contains(real));
        // In Latin-1 (`é` one byte): the owner is selected, and as it cannot be replaced inside
        // that encoding, the export is refused naming it rather than written with it.
        let latin1 = with_body([json.as_bytes(), b"\xe9\"}"].concat());
        let refused = redact_recordings(&[latin1], &redactor, &MatchRules::default()).unwrap_err();
        assert!(refused.to_string().contains("field owner"), "{refused}");
    }

    fn recording(method: &str, path: &str) -> Recording {
        let request = RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: None,
            headers: vec![],
            body: None,
            session: None,
        };
        let key = RequestKey::of_recorded(&MatchRules::default(), &request).unwrap();
        let response = RecordedResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::from_bytes(br#"{"id":"x"}"#),
            recorded_at: "2026-11-27T00:00:00Z".into(),
            latency_ms: 1,
            upstream: "https://ims.example".into(),
            other_upstreams: Vec::new(),
        };
        Recording {
            key,
            answers: vec![Interaction {
                request,
                response,
                redaction: None,
            }],
        }
    }

    #[test]
    fn file_names_never_leave_the_folder() {
        for path in [
            "/../../etc/passwd",
            "/..",
            "/a/./../b",
            "/%2e%2e/x",
            "/\\..\\x",
            "/.hidden",
        ] {
            let name = file_name(&recording("GET", path));
            assert!(!name.contains('/') && !name.contains('\\'), "{name}");
            assert!(!name.starts_with('.'), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name}"
            );
            assert_eq!(Path::new(&name).components().count(), 1);
        }
    }

    #[test]
    fn file_names_read_like_the_request() {
        let name = file_name(&recording("GET", "/v2/images/bc6bed6e-ba3a"));
        assert!(name.starts_with("get_v2_images_bc6bed6e-ba3a_"), "{name}");
        assert!(file_name(&recording("GET", "/")).starts_with("get_root_"));
    }

    #[test]
    fn an_export_removes_only_stale_cassettes_named_as_it_names_them_and_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, gone) = (recording("GET", "/v2/images/a"), recording("DELETE", "/v2/images/b"));
        let rules = MatchRules::default();
        write_dir(dir.path(), &[kept.clone(), gone.clone()], &rules).unwrap();
        // A fixture written by hand: a valid cassette under a name export never gives.
        let fixture = dir.path().join("image_404.json");
        std::fs::write(&fixture, render(&gone, &rules)).unwrap();
        // Named as export names files, but not what it holds; and in a folder no session has.
        let misnamed = dir.path().join(file_name(&kept).replace("get_", "put_"));
        std::fs::write(&misnamed, render(&gone, &rules)).unwrap();
        std::fs::create_dir(dir.path().join("sp ace")).unwrap();
        let elsewhere = dir.path().join("sp ace").join(file_name(&gone));
        std::fs::write(&elsewhere, render(&gone, &rules)).unwrap();
        // A request this export writes, under the name an older key gave it.
        let renamed = dir.path().join(file_name(&kept).replace(&kept.key.hex()[..12], "000000000000"));
        std::fs::write(&renamed, render(&kept, &rules)).unwrap();
        let summary = write_dir(dir.path(), std::slice::from_ref(&kept), &rules).unwrap();
        let mut removed = vec![dir.path().join(file_name(&gone)), renamed];
        removed.sort();
        assert_eq!(summary.removed, removed);
        assert!(fixture.exists(), "a hand-named cassette was removed");
        assert!(misnamed.exists() && elsewhere.exists());
        std::fs::remove_dir_all(dir.path().join("sp ace")).unwrap();

        // A file that cannot be listed fails the export before anything is written.
        #[cfg(unix)]
        {
            let dangling = dir.path().join(file_name(&gone));
            std::os::unix::fs::symlink("/nonexistent/ims-vcr", &dangling).unwrap();
            let new = recording("GET", "/v2/images/new");
            let err = write_dir(dir.path(), &[kept, new.clone()], &rules).unwrap_err();
            assert!(err.to_string().contains(&file_name(&gone)), "{err}");
            assert!(!dir.path().join(file_name(&new)).exists(), "written before the refusal");
        }

        for path in ["/", "/v2/images/x;y", "/ÿ/..", "/a b/c"] {
            for method in ["GET", "M-SEARCH", "!"] {
                let name = file_name(&recording(method, path));
                assert!(is_exported_name(&name), "{name}");
                let full = name.replace(&name[name.len() - 17..name.len() - 5], &"a".repeat(64));
                assert!(is_exported_name(&full), "{full}");
            }
        }
        for name in [
            "image_404.json",
            "get_v2_images_x.json",
            "get_v2_ABCDEF012345.json",
            "get_v2_0123456789ab.JSON",
            "get_v2_0123456789abc.json",
            "get__0123456789ab.json",
            "get.v2_0123456789ab.json",
        ] {
            assert!(!is_exported_name(name), "{name}");
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let rec = recording("GET", "/v2/images/x");
        let rules = MatchRules {
            match_headers: vec!["x-project-id".into()],
            ignore_query: vec![],
            volatile: Default::default(),
            shift_time: Vec::new(),
        };
        let bytes = render(&rec, &rules);
        assert!(String::from_utf8_lossy(&bytes).contains("\"match\""));
        let (back, back_rules) = parse(Path::new("x.json"), &bytes).unwrap();
        assert_eq!(back_rules, rules);
        assert_eq!(render(&back, &back_rules), bytes);
        let plain = render(&rec, &MatchRules::default());
        assert!(
            !String::from_utf8_lossy(&plain).contains("\"match\""),
            "default rules are not written"
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        let rules = MatchRules::default();
        let mut v: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        v["answers"][0]["status"] = 42.into();
        let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("f.json") && err.to_string().contains("answers[0].status"),
            "{err}"
        );

        v["answers"][0]["status"] = 200.into();
        v["format"] = 99.into();
        let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`format` is 99"), "{err}");

        v["format"] = 1.into();
        v["request"]["headers"] = serde_json::json!([["X-Auth-Token", "t"]]);
        let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("request.headers[0]"), "{err}");
    }

    #[test]
    fn a_misspelt_field_a_key_given_twice_or_an_empty_match_name_is_refused_by_name() {
        let rules = MatchRules::default();
        let good: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        let mut v = good.clone();
        v["answers"][0]["bodyy"] = serde_json::json!({"text": "x"});
        let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err().to_string();
        assert!(err.contains("f.json") && err.contains("field `answers[0].bodyy`"), "{err}");
        let twice = good.to_string().replacen("\"status\":", "\"status\":500,\"status\":", 1);
        let err = parse(Path::new("f.json"), twice.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("f.json") && err.contains("status"), "{err}");
        let mut v = good.clone();
        v["request"]["body"] = serde_json::json!({"json": {"a": 1}});
        let twice = v.to_string().replacen("{\"a\":1}", "{\"a\":1,\"a\":2}", 1);
        let err = parse(Path::new("f.json"), twice.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("\"a\" appears twice") && err.contains("line 1"), "{err}");
        let mut v = good;
        v["match"] = serde_json::json!({"ignore_query": ["marker", ""]});
        let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err().to_string();
        assert!(err.contains("`match.ignore_query[1]` is empty"), "{err}");
    }

    #[test]
    fn what_an_interrupted_export_left_is_removed_by_the_next_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path().join("suite");
        std::fs::create_dir_all(&session).unwrap();
        let left = [
            dir.path().join(".get_v2_images_x_0123456789ab.json.0123456789abcdef.tmp"),
            session.join(".get_v2_y_ba9876543210.json.fedcba9876543210.tmp"),
        ];
        let kept = [
            dir.path().join(".notes.tmp"),
            dir.path().join("a.json.0123456789abcdef.tmp"),
            dir.path().join(".a.json.0123.tmp"),
            dir.path().join(".recording.har.0123456789abcdef.tmp"),
        ];
        for path in left.iter().chain(&kept) {
            std::fs::write(path, b"{\"partial").unwrap();
        }
        let mut rec = recording("GET", "/v2/images/x");
        rec.key = RequestKey::of_recorded(&MatchRules::default(), &RecordedRequest {
            session: Some("suite".into()),
            ..rec.answers[0].request.clone()
        })
        .unwrap();
        write_dir(dir.path(), &[rec], &MatchRules::default()).unwrap();
        for path in &left {
            assert!(!path.exists(), "{} left", path.display());
        }
        for path in &kept {
            assert!(path.exists(), "{} removed", path.display());
        }
    }

    #[test]
    fn a_cassette_named_in_capitals_is_read_and_one_past_the_size_limit_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let rules = MatchRules::default();
        std::fs::write(dir.path().join("IMAGE.JSON"), render(&recording("GET", "/x"), &rules)).unwrap();
        let (recordings, _) = read_dir(dir.path()).unwrap();
        assert_eq!(recordings.len(), 1);
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 2048]).unwrap();
        let err = read_limited(&big, 1024, "cassette").unwrap_err().to_string();
        assert!(err.contains("big.json") && err.contains("larger than"), "{err}");
        assert_eq!(read_limited(&big, 4096, "cassette").unwrap().len(), 2048);
    }

    #[test]
    fn a_file_that_is_no_cassette_utf16_or_quotes_a_huge_value_gets_a_short_plain_error() {
        for (bytes, says) in [
            (&b"[]"[..], "a JSON object with `format`, `request` and `answers`"),
            (b"null", "a JSON object with `format`, `request` and `answers`"),
            (b"\xFF\xFE{\0}\0", "is UTF-16"),
            (b"{\0\"\0", "is UTF-16"),
        ] {
            let err = parse(Path::new("f.json"), bytes).unwrap_err().to_string();
            assert!(err.contains(says) && !err.contains("CassetteFile"), "{err}");
        }
        let rules = MatchRules::default();
        let mut v: serde_json::Value = serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        v["request"]["path"] = format!("/{}?q", "a".repeat(70_000)).into();
        let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err().to_string();
        assert!(err.len() < 2_200 && err.contains("bytes left out)"), "{} bytes: {}", err.len(), &err[..200]);
        // What is wrong, said after the value, is kept.
        assert!(err.contains("request.query"), "{}", &err[err.len() - 300..]);
        // A `#` in a query is read as the key reads it, `%23`, as a live `?a=1%23frag` sends it.
        v["request"]["path"] = "/x".into();
        v["request"]["query"] = "a=1#frag".into();
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn a_redaction_stamp_ims_vcr_could_not_have_written_is_refused_naming_its_field() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes/get_v2_schemas_image_6846de132b94.json");
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(shipped).unwrap()).unwrap();
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
        for (field, value, named) in [
            ("key_fingerprint", serde_json::json!("md5:1"), "redaction.key_fingerprint"),
            ("key_fingerprint", serde_json::json!("hmac-sha256:f35a32c712ae8a4"), "redaction.key_fingerprint"),
            ("pseudonym_checks", serde_json::json!(["0a1b2c3d", "zz"]), "redaction.pseudonym_checks[1]"),
        ] {
            let mut edited = v.clone();
            edited["redaction"][field] = value;
            let err = parse(Path::new("f.json"), edited.to_string().as_bytes()).unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
        v["redaction"]["pseudonym_checks"] = serde_json::json!(["0a1b2c3d"]);
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn hop_by_hop_headers_and_a_length_but_a_heads_are_left_out_and_a_bad_length_refused() {
        let rules = MatchRules::default();
        let headers = serde_json::json!([
            ["content-type", "application/json"],
            ["Connection", "keep-alive"],
            ["keep-alive", "timeout=5"],
            ["Transfer-Encoding", "chunked"],
            ["content-length", "5"]
        ]);
        for (method, kept) in [("GET", 1), ("HEAD", 2)] {
            let mut v: serde_json::Value =
                serde_json::from_slice(&render(&recording(method, "/x"), &rules)).unwrap();
            v["answers"][0]["headers"] = headers.clone();
            let (back, _) = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap();
            let names: Vec<&str> = back.answers[0].response.headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["content-type", "content-length"][..kept], "{method}");
        }
        let mut v: serde_json::Value =
            serde_json::from_slice(&render(&recording("HEAD", "/x"), &rules)).unwrap();
        for bad in ["abc", "-5", " 12 ", "", "99999999999999999999999"] {
            v["answers"][0]["headers"] = serde_json::json!([["Content-Length", bad]]);
            let err = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap_err().to_string();
            assert!(err.contains("answers[0].headers[0]") && err.contains("is not a length"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn content_encoding_over_a_decoded_body_is_left_out_and_over_a_compressed_one_refused() {
        use std::io::Write as _;
        let rules = MatchRules::default();
        let mut v: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        v["answers"][0]["headers"] = serde_json::json!([
            ["content-type", "application/json"],
            ["Content-Encoding", "gzip"],
            ["content-encoding", "identity"]
        ]);
        let (back, _) = parse(Path::new("f.json"), v.to_string().as_bytes()).unwrap();
        assert_eq!(
            back.answers[0].response.headers,
            [("content-type".to_owned(), "application/json".to_owned())]
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"id":"x"}"#).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(br#"{"id":"x"}"#).unwrap();
        // Brotli, zstd and raw deflate have no magic bytes: not UTF-8 is enough.
        let brotli_like = vec![0x0b, 0x02, 0x80, b'h', 0xff, 0x03];
        for compressed in [gz.finish().unwrap(), zlib.finish().unwrap(), brotli_like] {
            v["answers"][0]["body"] = serde_json::to_value(Body::from_bytes(&compressed)).unwrap();
            let err = parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("f.json")
                    && err.contains("answers[0].headers[1]: Content-Encoding: \"gzip\"")
                    && err.contains("may still be encoded"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_answer_that_is_a_form_or_bom_json_handing_out_a_token_is_refused() {
        let rules = MatchRules::default();
        let mut v: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        for text in ["access_token=t-1&expires_in=3600", "\u{feff}{\"password\":\"p-1\"}"] {
            v["answers"][0]["body"] = serde_json::json!({ "text": text });
            let err = parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains("answers[0].body") && err.contains("carries credentials"), "{err}");
        }
        v["answers"][0]["body"] = serde_json::json!({ "text": "access_token=REDACTED&expires_in=3600" });
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn a_cassette_saved_with_a_byte_order_mark_reads_as_without_it() {
        let rules = MatchRules::default();
        let plain = render(&recording("GET", "/x"), &rules);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(&plain);
        let read = |bytes: &[u8]| parse(Path::new("f.json"), bytes).unwrap().0;
        assert_eq!(read(&bom), read(&plain));
    }

    #[test]
    fn a_recorded_at_replay_cannot_shift_dates_by_is_an_error_naming_the_field() {
        let rules = MatchRules::default();
        let mut v: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        for bad in ["notadate", "2026-13-45T99:99:99Z", "0001-01-01T00:00:00Z", "2026-11-27"] {
            v["answers"][0]["recorded_at"] = bad.into();
            let err = parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("f.json") && err.contains("answers[0].recorded_at"),
                "{bad}: {err}"
            );
        }
        for good in ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00.123+08:00", ""] {
            v["answers"][0]["recorded_at"] = good.into();
            assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok(), "{good}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_cassette_symlink_to_nothing_or_a_device_is_an_error_naming_it() {
        let rules = MatchRules::default();
        for target in ["/nonexistent/ims-vcr-cassette.json", "/dev/null"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("a.json"), render(&recording("GET", "/a"), &rules))
                .unwrap();
            std::os::unix::fs::symlink(target, dir.path().join("b.json")).unwrap();
            let err = read_dir(dir.path()).unwrap_err().to_string();
            assert!(err.contains("b.json"), "{target}: {err}");
            assert!(cassette_paths(dir.path()).is_err(), "{target}");
        }
        // A symlink to a cassette is read as the cassette.
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("a.txt"), render(&recording("GET", "/a"), &rules)).unwrap();
        std::os::unix::fs::symlink(real.join("a.txt"), dir.path().join("a.json")).unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().0.len(), 1);
    }

    #[test]
    fn bytes_after_the_json_document_are_an_error_naming_the_file() {
        let rules = MatchRules::default();
        let good = render(&recording("GET", "/x"), &rules);
        for tail in [&br#"{"format": 1, "broken"#[..], b"x", b"{}", b"\n]"] {
            let mut bytes = good.clone();
            bytes.extend_from_slice(tail);
            let err = parse(Path::new("f.json"), &bytes).unwrap_err().to_string();
            assert!(
                err.contains("f.json") && err.contains("after the JSON document"),
                "{err}"
            );
        }
        // Whitespace after the document is not content.
        let mut spaced = good.clone();
        spaced.extend_from_slice(b"\n\n  \t\r\n");
        assert!(parse(Path::new("f.json"), &spaced).is_ok());
    }

    #[test]
    fn a_recorded_latency_beyond_any_timeout_is_refused_naming_the_field() {
        let rules = MatchRules::default();
        let mut v: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        for huge in [u64::MAX, u64::MAX / 1000, 400 * 24 * 3600 * 1000] {
            v["answers"][0]["latency_ms"] = huge.into();
            let err = parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains("answers[0].latency_ms"), "{err}");
        }
        v["answers"][0]["latency_ms"] = 30_000.into();
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn a_cassette_holding_a_credential_query_parameter_or_body_field_is_refused() {
        let rules = MatchRules::default();
        let base: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        for query in ["access_token=tok-123456", "limit=1&X-Auth-Token=abc", "Sig=zz"] {
            let mut v = base.clone();
            v["request"]["query"] = query.into();
            let err = parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("request.query") && err.contains("carries credentials"),
                "{query}: {err}"
            );
        }
        let mut v = base.clone();
        v["request"]["path"] = "/v2/images/a;token=tok-123456".into();
        let err = parse(Path::new("f.json"), v.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("request.path") && err.contains("carries credentials"),
            "{err}"
        );
        let multipart = "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n--b--\r\n";
        for body in [
            serde_json::json!({"json": {"user": {"password": "hunter2"}}}),
            serde_json::json!({"text": multipart}),
        ] {
            let mut v = base.clone();
            v["request"]["body"] = body;
            v["request"]["headers"] =
                serde_json::json!([["content-type", "multipart/form-data; boundary=b"]]);
            let err = parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("request.body") && err.contains("carries credentials"),
                "{err}"
            );
        }
        // The placeholder ims-vcr writes in their place is accepted.
        let mut v = base.clone();
        v["request"]["query"] = "access_token=REDACTED&limit=1".into();
        v["request"]["body"] = serde_json::json!({"json": {"user": {"password": "REDACTED"}}});
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
        // So is a recorded origin without user information, and not one with it.
        let mut v = base;
        v["answers"][0]["upstream"] = "https://user:pa55@ims.example".into();
        let err = parse(Path::new("f.json"), v.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("answers[0].upstream"), "{err}");
    }

    #[test]
    fn a_cassette_with_a_query_in_its_path_or_secrets_in_its_answers_is_refused() {
        let rules = MatchRules::default();
        let base: serde_json::Value =
            serde_json::from_slice(&render(&recording("GET", "/x"), &rules)).unwrap();
        let refused = |v: &serde_json::Value| {
            parse(Path::new("f.json"), v.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        for path in ["/v2/images?token=tok-1", "/v2/images#frag"] {
            let mut v = base.clone();
            v["request"]["path"] = path.into();
            let err = refused(&v);
            assert!(err.contains("request.path") && !err.contains("tok-1"), "{err}");
        }
        let mut v = base.clone();
        v["answers"][0]["body"] = serde_json::json!({"json": {"db": {"db_password": "pw-1"}}});
        let err = refused(&v);
        assert!(err.contains("answers[0].body") && err.contains("db_password"), "{err}");
        let mut v = base.clone();
        v["answers"][0]["headers"] =
            serde_json::json!([["location", "https://h/f?Signature=sig-1&Expires=1"]]);
        assert!(refused(&v).contains("answers[0].headers[0]"));
        // Masked, they are accepted.
        v["answers"][0]["headers"] =
            serde_json::json!([["location", "https://h/f?Signature=REDACTED&Expires=1"]]);
        v["answers"][0]["body"] = serde_json::json!({"json": {"db": {"db_password": "REDACTED"}}});
        assert!(parse(Path::new("f.json"), v.to_string().as_bytes()).is_ok());
    }
}
