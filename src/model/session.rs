//! Sessions: a test's own recordings, cursors and verdict inside one proxy. A request joins
//! session NAME with the header `x-ims-vcr-session: NAME` (or by arriving on that session's own
//! listener); without it, it is in the default session. The session takes part in the request's
//! key, so the same request in two sessions is two recordings.

/// Request header naming the request's session. Addressed to the proxy: never forwarded,
/// never stored as a header, never matched on as one.
pub const SESSION_HEADER: &str = "x-ims-vcr-session";
/// Request header asking record and auto modes to forward the request without storing it
/// (`x-ims-vcr-skip: true`), for a test's set-up and clean-up calls.
pub const SKIP_HEADER: &str = "x-ims-vcr-skip";
/// [`SESSION_HEADER`] parsed at compile time: a look-up by `&str` parses the name on every request.
pub const SESSION_HEADER_NAME: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static(SESSION_HEADER);
/// [`SKIP_HEADER`] parsed at compile time.
pub const SKIP_HEADER_NAME: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static(SKIP_HEADER);
/// Longest session name.
pub const MAX_NAME: usize = 200;

/// Checks a session name: 1 to 200 characters of `A-Z a-z 0-9 . _ / -`, made of `/`-separated
/// segments none of which is empty or starts with `.` (a session is exported to the folder of
/// that name, so the name must be a safe relative path to a folder that is not hidden).
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "a session name has 1 to {MAX_NAME} characters, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(format!(
            "{bad:?} is not allowed in a session name (use A-Z a-z 0-9 . _ / -)"
        ));
    }
    if let Some(bad) = name
        .split('/')
        .find(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(format!(
            "session name {name:?} has a {:?} segment; names are relative paths without \
             empty, `.` or `..` segments",
            bad
        ));
    }
    // `ls` shows the default session as `-`.
    if name == "-" {
        return Err(
            "session name \"-\" is how `ls` shows the default session; choose another".to_owned(),
        );
    }
    // A hidden folder would be skipped by import, replay --cassettes and verify: the session's
    // cassettes would be exported and then silently never read.
    if let Some(bad) = name.split('/').find(|s| s.starts_with('.')) {
        return Err(format!(
            "session name {name:?} has a segment starting with `.` ({bad:?}); \
             it would be exported to a hidden folder, which import, replay and verify skip"
        ));
    }
    Ok(())
}

/// [`validate`] for a session a request or a test starts: also portable, so its cassettes can
/// be checked out on Windows. Names read back from cassette folders and HAR files are only
/// [`validate`]d: folders an older ims-vcr wrote still load.
pub fn validate_new(name: &str) -> Result<(), String> {
    validate(name)?;
    // Windows cannot make these folders (Git for Windows refuses to check them out): cassettes
    // committed from Linux or macOS would not reach a Windows runner.
    if let Some(bad) = name.split('/').find(|s| is_windows_reserved(s)) {
        return Err(format!(
            "session name {name:?} has a segment Windows cannot make a folder of ({bad:?}: a \
             device name such as CON, NUL, AUX, COM1 or LPT1, with or without an extension, or \
             a name ending in `.`); its cassettes could not be checked out there"
        ));
    }
    Ok(())
}

/// True for a path segment Windows cannot name a folder: a device name (`CON`, `PRN`, `AUX`,
/// `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`, any case, also followed by an extension: `aux.txt`), or
/// one ending in `.` (Windows drops it).
fn is_windows_reserved(segment: &str) -> bool {
    let stem = segment.split('.').next().unwrap_or_default();
    let is = |word: &str| stem.eq_ignore_ascii_case(word);
    let numbered = |prefix: &str| {
        stem.len() == 4 && stem[..3].eq_ignore_ascii_case(prefix) && stem.as_bytes()[3].is_ascii_digit()
    };
    is("CON") || is("PRN") || is("AUX") || is("NUL") || numbered("COM") || numbered("LPT") || segment.ends_with('.')
}

/// What an `x-ims-vcr-skip` value asks, any case: not to store (`true`, `1`, `yes`), or to go on
/// as usual (`false`, `0`, `no`, empty, or no header); why it is refused otherwise, as a
/// misspelt value (`on`, `ture`) would otherwise record the set-up call it was sent with.
pub fn skip_requested(value: Option<&str>) -> Result<bool, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(false);
    };
    let is = |words: [&str; 3]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
    if is(["true", "1", "yes"]) {
        Ok(true)
    } else if value.is_empty() || is(["false", "0", "no"]) {
        Ok(false)
    } else {
        Err(format!(
            "{SKIP_HEADER}: {value:?} is neither true, 1 or yes (forward without storing) nor false, 0 or no"
        ))
    }
}

