//! `ims-vcr export`: a store into cassette files (one per request) or one HAR file, redacted
//! when asked (and said when not, if real owner or project values go out), never into the store's
//! own folder nor over a device.

use super::commands::{more_damaged, progress_bar, special_file_kind, writing_redaction_key};
use super::*;
use crate::model::count;

/// `export`'s flags.
#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Where to write: a folder of cassettes (created if needed), or with --format har a file
    /// (`-`: standard output) [default: `cassettes` in ims-vcr.toml].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// cassettes (one JSON file per request) or har (one HTTP Archive 1.2 file).
    #[arg(long, default_value = "cassettes", value_parser = ["cassettes", "har"])]
    format: String,
    /// Export what decodes when the store holds damaged entries, naming each one left out, and
    /// keep every cassette already in --out (one may be a damaged entry's). Without it such an
    /// export is refused and writes nothing.
    #[arg(long)]
    skip_damaged: bool,
    /// With --redact: give recordings whose redaction stamp predates pseudonym checks the checks
    /// of the values they hold now, your word that those are pseudonyms (review them, or run
    /// `verify --deny-file` first). Without it they keep none, and `verify --require-redaction`
    /// keeps saying their content cannot be checked.
    #[arg(long)]
    vouch_existing: bool,
    #[command(flatten)]
    redact: RedactArgs,
}

pub(super) fn export(args: ExportArgs, config: &Config) -> Result<()> {
    let out = args
        .out
        .or_else(|| config.cassettes.clone())
        .ok_or_else(|| {
            Error::Usage(match args.format.as_str() {
                "har" => {
                    "--out FILE is required with --format har (`--out -`: standard output)".into()
                }
                _ => "--out DIR is required (or set `cassettes` in ims-vcr.toml)".into(),
            })
        })?;
    // A folder that cannot be used is a runtime error (exit 1), like a `--store` that is none.
    if args.format == "cassettes" && out.exists() && !out.is_dir() {
        return Err(Error::Config(format!(
            "--out {}: not a directory; cassettes are written into a folder (--format har writes one file)",
            out.display()
        )));
    }
    // `--out -` writes the HAR document to standard output (a pipe, `| jq`); cassettes are a
    // folder and have no such form.
    let to_stdout = out.as_os_str() == "-";
    if to_stdout && args.format != "har" {
        return Err(Error::Usage(
            "--out -: cassettes are written into a folder; standard output (-) takes --format har"
                .into(),
        ));
    }
    if args.format == "har" && !to_stdout {
        refuse_special_out(&out)?;
    }
    if args.vouch_existing && args.redact.policy(config).is_none() {
        return Err(Error::Usage(
            "--vouch-existing vouches for redacted values: it needs --redact".into(),
        ));
    }
    if args.skip_damaged && args.format == "har" {
        return Err(Error::Usage(
            "--skip-damaged writes cassettes only: a HAR file is one file, and writing it again \
             without the damaged requests would lose them"
                .into(),
        ));
    }
    let store_dir = store_path(args.store.store, config);
    if !to_stdout {
        refuse_out_in_store(&out, &store_dir)?;
    }
    let store = Store::open_existing(&store_dir)?;
    let rules = store.rules()?;
    let (mut recordings, damaged) = store.load_readable(&rules)?;
    drop(store);
    if let Some(first) = damaged.first() {
        if !args.skip_damaged {
            return Err(Error::StoreRefused(format!(
                "{first}{}; nothing was exported. `--skip-damaged` exports the other {} and keeps \
                 the cassettes already in {}",
                more_damaged(damaged.len()),
                count(recordings.len(), "request", "requests"),
                out.display()
            )));
        }
        for e in &damaged {
            tracing::warn!("{e}; left out of the export");
        }
    }
    let unredacted = match args.redact.policy(config) {
        Some(policy) => {
            let redactor = Redactor::new(policy, writing_redaction_key()?)
                .vouching_existing(args.vouch_existing);
            recordings = cassette::redact_recordings(&recordings, &redactor, &rules)?;
            None
        }
        None => unredacted_note(&recordings),
    };
    // Said after the summary, where it is read: written unredacted, as asked, but never silently.
    let warn_unredacted = || {
        if let Some(note) = &unredacted {
            tracing::warn!("{note}");
        }
    };
    if args.format == "har" {
        let mut har = serde_json::to_vec_pretty(&crate::formats::har::to_har(&recordings))
            .expect("a HAR document serialises");
        let to = if to_stdout {
            // As every output command: a reader that goes early (`| head`) ends it quietly.
            har.push(b'\n');
            crate::cli::output::stdout(&har)?;
            "standard output".to_owned()
        } else {
            // Named by the flag: a folder that is not there (`--out nodir/x.har`), a trailing
            // slash (`--out dir/`).
            cassette::write_atomically(&out, &har).map_err(|e| match e {
                Error::Io { source, .. } => Error::Config(format!(
                    "--out {}: cannot write the HAR file there: {source}",
                    out.display()
                )),
                e => e,
            })?;
            out.display().to_string()
        };
        errln!(
            "exported {} to {to} (HAR 1.2)",
            count(recordings.len(), "request", "requests"),
        );
        warn_unredacted();
        return Ok(());
    }
    // Made here first, so a path that cannot be a folder (under a file, or where nothing can be
    // made) names the flag it came from.
    std::fs::create_dir_all(&out).map_err(|e| {
        Error::Config(format!(
            "--out {}: cannot make the folder: {e}",
            out.display()
        ))
    })?;
    let progress = progress_bar(recordings.len(), "exporting");
    let summary = cassette::write_dir_with_progress(
        &out,
        &recordings,
        &rules,
        damaged.is_empty(),
        &progress,
    )?;
    progress.finish_and_clear();
    // Name what was removed (the first few): a file removed silently is a fixture lost.
    const NAMED: usize = 5;
    let removed = match summary.removed.len() {
        0 => String::new(),
        n => {
            let shown: Vec<String> = summary.removed[..n.min(NAMED)]
                .iter()
                .map(|p| p.strip_prefix(&out).unwrap_or(p).display().to_string())
                .collect();
            let more = match n.saturating_sub(NAMED) {
                0 => String::new(),
                more => format!(" and {more} more (RUST_LOG=debug names each)"),
            };
            format!(
                ", removed {} this export no longer writes (the request is gone from the \
                 store, or is now written under another name, as `--redact` names a request by \
                 its pseudonyms): {}{more}",
                count(n, "stale cassette", "stale cassettes"),
                shown.join(", ")
            )
        }
    };
    let unchanged = match summary.unchanged {
        0 => String::new(),
        n => format!(
            " ({} already held the same answers and {} left as {})",
            count(n, "cassette", "cassettes"),
            if n == 1 { "was" } else { "were" },
            if n == 1 { "it was" } else { "they were" },
        ),
    };
    errln!(
        "exported {} ({}) to {}{unchanged}{removed}",
        count(summary.files, "request", "requests"),
        count(summary.answers, "answer", "answers"),
        out.display()
    );
    warn_unredacted();
    Ok(())
}

