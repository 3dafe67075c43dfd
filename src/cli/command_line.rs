//! How `run` names the command it runs in its messages, which a CI log keeps: by its program
//! and the number of its arguments, never the arguments themselves. A command line carries
//! credentials in more forms than any masking knows (`-uadmin:pw`, `--proxy-user`, `-d{…}`,
//! `HUAWEICLOUD_SDK_SK=…` after `env`, a tool's own flags), and the user knows the rest: it is
//! the command they gave.

use std::ffi::OsString;

/// The command, for messages: `` `pytest` with 3 arguments ``.
pub(super) fn shown(command: &[OsString]) -> String {
    let Some((program, arguments)) = command.split_first() else {
        return "the command".to_owned();
    };
    let program = program.to_string_lossy();
    match arguments.len() {
        0 => format!("`{program}`"),
        1 => format!("`{program}` with 1 argument"),
        n => format!("`{program}` with {n} arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &[&str]) -> String {
        shown(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn a_command_is_named_by_its_program_never_by_its_arguments() {
        assert_eq!(line(&["pytest"]), "`pytest`");
        assert_eq!(line(&["pytest", "-x"]), "`pytest` with 1 argument");
        let curl = line(&[
            "curl",
            "-uadmin:pw-1",
            "--proxy-user",
            "a:pw-2",
            "-d{\"password\":\"pw-3\"}",
        ]);
        assert_eq!(curl, "`curl` with 4 arguments");
        assert_eq!(
            line(&["env", "HUAWEICLOUD_SDK_SK=sk-4", "true"]),
            "`env` with 2 arguments"
        );
    }
}
