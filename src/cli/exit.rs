//! The exit codes in one table: every command's `--help` prints its rows, `docs/guide.md` holds
//! them as markdown (a test compares), and the binary exits with `Error::exit_code`, whose
//! numbers are the constants the rows use.

#[cfg(test)]
use crate::error::Error;
use crate::error::{EXIT_RUNTIME, EXIT_UNCHECKED, EXIT_USAGE, EXIT_VERDICT};

/// One exit code and what it means for the commands it applies to.
struct Row {
    code: u8,
    /// The subcommands it applies to; empty for every command.
    commands: &'static [&'static str],
    meaning: &'static str,
}

/// Every exit code of every command.
const TABLE: &[Row] = &[
    Row {
        code: 0,
        commands: &[],
        meaning: "success",
    },
    Row {
        code: EXIT_RUNTIME,
        commands: &[],
        meaning: "runtime error: the message on stderr names the file, folder, store or URL at fault",
    },
    Row {
        code: EXIT_USAGE,
        commands: &[],
        meaning: "usage error: an unknown flag, a missing argument or a bad flag value (the message \
                  names the flag)",
    },
    Row {
        code: EXIT_VERDICT,
        commands: &["replay", "auto"],
        meaning: "a CI verdict failed at shutdown: --fail-on-miss (a request missed) or \
                  --fail-on-unused (a recording was never played)",
    },
    Row {
        code: EXIT_VERDICT,
        commands: &["run"],
        meaning: "CMD succeeded but a CI verdict failed: --fail-on-miss, --fail-on-unused, or \
                  --verify-replay (a replay of the fresh recording missed, or CMD failed in \
                  it); a CMD that fails exits with its own status instead",
    },
    Row {
        code: EXIT_VERDICT,
        commands: &["record", "auto", "run"],
        meaning: "answers were served live but not recorded because the store failed (a full \
                  disk): the summary's NOT STORED line says how many",
    },
    Row {
        code: EXIT_VERDICT,
        commands: &["verify"],
        meaning: "findings, one line each on stdout (file: JSON location: problem)",
    },
    Row {
        code: EXIT_VERDICT,
        commands: &["drift"],
        meaning: "a breaking change: a changed status, a removed field, a changed JSON type",
    },
    Row {
        code: EXIT_UNCHECKED,
        commands: &["drift"],
        meaning: "no breaking change found, but requests could not be checked: the upstream \
                  could not be reached, or refused the credentials (401/403 where the recording \
                  has another status), or every recorded request was skipped (none is a GET, \
                  HEAD or OPTIONS, and --unsafe-methods was not given; or its recorded answers \
                  are all gaps the leak gate left)",
    },
];

impl Row {
    fn applies_to(&self, command: &str) -> bool {
        self.commands.is_empty() || self.commands.contains(&command)
    }
}

/// The `Exit codes:` section of `command`'s `--help` (all commands' with `None`).
pub(super) fn help(command: Option<&str>) -> String {
    let mut out = String::from("Exit codes:\n");
    let mut last = None;
    for row in TABLE {
        let text = match command {
            Some(command) if !row.applies_to(command) => continue,
            Some(_) => row.meaning.to_owned(),
            None if row.commands.is_empty() => row.meaning.to_owned(),
            None => format!("{}: {}", row.commands.join(", "), row.meaning),
        };
        let first = if last == Some(row.code) {
            "     ".to_owned()
        } else {
            format!("  {}  ", row.code)
        };
        for (i, line) in wrap(&text, WIDTH - first.len()).iter().enumerate() {
            let indent = if i == 0 { first.as_str() } else { "       " };
            out.push_str(&format!("{indent}{line}\n"));
        }
        last = Some(row.code);
    }
    out.trim_end().to_owned()
}

/// Width of the help text (clap does not wrap `after_help`).
const WIDTH: usize = 100;

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// The table as markdown, as `docs/guide.md` shows it.
pub fn markdown() -> String {
    let mut out = String::from("| exit code | commands | meaning |\n| --- | --- | --- |\n");
    for row in TABLE {
        let commands = match row.commands {
            [] => "all".to_owned(),
            names => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&format!(
            "| `{}` | {commands} | {} |\n",
            row.code, row.meaning
        ));
    }
    out
}

/// Whether some row of the table documents `error`'s exit code for `command`.
#[cfg(test)]
fn documents(command: &str, error: &Error) -> bool {
    TABLE
        .iter()
        .any(|row| row.code == error.exit_code() && row.applies_to(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_a_command_can_end_with_has_its_row() {
        let everywhere = [Error::Config("x".into()), Error::Usage("x".into())];
        for command in ["record", "replay", "export", "drift", "verify", "ls"] {
            for error in &everywhere {
                assert!(documents(command, error), "{command}: {error:?}");
            }
        }
        for command in ["replay", "auto", "verify", "drift", "record", "run"] {
            assert!(documents(command, &Error::Verdict("x".into())), "{command}");
        }
        assert!(documents("drift", &Error::Unchecked("x".into())));
        assert!(!documents("ls", &Error::Verdict("x".into())));
    }

    #[test]
    fn help_lists_a_commands_rows_and_the_overview_names_the_commands() {
        let drift = help(Some("drift"));
        assert!(drift.contains("\n  3  a breaking change"), "{drift}");
        assert!(drift.contains("\n  4  no breaking change found"), "{drift}");
        assert!(!help(Some("ls")).contains("\n  3"));
        let all = help(None);
        assert!(
            all.contains("\n  3  replay, auto: a CI verdict failed"),
            "{all}"
        );
        assert!(all.contains("\n     verify: findings"), "{all}");
    }
}
