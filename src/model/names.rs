//! How names are spelt: the one form every credential and secret rule compares
//! ([`compact`]: case, separators and brackets taken away), and the readings of a name the
//! rules need besides (its last bracketed segment, its trailing digits, a word `pass` at its end).

/// The last non-empty `[segment]` of a name (`token` of `auth[token]`, of `a[b][token][]`).
pub(crate) fn last_bracketed(name: &str) -> Option<&str> {
    let name = name.trim();
    let name = name.strip_suffix("[]").unwrap_or(name).strip_suffix(']')?;
    let (_, last) = name.rsplit_once('[')?;
    (!last.trim().is_empty()).then_some(last)
}

/// A [`compact`] name without its trailing digits (`tempurlkey2` is `tempurlkey`), unless it is
/// all digits.
pub(crate) fn without_trailing_digits(compact: &str) -> &str {
    match compact.trim_end_matches(|c: char| c.is_ascii_digit()) {
        "" => compact,
        stripped => stripped,
    }
}

/// Whether `name` ends in `pass` as a word of its own: `pass`, `admin_pass`, `adminPass`,
/// `ADMIN_PASS`, `X-Storage-Pass`, `db_pass2`; not `bypass`, `compass`, `overpass`.
pub(crate) fn ends_in_word_pass(name: &str) -> bool {
    let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    let Some(at) = name.len().checked_sub(4).filter(|at| name.is_char_boundary(*at)) else {
        return false;
    };
    let (head, tail) = name.split_at(at);
    tail.eq_ignore_ascii_case("pass")
        && (head.is_empty()
            || head.ends_with(|c: char| !c.is_ascii_alphanumeric())
            || tail.starts_with('P') && head.ends_with(|c: char| c.is_ascii_lowercase()))
}

/// A name with case and separators taken away: lower case, without `-`, `_`, `.`, spaces and
/// brackets (`token[]=` is `token`, `auth[token]` is `authtoken`). `X-Auth-Token`,
/// `x_auth_token` and `xAuthToken` are all `xauthtoken`.
pub(crate) fn compact(name: &str) -> String {
    name.trim()
        .chars()
        // Control characters too: `token%00=` is still `token` to a server that stops at NUL.
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' ' | '[' | ']') && !c.is_control())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_without_case_separators_brackets_or_trailing_digits() {
        assert_eq!(compact(" X-Auth_Token.[] "), "xauthtoken");
        assert_eq!(compact("auth[token]"), "authtoken");
        assert_eq!(compact("token\0"), "token");
        assert_eq!(last_bracketed("a[b][token][]"), Some("token"));
        assert_eq!(last_bracketed("token[]"), None);
        assert_eq!(last_bracketed("plain"), None);
        assert_eq!(without_trailing_digits("tempurlkey2"), "tempurlkey");
        assert_eq!(without_trailing_digits("42"), "42");
        for pass in ["pass", "admin_pass", "adminPass", "X-Storage-Pass", "db_pass_2"] {
            assert!(ends_in_word_pass(pass), "{pass}");
        }
        for other in ["bypass", "compass", "Overpass", "passage", "pas"] {
            assert!(!ends_in_word_pass(other), "{other}");
        }
    }
}
