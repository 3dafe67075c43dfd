//! `ims-vcr verify`: the CI gate for shared cassettes. Reports, per file and JSON location, any
//! credential header, a missing or incomplete redaction stamp, and any denied value (a team's
//! real project IDs and account codes) in any common encoding.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::formats::cassette;
use crate::error::{Error, Result};
use crate::model::credentials;
use crate::model::headers::is_credential;
use crate::model::key::MatchRules;
use crate::model::recording::Recording;
use crate::secrets::leak::{LeakScanner, Needle};
use crate::secrets::redact::{RedactionPolicy, RedactionStamp};
use crate::secrets::vouch;

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The cassette file.
    pub file: PathBuf,
    /// JSON pointer to the offending value (`/answers/0/body/json/owner`), `""` for the file.
    pub location: String,
    /// What is wrong. Never contains the secret itself.
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = if self.location.is_empty() {
            "/"
        } else {
            &self.location
        };
        // JSON locations are built from the file's own keys: nothing in them may drive the
        // terminal the finding is printed on.
        write!(
            f,
            "{}: {}: {}",
            crate::tools::escape_controls(&self.file.display().to_string()),
            crate::tools::escape_controls(location),
            crate::tools::escape_controls(&self.problem)
        )
    }
}

/// What to check besides credentials.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    /// Values that must appear nowhere (labels say where each came from, never the value).
    pub deny: Vec<Needle>,
    /// When set, every file must carry a redaction stamp covering this policy.
    pub require_redaction: Option<RedactionPolicy>,
}

/// Totals for the summary line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VerifySummary {
    /// Cassette files checked.
    pub files: usize,
    /// Answers across them.
    pub answers: usize,
}

/// How the label of a `--deny` value starts: `denied value (--deny #N)`.
const FLAG_LABEL: &str = "denied value (--deny #";

/// The `--deny` values as needles, each labelled by its place among the flags (never by the
/// value: labels are printed).
pub fn deny_flags(values: &[String]) -> Vec<Needle> {
    (values.iter().enumerate())
        .map(|(i, value)| Needle {
            label: format!("{FLAG_LABEL}{})", i + 1),
            value: value.clone(),
        })
        .collect()
}

/// Reads deny values from a file: one per line, blank lines skipped, a `#` at the start of a
/// line or after white space starts a comment (`0a7eb7d2  # prod account`), and a byte-order
/// mark (what Windows editors and PowerShell put first) is not part of the first value. A `#`
/// inside a value (`abc#1`) stays in it.
pub fn deny_file(path: &Path) -> Result<Vec<Needle>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| (i, without_comment(line).trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| Needle {
            label: format!("denied value from {} line {}", path.display(), i + 1),
            value: line.to_owned(),
        })
        .collect())
}

/// `line` up to its comment: a `#` first on the line or after white space.
fn without_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let at = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    at.map_or(line, |at| &line[..at])
}

