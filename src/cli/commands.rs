//! The offline commands (`import`, `verify`, `drift`, `completions`; `export` is in
//! `export.rs`): flags into library calls, with progress bars and the printed reports.

use super::*;
use crate::model::count;

/// Prints `shell`'s completion script.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "ims-vcr", &mut script);
    let script = match shell {
        clap_complete::Shell::Bash => bash_completion_fixed(&script),
        _ => script,
    };
    output::stdout(&script)
}

/// clap_complete's bash script names the subcommand states `ims__vcr__subcmd__…` where it sets
/// them but `ims__subcmd__vcr__…` where it matches them (the `-` of the binary name is turned into
/// a separator twice), so no flag of any subcommand completed. One spelling, the one it sets.
fn bash_completion_fixed(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("ims__subcmd__vcr__", "ims__vcr__")
        .into_bytes()
}

/// "a FIFO", "a character device"... for a file that is neither a regular file, a folder nor a
/// symlink.
pub(super) fn special_file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = kind;
    "a special file"
}

pub(super) async fn import(args: ImportArgs, config: &Config) -> Result<()> {
    // Every file is validated (and redacted, and leak-checked) before the store is written.
    let redactor = match args.redact.policy(config) {
        Some(policy) => Some(Redactor::new(policy, writing_redaction_key()?)),
        None => None,
    };
    let file = match args.dir.is_file() {
        true => Some(cassette::read_limited(
            &args.dir,
            cassette::MAX_HAR_FILE,
            "HAR file",
        )?),
        false => None,
    };
    // A file is a HAR, or one cassette (`import cassettes/x.json`, as a user tries first).
    let (har, one_cassette) = match file {
        Some(bytes) if cassette::is_one_cassette(&bytes) => (None, Some(bytes)),
        file => (file, None),
    };
    let (recordings, rules) = if let Some(bytes) = &one_cassette {
        if bytes.len() as u64 > cassette::MAX_CASSETTE_FILE {
            return Err(Error::cassette(
                &args.dir,
                format!(
                    "{} bytes, over the {} a cassette may hold",
                    bytes.len(),
                    cassette::MAX_CASSETTE_FILE
                ),
            ));
        }
        let (recording, rules) = cassette::parse_in_session(&args.dir, bytes, None)?;
        match &redactor {
            Some(redactor) => (
                cassette::redact_recordings(&[recording], redactor, &rules)?,
                rules,
            ),
            None => (vec![recording], rules),
        }
    } else if let Some(bytes) = &har {
        let rules = MatchRules::default();
        let recordings =
            crate::formats::har::from_har(&args.dir, bytes, &rules, redactor.as_ref())?;
        // As a folder with no cassette: said, and no store is made for it.
        if recordings.is_empty() {
            tracing::warn!(file = %args.dir.display(), "holds no entry (log.entries is empty): nothing imported");
            return Ok(());
        }
        (recordings, rules)
    } else {
        let dir = existing(&args.dir, "import PATH")?;
        let progress = progress_bar(0, "validating");
        let (recordings, rules) = cassette::read_dir_with_progress(dir, &progress)?;
        progress.finish_and_clear();
        // A folder of HAR files is not a folder of cassettes: said, rather than importing nothing.
        if recordings.is_empty() {
            let hars: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.to_ascii_lowercase().ends_with(".har"))
                .collect();
            if let Some(first) = hars.first() {
                return Err(Error::Usage(format!(
                    "{} holds no cassette but {} HAR file(s) ({first}, ...): import each HAR file \
                     by its path, e.g. `ims-vcr import {}`",
                    dir.display(),
                    hars.len(),
                    dir.join(first).display()
                )));
            }
            // Nothing to import (a project with no cassettes yet) is no error, but said, and
            // no store is made for it.
            tracing::warn!(
                folder = %dir.display(),
                "holds no cassette (*.json, in it or a session's folder): nothing imported"
            );
            return Ok(());
        }
        match &redactor {
            Some(redactor) => (
                cassette::redact_recordings(&recordings, redactor, &rules)?,
                rules,
            ),
            None => (recordings, rules),
        }
    };
    let store_dir = store_path(args.store.store, config);
    let store = Store::open(&store_dir)?;
    let (recordings, rules) = match &har {
        // A HAR carries no match rules: once it validated, key it with the store's own rules.
        Some(bytes) => {
            let rules = store.rules()?;
            (
                crate::formats::har::from_har(&args.dir, bytes, &rules, redactor.as_ref())?,
                rules,
            )
        }
        _ => (recordings, rules),
    };
    // Re-keying a store under other rules would merge for good the recordings they kept apart
    // (and commit before the import): a non-empty store keeps its rules, and a folder recorded
    // under others is refused before anything changes. An empty folder changes nothing.
    let current = store.rules()?;
    if current != rules && !recordings.is_empty() {
        if !store.is_empty() {
            let show = |r: &MatchRules| serde_json::to_string(r).expect("rules serialise");
            return Err(Error::Config(format!(
                "import {}: its cassettes were recorded with match rules {}, the store {} with {}; \
                 importing would re-key the store and merge requests its rules keep apart. Import \
                 into another --store, or export the store and re-record one of them",
                args.dir.display(),
                show(&rules),
                store_dir.display(),
                show(&current)
            )));
        }
        store.set_rules(&rules).await?;
    }
    let imported = store.import_counted(&recordings).await?;
    // The import is committed; a pack that cannot be written only slows the next replay.
    if let Err(e) = store.replay_pack() {
        tracing::warn!(error = %e, "cannot update the replay pack");
    }
    let replaced = match imported.replaced {
        0 => String::new(),
        1 => format!(
            " (the {} it had in the store {} gone)",
            count(imported.replaced_answers, "answer", "answers"),
            if imported.replaced_answers == 1 {
                "is"
            } else {
                "are"
            }
        ),
        _ => format!(
            " (the {} they had in the store are gone)",
            count(imported.replaced_answers, "answer", "answers")
        ),
    };
    errln!(
        "imported {} ({}) into {}: {} new, {} replaced{replaced}",
        count(recordings.len(), "request", "requests"),
        count(
            recordings.iter().map(|r| r.answers.len()).sum::<usize>(),
            "answer",
            "answers"
        ),
        store_dir.display(),
        imported.added,
        imported.replaced,
    );
    Ok(())
}