/// What an export without `--redact` (and without `[redact] enabled`) says when the cassettes it
/// writes hold real values the default policy redacts (an image's `owner`, `X-Project-Id`, a
/// token's project and user ids) in answers recorded unredacted: cassettes are made to be
/// shared, and a project id committed to git is not taken back. Names what was found (`field
/// owner`), never a value; `None` when there is nothing to say.
fn unredacted_note(recordings: &[crate::model::recording::Recording]) -> Option<String> {
    use crate::secrets::policy_values::policy_values;
    let policy = crate::model::redaction::RedactionPolicy::default();
    let mut labels = std::collections::BTreeSet::new();
    let mut requests = 0;
    for recording in recordings {
        let mut holds = false;
        for answer in &recording.answers {
            let mut values = policy_values(&policy, answer);
            // A stamped answer: what its redaction's policy names is pseudonyms (a value pasted
            // in since is what its checks do not vouch for); an older stamp's policy may name
            // less than today's default (no `project.id`), and the rest is as recorded.
            if let Some(stamp) = &answer.redaction {
                let covered = policy_values(&stamp.policy, answer);
                values.retain(|value, _| !covered.contains_key(value));
                values.extend(crate::secrets::vouch::unvouched(stamp, answer).unwrap_or_default());
            }
            holds |= !values.is_empty();
            // Header names as one spelling, whatever case they were recorded in.
            labels.extend(
                values
                    .into_values()
                    .map(|label| match label.strip_prefix("header ") {
                        Some(name) => format!("header {}", name.to_ascii_lowercase()),
                        None => label,
                    }),
            );
        }
        requests += usize::from(holds);
    }
    if requests == 0 {
        return None;
    }
    // Headers and query parameters first: they say most plainly what was found (a field's
    // label is its last name: `project.id` is `field id`).
    let mut labels: Vec<String> = labels.into_iter().collect();
    labels.sort_by_key(|label| (label.starts_with("field "), label.clone()));
    const NAMED: usize = 4;
    let mut named: Vec<String> = labels.iter().take(NAMED).cloned().collect();
    if labels.len() > NAMED {
        named.push(format!("{} more", labels.len() - NAMED));
    }
    Some(format!(
        "{} of {} exported hold{} real values the default redaction replaces ({}), written as \
         recorded: before they leave your team, export with --redact (or set \
         `[redact] enabled = true` in ims-vcr.toml); `ims-vcr verify DIR --require-redaction` \
         is the CI gate",
        count(requests, "request", "requests"),
        recordings.len(),
        if requests == 1 { "s" } else { "" },
        named.join(", ")
    ))
}

