//! The optional `ims-vcr.toml` a team checks into its repository: default store and cassette
//! paths, the redaction lists, the deny list `verify` uses, and match rules. Flags override it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::redaction::RedactionPolicy;

/// File name looked for in the working directory when `--config` is not given.
pub const CONFIG_FILE: &str = "ims-vcr.toml";

/// Settings from `ims-vcr.toml`. Every field is optional; unknown keys are errors (a typo must
/// not silently switch redaction off).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `--store`.
    pub store: Option<PathBuf>,
    /// Default `--cassettes` for replay (and `--out` for export).
    pub cassettes: Option<PathBuf>,
    /// `[redact]`: what to redact, and whether to by default.
    #[serde(default)]
    pub redact: RedactSection,
    /// `[verify]`: values `verify` must never find.
    #[serde(default)]
    pub verify: VerifySection,
    /// `[match]`: how recorded requests are matched.
    #[serde(default, rename = "match")]
    pub matching: MatchSection,
    /// Where the file was read from (for messages); `None` when no file was found.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[redact]` in `ims-vcr.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactSection {
    /// Redact on `record` and `export` without `--redact`; `verify` then requires the stamp.
    #[serde(default)]
    pub enabled: bool,
    /// JSON fields added to the default set (`owner`, `__account_code`).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Headers added to the default set (`X-Project-Id`).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Query parameters added to the default set (`owner`).
    #[serde(default)]
    pub query: Vec<String>,
}

/// `[match]` in `ims-vcr.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSection {
    /// Default `--volatile` patterns.
    #[serde(default)]
    pub volatile: Vec<String>,
    /// Default `--shift-time` fields.
    #[serde(default)]
    pub shift_time: Vec<String>,
    /// Default `--match-header` names (`headers`, as in `[redact]`).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Default `--ignore-query` names.
    #[serde(default)]
    pub ignore_query: Vec<String>,
}

/// `[verify]` in `ims-vcr.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    /// Files of values (one per line, `#` comments) that must appear in no cassette.
    #[serde(default)]
    pub deny_files: Vec<PathBuf>,
}

impl Config {
    /// Reads `explicit` (which must exist), or `ims-vcr.toml` in the working directory if there
    /// is one, or returns the defaults. Anything at that name is read as it (and refused, naming
    /// it, when it is no readable regular file: a folder, a device, a dangling symlink): a
    /// settings file skipped without a word could drop `[redact] enabled = true`, and an export
    /// would then write cassettes unredacted.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => path.to_owned(),
            // Only a name that is not there at all means none (a folder that cannot be
            // searched, a symlink loop: read, and refused naming it).
            None if !Path::new(CONFIG_FILE)
                .symlink_metadata()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                PathBuf::from(CONFIG_FILE)
            }
            None => return Ok(Config::default()),
        };
        let flag = match explicit {
            Some(_) => "--config",
            None => "settings file",
        };
        let text = super::input::read_text(flag, &path)?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            Error::Config(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        // An empty name in a list names nothing: refused as the flags refuse `--redact-field=`,
        // not dropped without a word.
        let names = [
            ("[redact] fields", &config.redact.fields),
            ("[redact] headers", &config.redact.headers),
            ("[redact] query", &config.redact.query),
            ("[match] shift_time", &config.matching.shift_time),
            ("[match] headers", &config.matching.headers),
            ("[match] ignore_query", &config.matching.ignore_query),
        ];
        // A pattern may be white space (a regex matching a space); only an empty one is none.
        let empty_pattern = (config.matching.volatile.iter())
            .position(String::is_empty)
            .map(|i| ("[match] volatile", i));
        let empty_path = (config.verify.deny_files.iter())
            .position(|p| p.as_os_str().is_empty())
            .map(|i| ("[verify] deny_files", i));
        let empty = (names.iter())
            .find_map(|(key, list)| {
                list.iter()
                    .position(|v| v.trim().is_empty())
                    .map(|i| (*key, i))
            })
            .or(empty_pattern)
            .or(empty_path);
        if let Some((key, index)) = empty {
            return Err(Error::Config(format!(
                "{}: {key}[{index}] is empty, which names nothing; remove it",
                path.display()
            )));
        }
        config.source = Some(path);
        Ok(config)
    }

    /// The redaction policy: the defaults plus this file's lists plus the flags' lists.
    pub fn redaction_policy(
        &self,
        fields: &[String],
        headers: &[String],
        query: &[String],
    ) -> RedactionPolicy {
        let mut policy = RedactionPolicy::default();
        policy.extend(
            &self.redact.fields,
            &self.redact.headers,
            &self.redact.query,
        );
        policy.extend(fields, headers, query);
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_name_in_any_list_is_an_error_naming_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ims-vcr.toml");
        for (text, key) in [
            (
                "[redact]\nfields = [\"owner\", \"\"]\n",
                "[redact] fields[1]",
            ),
            ("[redact]\nquery = [\" \"]\n", "[redact] query[0]"),
            ("[match]\nshift_time = [\"\"]\n", "[match] shift_time[0]"),
            (
                "[match]\nheaders = [\"x-a\", \" \"]\n",
                "[match] headers[1]",
            ),
            (
                "[match]\nignore_query = [\"\"]\n",
                "[match] ignore_query[0]",
            ),
            ("[verify]\ndeny_files = [\"\"]\n", "[verify] deny_files[0]"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = Config::load(Some(&file)).unwrap_err().to_string();
            assert!(
                e.contains("ims-vcr.toml") && e.contains(key) && e.contains("empty"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_full_file_parses_and_extends_the_default_policy() {
        let config: Config = toml::from_str(
            r#"
            store = "rec/store"
            cassettes = "rec/cassettes"
            [redact]
            enabled = true
            fields = ["tenant_id"]
            headers = ["X-Domain-Id"]
            [verify]
            deny_files = ["secrets/project-ids.txt"]
            "#,
        )
        .unwrap();
        assert!(config.redact.enabled);
        let policy = config.redaction_policy(&["name".into()], &[], &[]);
        let mut expected = crate::secrets::redact::RedactionPolicy::default().fields;
        expected.extend(["tenant_id".to_owned(), "name".to_owned()]);
        assert_eq!(policy.fields, expected);
        assert_eq!(policy.headers, ["x-project-id", "x-domain-id"]);
    }

    #[test]
    fn a_typo_is_an_error_naming_the_key() {
        let err = toml::from_str::<Config>("[redact]\nenabeld = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("enabeld"), "{err}");
    }
}