pub(super) fn verify(args: VerifyArgs, config: &Config) -> Result<()> {
    let dir = cassettes_path(args.dir, config);
    let dir = existing(&dir, "verify DIR")?;
    let mut deny: Vec<Needle> = crate::tools::verify::deny_flags(&args.deny);
    for file in &args.deny_files {
        input::check("--deny-file", file)?;
        deny.extend(crate::tools::verify::deny_file(file)?);
    }
    let setting = match &config.source {
        Some(source) => format!("{} [verify] deny_files:", source.display()),
        None => "[verify] deny_files:".to_owned(),
    };
    for file in &config.verify.deny_files {
        input::check(&setting, file)?;
        deny.extend(crate::tools::verify::deny_file(file)?);
    }
    let require = (args.require_redaction || config.redact.enabled)
        .then(|| config.redaction_policy(&[], &[], &[]));
    let options = VerifyOptions {
        deny,
        require_redaction: require,
    };
    let (findings, summary) = crate::tools::verify::verify_dir(dir, &options)?;
    for finding in &findings {
        output::report(&format!("{finding}\n"))?;
    }
    if summary.files == 0 {
        // An empty folder holds no leak, but it proves nothing either: a typo in the path, or
        // an export that has not run yet.
        tracing::warn!(
            "{}: no cassette files (*.json) here, so nothing was checked",
            dir.display()
        );
        if options.require_redaction.is_some() {
            return Err(Error::Verdict(format!(
                "{}: no cassette to check, and --require-redaction needs every cassette \
                 redacted: export them with `ims-vcr export --redact --out {}`",
                dir.display(),
                dir.display()
            )));
        }
    }
    if findings.is_empty() {
        output::report(&format!(
            "verified {} ({}) in {}: no credential headers{}, {} checked, none found\n",
            count(summary.files, "cassette", "cassettes"),
            count(summary.answers, "answer", "answers"),
            dir.display(),
            if options.require_redaction.is_some() {
                ", every file redacted as the policy requires"
            } else {
                ""
            },
            count(options.deny.len(), "denied value", "denied values")
        ))?;
        Ok(())
    } else {
        Err(Error::Verdict(format!(
            "verify found {} in {}",
            count(findings.len(), "problem", "problems"),
            dir.display()
        )))
    }
}

/// `drift --help`'s examples and what drift leaves out.
pub(super) const DRIFT_HELP: &str = "\
Examples:
  # Check the cassettes against the live endpoint (token from the environment, never a flag)
  IMS_VCR_DRIFT_TOKEN=$TOKEN ims-vcr drift --upstream https://ims.cn-north-4.myhuaweicloud.com
  # AK/SK re-signing like record (HUAWEICLOUD_SDK_AK/_SK set), a store, one more volatile field
  ims-vcr drift --upstream https://ims.cn-north-4.myhuaweicloud.com --store .ims-vcr/store --ignore-field checksum