/// `--out` of a HAR export is a file to create or replace (through a temporary file and a
/// rename): a symlink, a folder, or anything but a regular file at that name is refused before
/// anything is read or written. Replacing a device node or a FIFO with a regular file would
/// destroy it (as root, `--out /dev/null` would replace the system's /dev/null).
fn refuse_special_out(out: &Path) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::Config(format!(
            "--out {}: {what}; --format har writes a new regular file there (through a rename) and \
             would replace it: remove it, or give another file name, e.g. recording.har",
            out.display()
        )))
    };
    let folder = || {
        Err(Error::Config(format!(
            "--out {}: is a folder; --format har writes one file: give its name, e.g. {}",
            out.display(),
            out.join("recording.har").display()
        )))
    };
    match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            refuse("is a symlink (ims-vcr does not write through symlinks)")
        }
        Ok(meta) if meta.is_dir() => folder(),
        Ok(meta) if !meta.is_file() => refuse(&format!(
            "is {}, not a regular file",
            special_file_kind(&meta.file_type())
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Config(format!("--out {}: {e}", out.display()))),
    }
}

/// An export never writes into the store's own folder: its cassettes would sit among sled's
/// files (and that folder would then pass for a cassette folder).
fn refuse_out_in_store(out: &Path, store: &Path) -> Result<()> {
    // The nearest folder of `out` that exists, as the system names it.
    let existing = out
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    let (Ok(out_at), Ok(store_at)) = (existing.canonicalize(), store.canonicalize()) else {
        return Ok(());
    };
    if out_at.starts_with(&store_at) {
        return Err(Error::Config(format!(
            "--out {}: inside the store {}; export to another folder",
            out.display(),
            store.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{answering, recording};
    use crate::model::redaction::{RedactionPolicy, RedactionStamp};

    fn one(
        answer: crate::model::interaction::Interaction,
    ) -> Vec<crate::model::recording::Recording> {
        let mut recording = recording("/v2/images/x", &["active"]);
        recording.answers = vec![answer];
        vec![recording]
    }

    #[test]
    fn the_unredacted_note_names_where_real_values_are_never_the_values() {
        let raw = answering(r#"{"owner": "1df6a82676e8fa2aa00e0e7e7f737d15", "status": "active"}"#);
        let note = unredacted_note(&one(raw.clone())).expect("a note");
        assert!(note.starts_with("1 request of 1 exported holds real values the default redaction replaces (field owner)"), "{note}");
        assert!(!note.contains("1df6a826"), "{note}");
        // Redacted under today's default policy: nothing to say.
        let mut stamped = raw.clone();
        stamped.redaction = Some(RedactionStamp {
            policy: RedactionPolicy::default(),
            key_fingerprint: "f".into(),
            pseudonym_checks: None,
        });
        assert_eq!(unredacted_note(&one(stamped)), None);
        // Stamped by an older policy that named only `owner`: a token's project id it never
        // covered is said, the owner (its pseudonym) is not.
        let mut old = answering(
            r#"{"owner": "pseudonym-0001", "token": {"project": {"id": "proj-real-123456"}}}"#,
        );
        old.redaction = Some(RedactionStamp {
            policy: RedactionPolicy {
                fields: vec!["owner".into()],
                headers: vec![],
                query: vec![],
            },
            key_fingerprint: "f".into(),
            pseudonym_checks: None,
        });
        let note = unredacted_note(&one(old)).expect("a note for the older stamp");
        assert!(note.contains("(field id)"), "{note}");
        // Headers first, in one spelling, before fields.
        let mut headed = raw;
        headed.request.headers = vec![("X-Project-Id".into(), "proj-real-654321".into())];
        headed.response.headers = vec![("x-project-id".into(), "proj-real-654321".into())];
        let note = unredacted_note(&one(headed)).expect("a note");
        assert!(
            note.contains("(header x-project-id, field owner)"),
            "{note}"
        );
    }
}
