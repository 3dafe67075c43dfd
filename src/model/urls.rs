//! Credentials inside URLs, wherever text holds one (a JSON string, a header value): the
//! password of user information (`mysql://root:REDACTED@db`), credential query and matrix
//! parameters of absolute URLs, and the query or fragment of relative ones (`/next?token=…`).

use crate::model::credentials::{Found, PLACEHOLDER};
use crate::model::params::{has_param_delimiter, mask_path, mask_query};

/// Whether text could hold what [`mask_text_urls`] masks: a query (`?`), a fragment with
/// parameters (`#…=`), or a URL with user information or parameters. A cheap first look.
pub(crate) fn may_hold_text_urls(text: &str) -> bool {
    text.contains('?') || text.contains('#') && text.contains('=') || may_hold_url_credentials(text)
}

/// Whether `text` has a URL that could carry a credential (`://` and a `?`, `@`, `#` or `;`).
pub(crate) fn may_hold_url_credentials(text: &str) -> bool {
    text.contains("://")
        && (text.contains(['?', '@', '#']) || has_param_delimiter(text))
}

/// `text` with the credentials of every URL in it masked: the password of its user
/// information (`mysql://root:REDACTED@db`) and its credential query parameters
/// (`?AccessKeyId=REDACTED&Signature=REDACTED`, by the request side's names). `None` when
/// nothing changed. A URL runs from its scheme's `://` to a space, quote or angle bracket, so
/// this reads JSON strings, `Location` and `Link` headers alike.
pub fn mask_urls(text: &str) -> Option<(String, Vec<Found>)> {
    if !may_hold_url_credentials(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, tail) = rest.split_at(at + 3);
        out.push_str(before);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        mask_url(&tail[..end], &mut out, &mut found);
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out != text).then_some((out, found))
}

/// Text (a JSON string, a header value) with the credentials of the URLs in it masked: absolute
/// ones ([`mask_urls`]) and the query or fragment of a relative one (`/next?token=…`,
/// `/cb#access_token=…`); `None` when none.
/// Unlike [`mask_header_value`], `;` parameters and `name=value` lists are left alone: in free
/// text they are data (`kernel_args`, a description).
pub fn mask_text_urls(value: &str) -> Option<(String, Vec<Found>)> {
    if !may_hold_text_urls(value) {
        return None;
    }
    let mut found = Vec::new();
    let mut text = match mask_urls(value) {
        Some((masked, values)) => {
            found.extend(values);
            masked
        }
        None => value.to_owned(),
    };
    // A relative URL's query (`/next?token=…`) or fragment (`/cb#access_token=…`).
    if text.contains(['?', '#']) {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(['?', '#']) {
            out.push_str(&rest[..=at]);
            let tail = &rest[at + 1..];
            let end = tail
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ',' | '#'))
                .unwrap_or(tail.len());
            match mask_query(&tail[..end]) {
                Some((masked, values)) => {
                    out.push_str(&masked);
                    found.extend(values);
                }
                None => out.push_str(&tail[..end]),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        text = out;
    }
    (text != value).then_some((text, found))
}