Values of request_id, x-request-id, date, every *_at field and the redacted fields are not
compared (their presence and type are). Nothing is written. Only GET, HEAD and OPTIONS requests
are sent unless --unsafe-methods is given: a recorded DELETE or sign-in POST is reported as
skipped, not sent again.";

/// Recordings from `--store` or `--cassettes`, or the default source (for ls and show), and
/// which source that was.
pub(super) fn load_source(
    args: &SourceArgs,
    config: &Config,
) -> Result<(Vec<crate::model::recording::Recording>, Source)> {
    let source = Source::choose(args.store.clone(), args.cassettes.clone(), config)?;
    let recordings = match &source {
        Source::Store(dir, _) => readable_recordings(dir)?,
        Source::Cassettes(dir, _) => cassette::read_dir(existing(dir, "--cassettes")?)?.0,
    };
    Ok((recordings, source))
}

/// The recordings of the store at `dir` that decode, for the read-only views (`ls`, `show`,
/// `drift`): each damaged entry is named in a warning and left out, never hiding the rest. The
/// store is closed again at once (they never write to it).
pub(super) fn readable_recordings(dir: &Path) -> Result<Vec<crate::model::recording::Recording>> {
    let store = Store::open_existing(dir)?;
    let (recordings, damaged) = store.load_readable(&store.rules()?)?;
    for e in &damaged {
        tracing::warn!("{e}; left out here (it stays in the store; `export` names it too)");
    }
    Ok(recordings)
}

/// ", and N more damaged entries" for a count of damaged entries beyond the first.
pub(super) fn more_damaged(total: usize) -> String {
    match total {
        0 | 1 => String::new(),
        n => format!(
            ", and {} more",
            count(n - 1, "damaged entry", "damaged entries")
        ),
    }
}

/// A progress bar on a terminal; hidden (plain summaries only) when stderr is not one.
pub(super) fn progress_bar(len: usize, what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({rate}, {eta})")
            .expect("a valid progress template")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&per_second(state.per_sec()));
                },
            )
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// A progress rate people read at a glance: `3113/s`, `2.5/s` (indicatif's own `{per_sec}`
/// prints `3,113.1542/s`).
pub(super) fn per_second(rate: f64) -> String {
    if rate >= 10.0 || rate == 0.0 {
        format!("{rate:.0}/s")
    } else {
        format!("{rate:.1}/s")
    }
}

/// The redaction key to write redacted recordings with (`export`, `import`, `record` with
/// `--redact`): an `IMS_VCR_REDACT_KEY` that is set but empty is refused, as it is what a CI
/// secret that did not reach the job gives, and its pseudonyms would then be the public key's,
/// not the team's (unset, the public default key is meant).
pub(super) fn writing_redaction_key() -> Result<PseudonymKey> {
    use crate::secrets::pseudonym::KEY_ENV;
    if std::env::var_os(KEY_ENV).is_some_and(|v| v.is_empty()) {
        return Err(Error::Config(format!(
            "{KEY_ENV} is set but empty (a CI secret that did not reach this job?): set it to the \
             team's redaction key, or unset it to use the public default key"
        )));
    }
    Ok(redaction_key())
}

/// The redaction key from `IMS_VCR_REDACT_KEY`, warning when it is the public default.
pub(super) fn redaction_key() -> PseudonymKey {
    let (key, public) = PseudonymKey::from_lookup(|n| std::env::var(n).ok());
    if public {
        tracing::debug!(
            fingerprint = key.fingerprint(),
            "using the public default redaction key"
        );
    }
    key
}

pub(super) fn existing<'a>(path: &'a Path, flag: &str) -> Result<&'a Path> {
    if path.is_dir() {
        Ok(path)
    } else {
        let har = crate::formats::har::is_har_path(path);
        let what = if flag == "--cassettes" && har && path.is_file() {
            // A HAR file is recordings too, in the form `import` reads.
            format!(
                "not a directory but a file; a HAR file is imported into a store first \
                 (`ims-vcr import --store DIR {}`), which is then read with --store DIR",
                path.display()
            )
        } else if path.exists() {
            "not a directory".to_owned()
        } else {
            "no such directory".to_owned()
        };
        Err(Error::Config(format!("{flag} {}: {what}", path.display())))
    }
}