/// Checks every `*.json` file in `dir`.
///
/// Every denied value is looked for: one shorter than 6 bytes as a whole word (inside a longer
/// word it would match by chance), the others as substrings in every encoding. A value that
/// cannot be checked (empty, or short with no letter or digit) is an error naming it, so
/// "none found" never stands for "not looked for". String values, object keys and numbers are
/// searched, and so are the decoded bytes of base64 bodies.
pub fn verify_dir(dir: &Path, options: &VerifyOptions) -> Result<(Vec<Finding>, VerifySummary)> {
    let scanner = LeakScanner::with_short_words(options.deny.iter().cloned()).map_err(|refused| {
        let reasons: Vec<String> = refused
            .iter()
            .map(|u| format!("{}: {}", u.label, u.reason))
            .collect();
        let message = format!(
            "cannot check every denied value ({}); remove or fix it",
            reasons.join("; ")
        );
        // A bad `--deny` value is a bad flag value (exit 2); a bad line of a `--deny-file` is a
        // file's fault (exit 1), as the message says which.
        match refused.iter().any(|u| u.label.starts_with(FLAG_LABEL)) {
            true => Error::Usage(message),
            false => Error::Config(message),
        }
    })?;
    let mut findings = Vec::new();
    let mut summary = VerifySummary::default();
    // What `import` and `replay` refuse across files (the same request twice, different match
    // rules), reported as they word it.
    let mut folder = cassette::FolderCheck::default();
    // The folder's cassettes and its sessions' (subfolders), as `import` and `replay` read them.
    let listing = cassette::list_cassettes(dir)?;
    let paths = listing.paths;
    // A symlinked folder is read by nothing (import and replay skip it, as this listing
    // does): its cassettes would go into git unchecked. A cassette linked to a file outside
    // the folder: what is checked here is not what another checkout reads (git stores the link).
    let folder_problem = "a symlinked folder: import, replay and verify do not follow one, so its \
                          cassettes are neither replayed nor checked; put the folder itself there";
    let link_problem = "a symlink to a file outside the repository: git stores the link, not \
                        the file, so another checkout replays something else than was checked \
                        here; put the cassette itself there";
    let linked = (listing.symlinked_folders.into_iter().map(|file| (file, folder_problem)))
        .chain(listing.links_out.into_iter().map(|file| (file, link_problem)));
    findings.extend(linked.map(|(file, problem)| Finding { file, location: String::new(), problem: problem.to_owned() }));
    // Session folders by their names in lower case, each with the first spelling met.
    let mut folders_by_case: HashMap<String, String> = HashMap::new();
    let mut clashes_reported: HashSet<String> = HashSet::new();
    for path in paths {
        let bytes = cassette::read_limited(&path, cassette::MAX_CASSETTE_FILE, "cassette")?;
        summary.files += 1;
        let mut found = |location: String, problem: String| {
            findings.push(Finding {
                file: path.clone(),
                location,
                problem,
            });
        };
        // Import and replay still read a session folder an older ims-vcr wrote under a name
        // Windows cannot make (`CON`, `trail.`); a new session may not have one, and verify
        // says so: such a folder cannot be checked out on a Windows runner. A folder no
        // ims-vcr reads as a session is reported once, by the cassette's own check below.
        let folder_name = (path.parent().and_then(|p| p.strip_prefix(dir).ok()))
            .and_then(Path::to_str)
            .filter(|name| !name.is_empty())
            .map(|name| name.replace(std::path::MAIN_SEPARATOR, "/"));
        if let Some(name) = &folder_name
            && crate::model::session::validate(name).is_ok()
            && let Err(why) = crate::model::session::validate_new(name)
        {
            found(String::new(), format!("its session folder: {why}"));
        }
        // Two sessions whose names differ only in letter case are one folder on a checkout
        // that ignores case (macOS, Windows), where replay refuses the request both recorded.
        // Each folder on the way is compared (`Suite/t1` and `suite/t2` share one `suite`), and
        // a clash is reported once, at the first cassette under it.
        if let Some(name) = folder_name {
            let prefixes = name.match_indices('/').map(|(at, _)| &name[..at]).chain([name.as_str()]);
            let mut reported = false;
            for folder in prefixes {
                let first = folders_by_case.entry(folder.to_lowercase()).or_insert_with(|| folder.to_owned());
                if !reported && first != folder && clashes_reported.insert(folder.to_owned()) {
                    reported = true;
                    found(
                        String::new(),
                        format!(
                            "its session folder {folder:?} differs from {first:?} only in letter case: \
                             on a checkout that ignores case (macOS, Windows) the two are one folder; \
                             rename one of the sessions"
                        ),
                    );
                }
            }
        }
        let value: Value = match serde_json::from_slice(cassette::without_bom(&bytes)) {
            Ok(v) => v,
            Err(e) => {
                found(String::new(), format!("not JSON: {e}"));
                continue;
            }
        };
        summary.answers += value["answers"].as_array().map_or(0, Vec::len);
        let mut credential_places = Vec::new();
        check_credentials(&value, &mut |location: String, problem| {
            credential_places.push(location.clone());
            found(location, problem)
        });
        if let Ok(rules) = serde_json::from_value::<MatchRules>(value["match"].clone())
            && let Err(e) = rules.validate()
        {
            found(format!("/match/match_headers/{}", e.index), e.to_string());
        }
        // Parsed once: the content is checked against its stamp here, the structure last.
        let parsed = cassette::parse_in(dir, &path, &bytes);
        if let Some(policy) = &options.require_redaction {
            check_stamp(&value, policy, &mut found);
            if let Ok((recording, _)) = &parsed {
                check_pseudonyms(recording, &mut found);
            }
        }
        if !scanner.is_empty() {
            walk(&value, String::new(), &mut |location, text| {
                for leak in scanner.find_all(text.as_bytes()) {
                    found(
                        location.clone(),
                        format!("contains a {} ({})", leak.label, leak.encoding),
                    );
                }
                // A binary body's bytes: the long values' base64 forms are found above, the
                // short ones (words) only in the decoded bytes.
                if location.ends_with("/body/base64")
                    && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
                {
                    for leak in scanner.find_all(&bytes) {
                        // Long values are found in the base64 text above, but not in a form
                        // whose base64 differs from their UTF-8's: Latin-1 (UTF-16 below).
                        let decoded_only = ["whole word", "latin-1"];
                        if decoded_only.iter().any(|form| leak.encoding.contains(form)) {
                            found(
                                location.clone(),
                                format!(
                                    "contains a {} (in the decoded body, {})",
                                    leak.label, leak.encoding
                                ),
                            );
                        }
                    }
                    // A gzip or zlib body (a compressed request, in layers), or UTF-16 text:
                    // every value, in the text it stands for.
                    use crate::model::encodings::{from_utf16, inflate_layers};
                    let (inner, what) = match inflate_layers(&bytes) {
                        Some(inner) => (Some(inner), "inside the compressed body"),
                        None => (from_utf16(&bytes), "in the UTF-16 body"),
                    };
                    for leak in inner.iter().flat_map(|inner| scanner.find_all(inner)) {
                        found(
                            location.clone(),
                            format!("contains a {} ({what}, {})", leak.label, leak.encoding),
                        );
                    }
                }
            });
        }
        if let Ok((recording, rules)) = &parsed {
            for problem in folder.add(&path, recording, rules.clone()) {
                found(String::new(), problem);
            }
        }
        // Structural validity last: it stops at its first problem, and the checks above may
        // already have said more precisely what is wrong.
        if let Err(e) = parsed {
            let message = e.to_string();
            let reason = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, r)| r);
            // Credentials and refused match rules were reported above, precisely, when they
            // were: a credential only the structural check finds (inside a compressed body, in
            // a coding no check reads) is still reported, in its words.
            let place = pointer_of(reason);
            let reported = (reason.contains("carries credentials")
                && (credential_places.iter())
                    .any(|at| at.starts_with(&place) || place.starts_with(at.as_str())))
                || reason.contains("match.match_headers");
            if !reported {
                found(String::new(), format!("invalid cassette: {reason}"));
            }
        }
    }
    // A denied value is never printed, not even where it names the place it was found: an
    // object key in a JSON pointer (`/quotas/<id>`), a file named after the request's path, a
    // key named in an error.
    if !options.deny.is_empty() {
        for finding in &mut findings {
            finding.file = PathBuf::from(hide_denied(&finding.file.to_string_lossy(), &options.deny));
            finding.location = hide_denied(&finding.location, &options.deny);
            finding.problem = hide_denied(&finding.problem, &options.deny);
        }
    }
    Ok((findings, summary))
}