/// The request's session from `x-ims-vcr-session` (`None`: the default session), or why the
/// header is refused.
pub(crate) fn session_of(parts: &hyper::http::request::Parts) -> Result<Option<&str>, String> {
    // Found by comparing names: `HeaderMap::get` hashes the name, 17 bytes one by one, on every
    // request, where comparing a request's few names is a length or tag check each.
    if !parts.headers.keys().any(|name| *name == SESSION_HEADER_NAME) {
        return Ok(None);
    }
    let mut values = parts.headers.get_all(SESSION_HEADER_NAME).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Which one would count is anyone's guess (a proxy on the way may add one): refused.
    if values.next().is_some() {
        return Err(format!(
            "{SESSION_HEADER}: sent more than once; send one session name"
        ));
    }
    let name = value
        .to_str()
        .map_err(|_| format!("{SESSION_HEADER}: the session name is not visible ASCII"))?;
    validate(name).map_err(|why| format!("{SESSION_HEADER}: {why}"))?;
    Ok(Some(name))
}

/// Whether the request asks not to be stored (`x-ims-vcr-skip: true`), as
/// [`skip_requested`] reads it; why its `x-ims-vcr-skip` is refused (a value that says neither
/// yes nor no, one that is not text, or the header twice).
pub(crate) fn skip_of(parts: &hyper::http::request::Parts) -> Result<bool, String> {
    // As in `session_of`: almost no request has one, and comparing names costs less than hashing.
    if !parts.headers.keys().any(|name| *name == SKIP_HEADER_NAME) {
        return Ok(false);
    }
    let mut values = parts.headers.get_all(SKIP_HEADER_NAME).iter();
    let value = values.next();
    if values.next().is_some() {
        return Err(format!("{SKIP_HEADER}: sent more than once; send it once"));
    }
    match value.map(|v| v.to_str()) {
        Some(Err(_)) => Err(format!("{SKIP_HEADER}: the value is not text; send true or false")),
        Some(Ok(value)) => skip_requested(Some(value)),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_safe_relative_paths_of_the_allowed_characters() {
        for good in ["a", "tests/test_images.py/test_get", "T-1.2_x", &"x".repeat(200), "Console/COM10/auxiliary"] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("", "1 to 200"),
            (&"x".repeat(201) as &str, "1 to 200"),
            ("a b", "' '"),
            ("a\u{e9}", "not allowed"),
            ("../etc", "\"..\" segment"),
            ("a/../b", "\"..\" segment"),
            ("/abs", "\"\" segment"),
            ("a//b", "\"\" segment"),
            ("a/", "\"\" segment"),
            ("./a", "\".\" segment"),
            (".hidden", "starting with `.` (\".hidden\")"),
            ("tests/.cache/x", "starting with `.` (\".cache\")"),
            ("a/...", "hidden folder"),
            ("-", "default session"),
        ] {
            let why = validate(bad).unwrap_err();
            assert!(why.contains(says), "{bad:?}: {why}");
        }
        // New sessions must be folders Windows can make; folders written before still load.
        for bad in ["CON", "tests/aux.txt", "suite/nul/test_x", "suite/Lpt1", "suite/test."] {
            assert!(validate_new(bad).unwrap_err().contains("Windows"), "{bad:?}");
            assert_eq!(validate(bad), Ok(()), "{bad:?}");
        }
        assert_eq!(validate_new("Console/COM10/auxiliary"), Ok(()));
    }

    #[test]
    fn skip_is_asked_for_by_true_one_or_yes_and_refused_when_it_is_neither_yes_nor_no() {
        for yes in ["true", "TRUE", " 1 ", "yes", "Yes"] {
            assert_eq!(skip_requested(Some(yes)), Ok(true), "{yes}");
        }
        for no in [None, Some("false"), Some("0"), Some(""), Some(" NO ")] {
            assert_eq!(skip_requested(no), Ok(false), "{no:?}");
        }
        for bad in ["on", "ture", "2", "yes please"] {
            let why = skip_requested(Some(bad)).unwrap_err();
            assert!(why.contains(SKIP_HEADER) && why.contains(bad), "{why}");
        }
    }
}