/// Appends `url` (what follows `://`) to `out` with its credentials masked.
fn mask_url(url: &str, out: &mut String, found: &mut Vec<Found>) {
    // The authority ends at the first `/`, `?` or `#` after its user information, which may
    // hold them (a password typed unencoded, see `userinfo_end`).
    let userinfo = crate::model::credentials::userinfo_end(url).map_or(0, |at| at + 1);
    let authority_end = (url[userinfo..].find(['/', '?', '#'])).map_or(url.len(), |at| userinfo + at);
    let (authority, tail) = url.split_at(authority_end);
    match authority.rsplit_once('@').and_then(|(userinfo, host)| {
        let (user, password) = userinfo.split_once(':')?;
        (!password.is_empty() && password != PLACEHOLDER).then_some((user, password, host))
    }) {
        Some((user, password, host)) => {
            found.push(Found {
                label: "password in a URL of the answer".into(),
                value: percent_encoding::percent_decode_str(password)
                    .decode_utf8_lossy()
                    .into_owned(),
            });
            out.push_str(&format!("{user}:{PLACEHOLDER}@{host}"));
        }
        None => out.push_str(authority),
    }
    let fragment_at = tail.find('#').unwrap_or(tail.len());
    let (tail, fragment) = tail.split_at(fragment_at);
    // The path's matrix parameters (`https://h/x;token=…`).
    let shown = |path: &str, out: &mut String, found: &mut Vec<Found>| match mask_path(path) {
        Some((masked, values)) => {
            out.push_str(&masked);
            found.extend(values);
        }
        None => out.push_str(path),
    };
    match tail.split_once('?') {
        Some((path, query)) => {
            shown(path, out, found);
            out.push('?');
            match mask_query(query) {
                Some((masked, values)) => {
                    out.push_str(&masked);
                    found.extend(values.into_iter().map(|f| Found {
                        label: f.label.replace("query parameter", "query parameter of a URL in the answer"),
                        value: f.value,
                    }));
                }
                None => out.push_str(query),
            }
        }
        None => shown(tail, out, found),
    }
    // The fragment's parameters, as an OAuth implicit grant hands out its tokens
    // (`#access_token=…&token_type=Bearer`): masked as a query's.
    match fragment.strip_prefix('#').and_then(mask_query) {
        Some((masked, values)) => {
            out.push('#');
            out.push_str(&masked);
            found.extend(values.into_iter().map(|f| Found {
                label: f.label.replace("query parameter", "fragment parameter of a URL"),
                value: f.value,
            }));
        }
        None => out.push_str(fragment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_an_answer_holds_are_masked_and_the_rest_of_the_url_kept() {
        let (masked, found) = mask_urls(
            "see https://b.obs.example.com/i.qcow2?AccessKeyId=AK&Expires=1&Signature=S%2B1&x-obs-security-token=T#top and \
             <https://u:pw-1@h/x>; rel=next, mysql://root:pw-2@db/x?charset=utf8",
        )
        .unwrap();
        assert_eq!(
            masked,
            "see https://b.obs.example.com/i.qcow2?AccessKeyId=REDACTED&Expires=1&Signature=REDACTED&x-obs-security-token=REDACTED#top and \
             <https://u:REDACTED@h/x>; rel=next, mysql://root:REDACTED@db/x?charset=utf8"
        );
        let mut values: Vec<&str> = found.iter().map(|f| f.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["AK", "S+1", "T", "pw-1", "pw-2"]);
        for kept in ["/v2/images?limit=1", "https://h/v2/images?limit=1&marker=m", "ssh://git@h/r", "no url"] {
            assert_eq!(mask_urls(kept), None, "{kept}");
        }
        use crate::model::answer_secrets::{mask_answer_json, may_hold_answer_secrets};
        let mut answer = serde_json::json!({"file": {"url": "https://h/f?token=t-1"}});
        assert!(may_hold_answer_secrets(&answer));
        let found = mask_answer_json(&mut answer, &|v: &str| v.to_owned());
        assert_eq!(answer["file"]["url"], "https://h/f?token=REDACTED");
        assert_eq!(found[0].value, "t-1");
    }

    #[test]
    fn a_url_password_holding_a_slash_question_mark_or_hash_is_masked_whole() {
        // Glance store locations (`direct_url`, `locations[].url`) carry storage keys, and an
        // AWS-style secret key often holds a `/`.
        for (url, password, rest) in [
            ("s3://AKIA:se/cr+et@s3.example.com/bucket/img", "se/cr+et", "s3.example.com/bucket/img"),
            ("https://user:se?cret@h/x", "se?cret", "h/x"),
            ("swift+https://acct:user:se#cret@h/v1/c/o", "user:se#cret", "h/v1/c/o"),
        ] {
            let text = format!("{{\"direct_url\": \"{url}\"}}");
            let (masked, found) = mask_urls(&text).unwrap();
            assert!(!masked.contains(password), "{masked}");
            assert!(masked.contains(&format!(":REDACTED@{rest}")), "{masked}");
            assert_eq!(found.len(), 1, "{url}");
            assert_eq!(found[0].value, password);
        }
        // A port is no password: a URL without an `@` after it keeps it, and so does one whose
        // `@` is in its query, or after a host that looks like one.
        for kept in [
            "https://h:8443/x?limit=1",
            "http://keystone:5000/v3/users?name=alice@example.com",
            "http://keystone.example.com:5000/v3/users?name=alice@example.com",
            "https://obs.example.com:443/bucket/logo@2x.png",
            "https://[::1]:8443/u/a@b",
        ] {
            assert_eq!(mask_urls(kept), None, "{kept}");
        }
        let (masked, _) = mask_urls("swift+https://a%3Au:key@h:8080/v1/c/img@v2").unwrap();
        assert_eq!(masked, "swift+https://a%3Au:REDACTED@h:8080/v1/c/img@v2");
        let (masked, _) = mask_urls("s3://AK:SE/CRET@host.example/b?x=a@b").unwrap();
        assert_eq!(masked, "s3://AK:REDACTED@host.example/b?x=a@b");
        for (url, masked) in [
            ("https://john.doe:pa/ss@example.com/x", "https://john.doe:REDACTED@example.com/x"),
            ("s3://acct.user:SE/CRET@obs.example.com/b", "s3://acct.user:REDACTED@obs.example.com/b"),
            ("https://first.last:se?cret@host.example/x", "https://first.last:REDACTED@host.example/x"),
        ] {
            assert_eq!(mask_urls(url).unwrap().0, masked);
        }
        let (masked, _) = mask_urls("https://u:pw@ims.example.com/x?email=a@b.com").unwrap();
        assert_eq!(masked, "https://u:REDACTED@ims.example.com/x?email=a@b.com");
    }
}
