//! Access key ids a request's path names: Keystone's EC2 credentials
//! (`/v3/users/{user_id}/credentials/OS-EC2/{access}`, also under `/v2.0`) and IAM's permanent
//! access keys (`/v3.0/OS-CREDENTIAL/credentials/{access_key}`), read, changed and deleted by
//! their key id.
//!
//! An answer's access key id is stored as its pseudonym (see
//! [`crate::model::answer_secrets`]), so a replayed `create` hands a client the pseudonym, and
//! the client then shows or deletes the key by it. The recording of that `show` or `delete`
//! therefore holds the pseudonym in the path too (the record side), and replay, when a request
//! naming a real key id misses, looks it up again by the id's pseudonym (a suite that deletes a
//! key id from its own configuration).

use std::ops::Range;

/// The path segments after which a path names an access key id.
const BEFORE_ACCESS_KEY: &[&str] = &["/credentials/OS-EC2/", "/OS-CREDENTIAL/credentials/"];

/// Where in `path` (a request path, without its query) an access key id is: the whole segment
/// after one of [`BEFORE_ACCESS_KEY`]; `None` when there is none or it is empty.
pub(crate) fn in_path(path: &str) -> Option<Range<usize>> {
    // Every request's path is asked (the record and the log of each): one prebuilt search for
    // the word both markers hold first, as `str::find` builds its searcher on every call.
    static CREDENTIALS: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("credentials/"));
    CREDENTIALS.find(path.as_bytes())?;
    let start = BEFORE_ACCESS_KEY
        .iter()
        .find_map(|before| path.find(before).map(|at| at + before.len()))?;
    let end = path[start..].find(['/', '?', '#', ' ']).map_or(path.len(), |len| start + len);
    (end > start).then_some(start..end)
}

/// `text` (a path, or a request line `GET /path?query`) with the access key id it names shown
/// as [`PLACEHOLDER`](crate::model::credentials::PLACEHOLDER), for what a log, a miss report or
/// a summary shows of a request.
pub(crate) fn masked(text: &str) -> std::borrow::Cow<'_, str> {
    match in_path(text) {
        Some(at) => format!("{}{}{}", &text[..at.start], crate::model::credentials::PLACEHOLDER, &text[at.end..]).into(),
        None => text.into(),
    }
}

/// `path` with the access key id it names replaced by `pseudonym(id)`, and that id; `None`
/// when it names none (or one without a letter or digit, which a pseudonym keeps as it is).
pub(crate) fn pseudonymised_in_path(path: &str, pseudonym: impl Fn(&str) -> String) -> Option<(String, String)> {
    let at = in_path(path)?;
    let id = &path[at.clone()];
    let replaced = pseudonym(id);
    if replaced == id {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    out.push_str(&path[..at.start]);
    out.push_str(&replaced);
    out.push_str(&path[at.end..]);
    Some((out, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_segment_of_keystone_and_iam_credential_paths_is_found() {
        for (path, id) in [
            ("/v3/users/u1/credentials/OS-EC2/27d4cb633a204b75", Some("27d4cb633a204b75")),
            ("/identity/v2.0/users/u1/credentials/OS-EC2/abc123", Some("abc123")),
            ("/v3.0/OS-CREDENTIAL/credentials/HWAKPERM1234", Some("HWAKPERM1234")),
            ("/v3.0/OS-CREDENTIAL/credentials/HWAK/extra", Some("HWAK")),
            ("/v3/users/u1/credentials/OS-EC2", None),
            ("/v3/users/u1/credentials/OS-EC2/", None),
            ("/v3.0/OS-CREDENTIAL/securitytokens", None),
            ("/v2/images/27d4cb633a204b75", None),
        ] {
            assert_eq!(in_path(path).map(|at| &path[at]), id, "{path}");
        }
    }

    #[test]
    fn a_request_line_is_shown_with_the_key_id_masked() {
        assert_eq!(masked("DELETE /v3/users/u/credentials/OS-EC2/27d4cb63"), "DELETE /v3/users/u/credentials/OS-EC2/REDACTED");
        assert_eq!(masked("GET /v3.0/OS-CREDENTIAL/credentials/HWAK?x=1"), "GET /v3.0/OS-CREDENTIAL/credentials/REDACTED?x=1");
        assert_eq!(masked("GET /v2/images/x"), "GET /v2/images/x");
    }

    #[test]
    fn the_key_id_is_replaced_by_its_pseudonym_and_given_back() {
        let pseudonym = |v: &str| v.to_ascii_lowercase();
        assert_eq!(
            pseudonymised_in_path("/v3.0/OS-CREDENTIAL/credentials/HWAK9", pseudonym),
            Some(("/v3.0/OS-CREDENTIAL/credentials/hwak9".to_owned(), "HWAK9".to_owned()))
        );
        assert_eq!(pseudonymised_in_path("/v3.0/OS-CREDENTIAL/credentials/hwak9", pseudonym), None);
        assert_eq!(pseudonymised_in_path("/v2/images/x", pseudonym), None);
    }
}
