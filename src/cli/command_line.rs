//! How `run` shows the command it runs in its messages, which a CI log keeps: with the
//! credentials a command line may carry masked.

use std::ffi::OsString;

/// The command line, for messages (a CI log keeps them): credentials in it masked, and words
/// with spaces quoted.
pub(super) fn shown(command: &[OsString]) -> String {
    let mut after_credential_flag = false;
    let words: Vec<String> = command
        .iter()
        .map(|word| {
            let word = word.to_string_lossy();
            let (masked, takes_credential) = shown_word(&word, after_credential_flag);
            after_credential_flag = takes_credential;
            if masked.is_empty() || masked.contains(char::is_whitespace) {
                format!("'{masked}'")
            } else {
                masked
            }
        })
        .collect();
    format!("`{}`", words.join(" "))
}

/// One word of a command line as [`shown`] shows it, and whether it is a flag named for a
/// credential whose value is the next word (`--os-token T`, `--password P`). Masked: the value
/// after such a flag, `--flag=VALUE` and `NAME=VALUE` with a credential's name
/// (`--os-password=…`, `OS_PASSWORD=…`), a credential header (`X-Auth-Token: …`, as `curl -H`
/// takes it), and the credentials of a URL (`https://user:pw@host`, `?token=`).
fn shown_word(word: &str, after_credential_flag: bool) -> (String, bool) {
    use crate::model::credentials::{PLACEHOLDER, is_credential_name, mask_query, shown_url};
    if after_credential_flag {
        return (PLACEHOLDER.to_owned(), false);
    }
    if let Some(flag) = word.strip_prefix('-') {
        let flag = flag.trim_start_matches('-');
        return match flag.split_once('=') {
            Some((name, _)) if is_credential_name(name) => (
                format!("-{}{name}={PLACEHOLDER}", &word[1..word.len() - flag.len()]),
                false,
            ),
            Some(_) => (word.to_owned(), false),
            None => (word.to_owned(), flag.len() > 1 && is_credential_name(flag)),
        };
    }
    if let Some((name, _)) = word.split_once(':')
        && crate::model::headers::is_credential(&name.trim().to_ascii_lowercase())
    {
        return (format!("{name}: {PLACEHOLDER}"), false);
    }
    if word.contains("://") {
        return (shown_url(word), false);
    }
    if word.contains('=')
        && let Some((masked, _)) = mask_query(word)
    {
        return (masked, false);
    }
    (word.to_owned(), false)
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
    }
}
