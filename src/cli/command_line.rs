//! How `run` shows the command it runs in its messages, which a CI log keeps: with the
//! credentials a command line may carry masked.

use std::ffi::OsString;

/// The command line, for messages (a CI log keeps them): credentials in it masked, and words
/// with spaces quoted.
pub(super) fn shown(command: &[OsString]) -> String {
    let mut next = Next::Plain;
    let words: Vec<String> = command
        .iter()
        .map(|word| {
            let word = word.to_string_lossy();
            let (masked, then) = shown_word(&word, next);
            next = then;
            if masked.is_empty() || masked.contains(char::is_whitespace) {
                format!("'{masked}'")
            } else {
                masked
            }
        })
        .collect();
    format!("`{}`", words.join(" "))
}

/// What the word after a flag is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A word like any other.
    Plain,
    /// The value of a flag named for a credential (`--os-token T`, `--password P`).
    Credential,
    /// `user:password`, as `curl -u` and `--user` take it.
    UserInfo,
}

/// One word of a command line as [`shown`] shows it, and what the next word is. Masked: the
/// value after a flag named for a credential; `--flag=VALUE` and `NAME=VALUE` with a
/// credential's name (`--os-password=…`, `OS_PASSWORD=…`); the password of `-u user:password`;
/// a credential header (`X-Auth-Token: …`, as `curl -H` takes it, also `-HX-Auth-Token:…` and
/// `--header=…`); the credential fields of JSON (`-d '{"auth": …}'`); and the credentials of a
/// URL (`https://user:pw@host`, `?token=`).
fn shown_word(word: &str, next: Next) -> (String, Next) {
    use crate::model::credentials::{PLACEHOLDER, is_credential_name};
    match next {
        Next::Credential => return (PLACEHOLDER.to_owned(), Next::Plain),
        Next::UserInfo => return (masked_userinfo(word), Next::Plain),
        Next::Plain => {}
    }
    let Some(flag) = word.strip_prefix('-') else {
        return (shown_value(word), Next::Plain);
    };
    let dashes = &word[..word.len() - flag.trim_start_matches('-').len()];
    let flag = flag.trim_start_matches('-');
    match flag.split_once('=') {
        Some((name, _)) if is_credential_name(name) => {
            (format!("{dashes}{name}={PLACEHOLDER}"), Next::Plain)
        }
        Some((name, value)) => (
            format!("{dashes}{name}={}", shown_value(value)),
            Next::Plain,
        ),
        // `-HX-Auth-Token: …`: curl's header flag with its value attached.
        None if dashes == "-" && flag.len() > 1 && flag.starts_with('H') => {
            (format!("-H{}", shown_value(&flag[1..])), Next::Plain)
        }
        None if matches!(flag, "u" | "user") => (word.to_owned(), Next::UserInfo),
        // `--password-stdin` takes no value: the password comes from stdin.
        None if flag.len() > 1 && !flag.ends_with("stdin") && is_credential_name(flag) => {
            (word.to_owned(), Next::Credential)
        }
        None => (word.to_owned(), Next::Plain),
    }
}

/// A word that is not a flag, or a flag's value, with what credentials it holds masked.
fn shown_value(word: &str) -> String {
    use crate::model::credentials::{PLACEHOLDER, mask_body, mask_query, shown_url};
    if let Some((name, _)) = word.split_once(':')
        && crate::model::headers::is_credential(&name.trim().to_ascii_lowercase())
    {
        return format!("{name}: {PLACEHOLDER}");
    }
    if word.contains("://") {
        return shown_url(word);
    }
    if word.trim_start().starts_with(['{', '['])
        && let Some((masked, _)) = mask_body(word.as_bytes(), Some("application/json"))
    {
        return String::from_utf8_lossy(&masked).into_owned();
    }
    if word.contains('=')
        && let Some((masked, _)) = mask_query(word)
    {
        return masked;
    }
    word.to_owned()
}

/// `user:password` with the password masked (a word without `:` is kept: curl asks for it).
fn masked_userinfo(word: &str) -> String {
    match word.split_once(':') {
        Some((user, _)) => format!("{user}:{}", crate::model::credentials::PLACEHOLDER),
        None => word.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &[&str]) -> String {
        shown(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn credentials_on_a_command_line_are_masked_in_every_form() {
        assert_eq!(
            line(&["openstack", "--os-token", "gAAAA-tok", "image", "show", "x"]),
            "`openstack --os-token REDACTED image show x`"
        );
        assert_eq!(
            line(&["tool", "--os-password=pw-1", "--limit=2", "-v"]),
            "`tool --os-password=REDACTED --limit=2 -v`"
        );
        assert_eq!(
            line(&[
                "curl",
                "-H",
                "X-Auth-Token: tok-2",
                "https://u:pw-3@h/v2?token=tok-4&limit=1"
            ]),
            "`curl -H 'X-Auth-Token: REDACTED' https://REDACTED@h/v2?token=REDACTED&limit=1`"
        );
        assert_eq!(
            line(&["env", "OS_PASSWORD=pw-5", "pytest", "-k", "two words"]),
            "`env OS_PASSWORD=REDACTED pytest -k 'two words'`"
        );
        assert_eq!(
            line(&[
                "curl",
                "-u",
                "admin:pw-6",
                "--user",
                "a:pw-7",
                "-d",
                r#"{"auth":{"password":"pw-8"}}"#
            ]),
            r#"`curl -u admin:REDACTED --user a:REDACTED -d {"auth":{"password":"REDACTED"}}`"#
        );
        assert_eq!(
            line(&[
                "curl",
                "--header=X-Auth-Token:tok-9",
                "-HX-Auth-Token:tok-10",
                "-HAccept:x"
            ]),
            "`curl '--header=X-Auth-Token: REDACTED' '-HX-Auth-Token: REDACTED' -HAccept:x`"
        );
        // A flag taking no value keeps the word after it.
        assert_eq!(
            line(&["docker", "login", "--password-stdin", "registry.example"]),
            "`docker login --password-stdin registry.example`"
        );
    }
}