/// `text` with every denied value in it (ASCII letters in either case: cassette file names are
/// lower-case) replaced by `<denied>`; a value shorter than the leak scanner's six bytes only
/// as a whole word, as verify looks for it (`a` is no secret inside `images`, and masked there
/// it made every line unreadable).
fn hide_denied(text: &str, deny: &[Needle]) -> String {
    let mut text = text.to_owned();
    // As written, and as a JSON pointer writes it (`~` as `~0`, `/` as `~1`).
    let values = deny.iter().map(|n| n.value.as_str()).filter(|v| !v.is_empty());
    let forms = values.flat_map(|v| [v.to_owned(), v.replace('~', "~0").replace('/', "~1")]);
    for value in forms.collect::<std::collections::BTreeSet<_>>().iter().map(String::as_str) {
        let lower = text.to_ascii_lowercase();
        let needle = value.to_ascii_lowercase();
        if !lower.contains(&needle) {
            continue;
        }
        // ASCII lower-casing keeps byte offsets, so the matches are found in `lower` and cut
        // from `text`.
        let short = needle.len() < crate::secrets::leak::MIN_NEEDLE_LEN;
        let word = |b: Option<&u8>| b.is_some_and(|b| crate::secrets::leak::is_word_byte(*b));
        let (bytes, first, end_byte) = (lower.as_bytes(), needle.as_bytes()[0], needle.as_bytes()[needle.len() - 1]);
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut from = 0;
        // Every start is tried (a match skipped inside a word may overlap a whole-word one:
        // `a-a` in `ba-a-a`).
        while let Some(found) = lower[from..].find(&needle) {
            let at = from + found;
            let end = at + needle.len();
            // Bounded where the value's own end is a word byte: `-x` may follow a letter.
            let inside = (word(Some(&first)) && at > 0 && word(bytes.get(at - 1)))
                || (word(Some(&end_byte)) && word(bytes.get(end)));
            if short && inside {
                // The next start: past this one's first character.
                from = at + lower[at..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            out.push_str(&text[last..at]);
            out.push_str("<denied>");
            last = end;
            from = end;
        }
        out.push_str(&text[last..]);
        text = out;
    }
    text
}

/// The JSON pointer of the field a cassette error names first (`request.body: …` is
/// `/request/body`, `answers[0].upstream: …` is `/answers/0/upstream`), to tell whether a
/// finding already named that place.
fn pointer_of(reason: &str) -> String {
    let reason = reason.strip_prefix("field ").unwrap_or(reason);
    let field = reason.split([':', ' ']).next().unwrap_or_default().trim_matches('`');
    let mut pointer = String::new();
    for part in field.split(['.', '[']).filter(|p| !p.is_empty()) {
        pointer.push('/');
        pointer.push_str(part.trim_end_matches(']'));
    }
    pointer
}

fn check_credentials(value: &Value, found: &mut impl FnMut(String, String)) {
    let mut lists = vec![("/request/headers".to_owned(), &value["request"]["headers"])];
    if let Some(answers) = value["answers"].as_array() {
        for (i, answer) in answers.iter().enumerate() {
            lists.push((format!("/answers/{i}/headers"), &answer["headers"]));
        }
    }
    for (base, headers) in lists {
        for (i, pair) in headers.as_array().into_iter().flatten().enumerate() {
            if let Some(name) = pair[0].as_str().filter(|n| is_credential(n)) {
                found(format!("{base}/{i}"), format!("credential header {name}"));
            } else if let Some(name) = pair[0].as_str()
                && let Some((_, urls)) =
                    pair[1].as_str().and_then(crate::model::params::mask_header_value)
            {
                for url in urls {
                    found(format!("{base}/{i}"), format!("{} (header {name})", url.label));
                }
            }
        }
    }
    // Credentials outside the headers: query parameters and request-body fields.
    let request = &value["request"];
    if let Some(path) = request["path"].as_str() {
        for name in credentials::unmasked_in_path(path) {
            found(
                "/request/path".into(),
                format!("credential path parameter {name}"),
            );
        }
    }
    if let Some(query) = request["query"].as_str() {
        for name in credentials::unmasked_in_query(query) {
            found(
                "/request/query".into(),
                format!("credential query parameter {name}"),
            );
        }
    }
    let body = &request["body"];
    let json = body_json(body);
    if let Some((json, kind)) = json {
        for (pointer, name) in credentials::unmasked_in_json(&json) {
            found(
                format!("/request/body{kind}{pointer}"),
                format!("credential field {name} in the request body"),
            );
        }
    } else if let Some(text) = body["text"].as_str().map(str::to_owned).or_else(|| base64_text(body)) {
        let text = text.as_str();
        let content_type = request["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|pair| pair[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case("content-type")))
            .and_then(|pair| pair[1].as_str());
        if credentials::is_form(content_type) {
            // A line ending after the form, or a form a line: each line's pairs.
            for name in text.lines().flat_map(credentials::unmasked_in_query) {
                found(
                    "/request/body/text".into(),
                    format!("credential form field {name} in the request body"),
                );
            }
        } else if let Some((_, parts)) = credentials::mask_body(text.as_bytes(), content_type) {
            // Multipart parts, and forms sent without a `Content-Type`.
            for part in parts {
                found("/request/body/text".into(), part.label);
            }
        }
    }
    if let Some(answers) = value["answers"].as_array() {
        for (i, answer) in answers.iter().enumerate() {
            let upstream = [(format!("/answers/{i}/upstream"), &answer["upstream"])];
            let others = answer["other_upstreams"].as_array().into_iter().flatten().enumerate();
            let origins = upstream.into_iter().chain(
                others.map(|(k, origin)| (format!("/answers/{i}/other_upstreams/{k}"), origin)),
            );
            for (location, origin) in origins {
                let origin = origin.as_str().unwrap_or_default();
                if credentials::userinfo_of(origin).is_some() {
                    found(
                        location,
                        "user information (user:password@) in the upstream URL".into(),
                    );
                }
            }
            // Keys and tokens an answer hands out (`credential.secret`, ...): masked when stored.
            let body = &answer["body"];
            if let Some((mut json, _)) = body_json(body) {
                for secret in crate::model::answer_secrets::mask_answer_json(&mut json, &str::to_owned) {
                    found(format!("/answers/{i}/body"), secret.label);
                }
            } else if let Some(text) = body["text"].as_str()
                && let Some((_, secrets)) = crate::model::answer_secrets::mask_answer_text(text)
            {
                for secret in secrets {
                    found(format!("/answers/{i}/body/text"), secret.label);
                }
            } else if let Some(text) = base64_text(body) {
                // Bytes that are text after all are checked as import checks them.
                for secret in crate::formats::validate::text_answer_secrets(&text) {
                    found(format!("/answers/{i}/body/base64"), secret.label);
                }
            }
        }
    }
}

/// A cassette body (`{"json": …}`, `{"json_python": …}` or `{"text": "…"}` that parses) as JSON,
/// with the pointer of where it sits in the body.
fn body_json(body: &Value) -> Option<(Value, &'static str)> {
    for (tag, pointer) in [("json", "/json"), ("json_python", "/json_python")] {
        if let Some(json) = body.get(tag) {
            return Some((json.clone(), pointer));
        }
    }
    let text = body.get("text")?.as_str()?;
    serde_json::from_str(text).ok().map(|v| (v, "/text"))
}

/// The content against the stamp: every value the stamp's policy names must be a pseudonym the
/// redaction wrote, which its checks vouch for. Values are not printed, only where they are.
fn check_pseudonyms(recording: &Recording, found: &mut impl FnMut(String, String)) {
    let mut unvouched: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, answer) in recording.answers.iter().enumerate() {
        let Some(stamp) = &answer.redaction else {
            continue;
        };
        match vouch::unvouched(stamp, answer) {
            None => {
                found(
                    "/redaction".into(),
                    "the stamp has no pseudonym checks (written by an older ims-vcr), so the \
                     content cannot be checked against it; record it again, or review the \
                     values under the policy's names and vouch for them (`ims-vcr import DIR \
                     --store S`, then `ims-vcr export --store S --redact --vouch-existing --out \
                     DIR`)"
                        .into(),
                );
                return;
            }
            Some(values) => {
                // A value the request holds is the request's to name, not the answers'.
                let mut in_request = BTreeMap::new();
                crate::secrets::policy_values::collect_request(&stamp.policy, &answer.request, &mut in_request);
                for (value, label) in values {
                    let place = match (in_request.contains_key(&value), label.split(' ').next()) {
                        (true, Some("header")) => "/request/headers".to_owned(),
                        (true, Some("query")) => "/request/query".to_owned(),
                        (true, _) => "/request/body".to_owned(),
                        (false, _) => format!("/answers/{i}"),
                    };
                    unvouched.entry((place, label)).or_default().push(i);
                }
            }
        }
    }
    for ((place, label), answers) in unvouched {
        found(
            place,
            format!(
                "{label} holds a value the redaction stamp does not vouch for (in {} answer(s)): \
                 not a pseudonym the redaction wrote, so a real value may have been put there \
                 afterwards; run `export --redact` again or restore the pseudonym",
                answers.len()
            ),
        );
    }
}

fn check_stamp(value: &Value, policy: &RedactionPolicy, found: &mut impl FnMut(String, String)) {
    match serde_json::from_value::<RedactionStamp>(value["redaction"].clone()) {
        Err(_) => found(
            "/redaction".into(),
            format!(
                "no redaction stamp, but the policy requires redaction of fields {:?}, headers {:?}, query {:?}; \
                 export with --redact",
                policy.fields, policy.headers, policy.query
            ),
        ),
        Ok(stamp) if !stamp.policy.covers(policy) => found(
            "/redaction".into(),
            format!(
                "redaction stamp covers fields {:?}, headers {:?}, query {:?}; the policy requires fields {:?}, headers {:?}, query {:?}",
                stamp.policy.fields,
                stamp.policy.headers,
                stamp.policy.query,
                policy.fields,
                policy.headers,
                policy.query
            ),
        ),
        Ok(_) => {}
    }
}

/// Calls `visit` with the JSON pointer and text of every string value, object key and number
/// (its text as written: an account number denied as `--deny 0123456789` may be one).
fn walk(value: &Value, pointer: String, visit: &mut impl FnMut(String, &str)) {
    match value {
        Value::String(s) => visit(pointer, s),
        Value::Number(n) => visit(pointer, &n.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{pointer}/{i}"), visit);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                visit(child.clone(), key);
                walk(item, child, visit);
            }
        }
        _ => {}
    }
}


/// A cassette body stored as base64 whose bytes are UTF-8 text (JSON or a form someone wrote
/// as base64): verify reads it as import does.
fn base64_text(body: &serde_json::Value) -> Option<String> {
    use base64::Engine as _;
    let b64 = body["base64"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};
    use crate::model::key::{MatchRules, RequestKey};
    use crate::model::recording::Recording;

    fn folder_with(body: &str) -> tempfile::TempDir {
        let request = RecordedRequest {
            method: "GET".into(),
            path: "/v2/images".into(),
            query: Some("owner=p42".into()),
            headers: vec![],
            body: None,
            session: None,
        };
        let key = RequestKey::of_recorded(&MatchRules::default(), &request).unwrap();
        let response = RecordedResponse {
            status: 200,
            headers: vec![],
            body: Body::from_bytes(body.as_bytes()),
            recorded_at: "2026-11-27T00:00:00Z".into(),
            latency_ms: 1,
            upstream: String::new(),
            other_upstreams: Vec::new(),
        };
        let recording = Recording {
            key,
            answers: vec![Interaction {
                request,
                response,
                redaction: None,
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        cassette::write_dir(dir.path(), &[recording], &MatchRules::default()).unwrap();
        dir
    }

    fn denied(values: &[&str]) -> VerifyOptions {
        VerifyOptions {
            deny: deny_flags(&values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>()),
            require_redaction: None,
        }
    }

    fn problems(dir: &Path, values: &[&str]) -> Vec<String> {
        let (findings, _) = verify_dir(dir, &denied(values)).unwrap();
        findings
            .iter()
            .map(|f| format!("{}: {}", f.location, f.problem))
            .collect()
    }

    /// The only cassette of `dir` with its answer's body made `bytes` (as base64).
    fn answer_body_bytes(dir: &Path, bytes: &[u8]) {
        edit_only_cassette(dir, |text| {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            v["answers"][0]["body"] = serde_json::json!({ "base64": b64 });
            serde_json::to_string_pretty(&v).unwrap()
        });
    }

    /// The only cassette of `dir`, edited as JSON text by `edit`.
    fn edit_only_cassette(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
        let file = cassette::cassette_paths(dir).unwrap().remove(0);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, edit(text)).unwrap();
        file
    }

    #[test]
    fn a_short_denied_value_is_hidden_only_as_a_whole_word() {
        let deny = [Needle { label: "denied".into(), value: "a".into() }];
        assert_eq!(
            hide_denied("c/get_v2_images_x.json: /answers/0/body/json/a: contains a denied value", &deny),
            "c/get_v2_images_x.json: /answers/0/body/json/<denied>: contains <denied> denied value"
        );
        let deny = [Needle { label: "denied".into(), value: "a-a".into() }];
        assert_eq!(hide_denied("ba-a-a", &deny), "ba-<denied>");
        let deny = [Needle { label: "denied".into(), value: "Secret-77".into() }];
        assert_eq!(hide_denied("x/secret-77y", &deny), "x/<denied>y");
    }

    #[test]
    fn a_blank_denied_value_is_a_usage_error_from_a_flag_and_a_file_error_from_a_file() {
        let dir = folder_with("{}");
        let flag = verify_dir(dir.path(), &denied(&["ok-value", " "])).unwrap_err();
        assert!(matches!(&flag, Error::Usage(m) if m.contains("--deny #2") && m.contains("blank")), "{flag}");
        let mut options = denied(&[]);
        options.deny.push(Needle { label: "denied value from deny.txt line 3".into(), value: "-".into() });
        let file = verify_dir(dir.path(), &options).unwrap_err();
        assert!(matches!(&file, Error::Config(m) if m.contains("deny.txt line 3")), "{file}");
    }

    #[test]
    fn a_symlinked_folder_is_a_finding_not_a_silent_skip() {
        let dir = folder_with(r#"{"id":"x"}"#);
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("suite")).unwrap();
        let found = problems(dir.path(), &[]);
        assert!(found.iter().any(|f| f.contains("a symlinked folder")), "{found:?}");
    }

    #[test]
    fn a_cassette_linked_to_a_file_outside_the_repository_is_a_finding_one_inside_is_not() {
        let dir = folder_with(r#"{"id":"x"}"#);
        let file = cassette::cassette_paths(dir.path()).unwrap().remove(0);
        let elsewhere = tempfile::tempdir().unwrap();
        let outside = elsewhere.path().join("outside.json");
        std::fs::rename(&file, &outside).unwrap();
        std::os::unix::fs::symlink(&outside, &file).unwrap();
        let found = problems(dir.path(), &[]);
        assert!(found.iter().any(|f| f.contains("a symlink to a file outside the repository")), "{found:?}");
        // In a git work tree: a link anywhere in it is fine (a shared cassette, a git-annex
        // object), one out of it is not.
        let repo = tempfile::tempdir().unwrap();
        let folder = repo.path().join("tests/cassettes");
        let annex = repo.path().join(".git/annex/objects/ab");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::create_dir_all(&annex).unwrap();
        let linked = folder.join(file.file_name().unwrap());
        for target in [annex.join("content"), repo.path().join("shared.json")] {
            std::fs::copy(&outside, &target).unwrap();
            let _ = std::fs::remove_file(&linked);
            std::os::unix::fs::symlink(&target, &linked).unwrap();
            let found = problems(&folder, &[]);
            assert!(found.iter().all(|f| !f.contains("symlink")), "{target:?}: {found:?}");
        }
        std::fs::remove_file(&linked).unwrap();
        std::os::unix::fs::symlink(&outside, &linked).unwrap();
        let found = problems(&folder, &[]);
        assert!(found.iter().any(|f| f.contains("outside the repository")), "{found:?}");
    }

    #[test]
    fn a_session_folder_windows_cannot_check_out_is_a_finding() {
        for (folder, flagged) in [("CON", true), ("suite/trail.", true), ("suite/nul.txt", true), ("suite/test_1", false)] {
            let dir = folder_with(r#"{"id":"x"}"#);
            let file = cassette::cassette_paths(dir.path()).unwrap().remove(0);
            let moved = dir.path().join(folder).join(file.file_name().unwrap());
            std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
            std::fs::rename(&file, &moved).unwrap();
            let found = problems(dir.path(), &[]);
            let windows = found.iter().any(|f| f.contains("its session folder") && f.contains("Windows"));
            assert_eq!(windows, flagged, "{folder}: {found:?}");
        }
    }

    #[test]
    fn session_folders_differing_only_in_letter_case_are_a_finding() {
        let dir = folder_with(r#"{"id":"x"}"#);
        let file = cassette::cassette_paths(dir.path()).unwrap().remove(0);
        for folder in ["suite/test_A", "suite/test_a", "Suite/test_b", "Suite/test_c"] {
            let copy = dir.path().join(folder).join(file.file_name().unwrap());
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&file, &copy).unwrap();
        }
        let found = problems(dir.path(), &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("\"suite\" differs from \"Suite\" only in letter case"), "{found:?}");
        assert!(found[1].contains("\"suite/test_a\" differs from \"suite/test_A\" only in letter case"), "{found:?}");
    }

    #[test]
    fn a_folder_that_is_no_session_name_is_reported_once_per_cassette() {
        let dir = folder_with(r#"{"id":"x"}"#);
        let file = cassette::cassette_paths(dir.path()).unwrap().remove(0);
        let moved = dir.path().join("bad:name").join(file.file_name().unwrap());
        std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
        std::fs::rename(&file, &moved).unwrap();
        let found = problems(dir.path(), &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("not a session name") && found[0].contains("':'"), "{found:?}");
    }

    #[test]
    fn a_secret_under_a_key_given_twice_or_in_another_upstream_fails_the_gate() {
        // `verify` reads the document as JSON does (the last of two keys wins): the first
        // value, which is in the file, must not pass unseen.
        let dir = folder_with(r#"{"secret":"REDACTED","id":"x"}"#);
        edit_only_cassette(dir.path(), |text| {
            text.replacen("\"secret\": \"REDACTED\"", "\"secret\": \"RealSecret-77\", \"secret\": \"REDACTED\"", 1)
        });
        let found = problems(dir.path(), &["RealSecret-77"]);
        assert!(found.iter().any(|f| f.contains("\"secret\" appears twice")), "{found:?}");
        let dir = folder_with(r#"{"id":"x"}"#);
        edit_only_cassette(dir.path(), |text| {
            text.replacen(
                "\"latency_ms\": 1",
                "\"latency_ms\": 1,\n      \"other_upstreams\": [\"https://alice:pw-77@iam.example\"]",
                1,
            )
        });
        let found = problems(dir.path(), &[]);
        assert!(
            found.iter().any(|f| f.starts_with("/answers/0/other_upstreams/0: user information")),
            "{found:?}"
        );
    }

    #[test]
    fn a_password_in_a_compressed_request_body_or_an_unreadable_one_fails_the_gate() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"auth":{"identity":{"password":{"user":{"password":"hunter2-77"}}}}}"#)
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        for (coding, body) in [("gzip", b64.clone()), ("br", "AAEC".to_owned())] {
            let dir = folder_with(r#"{"id":"x"}"#);
            edit_only_cassette(dir.path(), |text| {
                let mut v: Value = serde_json::from_str(&text).unwrap();
                v["request"]["headers"] = serde_json::json!([["content-encoding", coding]]);
                v["request"]["body"] = serde_json::json!({ "base64": body });
                serde_json::to_string_pretty(&v).unwrap()
            });
            let found = problems(dir.path(), &[]);
            let expected = match coding {
                "gzip" => "password",
                _ => "`Content-Encoding: br`, which ims-vcr cannot read",
            };
            assert!(
                found.iter().any(|f| f.contains("invalid cassette: request.body") && f.contains(expected)),
                "{coding}: {found:?}"
            );
        }
    }

    #[test]
    fn what_an_answer_hands_out_compressed_in_utf16_or_in_latin1_fails_the_gate() {
        use std::io::Write as _;
        let json = r#"{"credential":{"access":"AK","secret":"hunter2-79"}}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).unwrap();
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(json.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let latin1 = br#"{"credential":{"secret":"hunter2-80","description":"cl"#
            .iter()
            .chain(b"\xe9\"}}")
            .copied()
            .collect::<Vec<u8>>();
        for (what, bytes) in [("gzip", gz.finish().unwrap()), ("utf-16", utf16), ("latin-1", latin1)] {
            let dir = folder_with(r#"{"id":"x"}"#);
            answer_body_bytes(dir.path(), &bytes);
            let found = problems(dir.path(), &[]);
            assert!(
                found.iter().any(|f| f.contains("answers[0].body") && f.contains("secret")),
                "{what}: {found:?}"
            );
        }
    }

    #[test]
    fn a_denied_value_is_found_in_utf16_text_and_never_printed_where_it_is() {
        let id = "0a7eb7d2c4f14e8d9b1a2c3d4e5f6a7b";
        // In a UTF-16 body, either byte order, a byte-order mark or not.
        let text = format!(r#"{{"owner":"{id}"}}"#);
        let le: Vec<u8> = [0xff, 0xfe].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for (what, bytes) in [("le", le), ("be", be)] {
            let dir = folder_with(r#"{"id":"x"}"#);
            answer_body_bytes(dir.path(), &bytes);
            let found = problems(dir.path(), &[id]);
            assert!(found.iter().any(|f| f.contains("in the UTF-16 body")), "{what}: {found:?}");
        }
        // As an object key: the pointer names the place without the value, and so does the
        // file's name when it holds it (any case).
        let dir = folder_with(&format!(r#"{{"quotas":{{"{id}":{{"images":10}}}}}}"#));
        let file = cassette::cassette_paths(dir.path()).unwrap().remove(0);
        let named = file.with_file_name(format!("get_v3_{}_x.json", id.to_ascii_uppercase()));
        std::fs::rename(&file, &named).unwrap();
        let (findings, _) = verify_dir(dir.path(), &denied(&[id])).unwrap();
        assert!(!findings.is_empty());
        for finding in &findings {
            let shown = finding.to_string();
            assert!(!shown.to_ascii_lowercase().contains(id), "{shown}");
        }
        assert!(findings.iter().any(|f| f.location == "/answers/0/body/json/quotas/<denied>"), "{findings:?}");
    }

    #[test]
    fn a_credential_only_the_structural_check_finds_is_reported_beside_another_one() {
        // One finding in the answer's upstream must not hide the password in the compressed
        // request body, which only the structural check reads.
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"auth":{"passwordCredentials":{"password":"hunter2-78"}}}"#).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let dir = folder_with(r#"{"id":"x"}"#);
        edit_only_cassette(dir.path(), |text| {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            v["request"]["headers"] = serde_json::json!([["content-encoding", "gzip"]]);
            v["request"]["body"] = serde_json::json!({ "base64": b64 });
            v["answers"][0]["upstream"] = "https://a:b@ims.example".into();
            serde_json::to_string_pretty(&v).unwrap()
        });
        let found = problems(dir.path(), &[]);
        assert!(found.iter().any(|f| f.starts_with("/answers/0/upstream")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("invalid cassette: request.body")), "{found:?}");
        assert_eq!(pointer_of("answers[2].headers[0]: x"), "/answers/2/headers/0");
        assert_eq!(pointer_of("request.body: the x"), "/request/body");
        assert_eq!(pointer_of("field `answers[0].bodyy`: is not"), "/answers/0/bodyy");
    }

    #[test]
    fn a_deny_file_with_a_byte_order_mark_or_comments_after_values_checks_every_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ids.txt");
        std::fs::write(&file, "\u{feff}0a7eb7d2d6f2\n# a comment\nb1c2d3e4f5a6  # prod account\nx#1\n").unwrap();
        let values: Vec<String> = deny_file(&file).unwrap().into_iter().map(|n| n.value).collect();
        assert_eq!(values, ["0a7eb7d2d6f2", "b1c2d3e4f5a6", "x#1"]);
    }

    #[test]
    fn a_denied_value_inside_a_json_number_is_found() {
        let dir = folder_with(r#"{"project_number":8812345678901,"size":4242}"#);
        let found = problems(dir.path(), &["8812345678901"]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("project_number"), "{found:?}");
        let found = problems(dir.path(), &["4242"]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("/size"), "{found:?}");
    }

    #[test]
    fn a_short_denied_value_is_checked_as_a_whole_word_not_dropped() {
        let dir = folder_with(r#"{"region":"ab-1","note":"cabbage in eu-ab1","tags":["x","p42"]}"#);
        let found = problems(dir.path(), &["ab-1"]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("/region"), "{found:?}");
        // Inside another word it is not a finding.
        assert_eq!(problems(dir.path(), &["bba"]), Vec::<String>::new());
        // In the query (`owner=p42`) and in a body array.
        let found = problems(dir.path(), &["p42"]);
        assert!(found.iter().any(|f| f.contains("/request/query")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("/tags/1")), "{found:?}");
    }

    #[test]
    fn an_answer_handing_out_an_unmasked_secret_key_is_a_finding() {
        let dir = folder_with(r#"{"credential":{"access":"AK","secret":"sk-1","securitytoken":"REDACTED"}}"#);
        let found = problems(dir.path(), &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("/answers/0/body: credential field secret"), "{found:?}");
        let masked = folder_with(r#"{"credential":{"access":"AK","secret":"REDACTED"}}"#);
        assert_eq!(problems(masked.path(), &[]), Vec::<String>::new());
    }

    #[test]
    fn a_credential_path_parameter_or_multipart_part_is_a_finding() {
        let dir = folder_with(r#"{"id":"x"}"#);
        let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        v["request"]["path"] = "/v2/images;token=tok-1".into();
        v["request"]["headers"] = serde_json::json!([["content-type", "multipart/form-data; boundary=b"]]);
        v["request"]["body"] = serde_json::json!({"text": "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw-1\r\n--b--\r\n"});
        std::fs::write(&file, v.to_string()).unwrap();
        let found = problems(dir.path(), &[]);
        assert!(found.iter().any(|f| f.contains("/request/path: credential path parameter token")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("/request/body/text: credential part password")), "{found:?}");
    }

    #[test]
    fn a_credential_in_a_base64_body_that_is_text_is_a_finding() {
        use base64::Engine as _;
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let dir = folder_with(r#"{"id":"x"}"#);
        let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        v["answers"][0]["body"] = serde_json::json!({"base64": b64(r#"{"access_token":"tok-b64"}"#)});
        v["request"]["body"] = serde_json::json!({"base64": b64("user=u&password=pw-b64")});
        std::fs::write(&file, v.to_string()).unwrap();
        let found = problems(dir.path(), &[]);
        assert!(found.iter().any(|f| f.contains("/answers/0/body/base64: credential field access_token")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("/request/body/text: credential form field of the request body password")), "{found:?}");
    }

    #[test]
    fn an_empty_denied_value_cannot_be_checked_and_is_an_error() {
        let dir = folder_with(r#"{"id":"x"}"#);
        let err = verify_dir(dir.path(), &denied(&["ok-value", ""]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--deny #2"), "{err}");
    }
}
