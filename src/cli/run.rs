//! `ims-vcr run`: the proxy around one command. Starts the proxy on a free loopback port, runs
//! the command with `IMS_VCR_URL` and `IMS_VCR_MODE` in its environment, stops the proxy when the
//! command exits (or when ims-vcr is told to stop: the command gets the signal first), prints the
//! summary, and exits with the command's status or the verdict. `--verify-replay N` then replays
//! what was just recorded N times with the same command.

use std::collections::HashSet;
use std::ffi::OsString;
use std::process::ExitStatus;

use super::command_line::shown;
use super::signals::{Group, Signals};
use super::*;
use crate::Summary;
use crate::proxy::Mode;

/// How long the command gets to exit after a forwarded signal before it is killed.
const GRACE: Duration = Duration::from_secs(10);

pub(super) const RUN_HELP: &str = "\
The proxy listens on a free loopback port (--listen 127.0.0.1:0) while CMD runs with
IMS_VCR_URL=http://127.0.0.1:PORT (https:// with --tls-cert) and IMS_VCR_MODE=MODE added to its
environment (and, when
HUAWEICLOUD_SDK_AK/_SK are set, dummy keys in their place and no HUAWEICLOUD_SDK_SECURITY_TOKEN:
the real ones stay with the proxy, which re-signs). stdin, stdout
and stderr are CMD's: ims-vcr prints no listening line, only its log and, when CMD exits, the
summary, on stderr.

The mode: --mode, else the IMS_VCR_MODE environment variable, else replay. Flags of the other
modes are accepted and ignored, so one command line serves every mode and CI switches with the
variable alone. record, auto and passthrough need --upstream or --route. record and auto write --store;
replay serves --store if given, else --cassettes (default: cassettes; the other modes say they do
not read it). --fail-on-miss and
--fail-on-unused apply to replay and auto.

SIGINT, SIGTERM or SIGHUP: CMD gets the signal (outside a terminal's foreground, CMD's whole process
group does; Ctrl-C at a terminal reaches it directly), the proxy keeps serving until CMD (and what
it started) has exited, whatever still runs 10 s later is killed (at once on a second signal,
sent 250 ms or more after the first),
then the proxy stops.

--verify-replay N: after a record or auto run that succeeded, CMD runs N more times with
IMS_VCR_MODE=replay against a replay of the store (no upstream); a request that misses, a
recording that the first run made or played and a replay leaves unused, or a failing CMD, fails
with exit 3 naming each of them and the run.

Exit status: CMD's if not 0 (128+N if signal N ended it; 127 if it is not found, 126 if it cannot
be executed); else 130/143/129 if ims-vcr got SIGINT/SIGTERM/SIGHUP; else 3 if a verdict failed (also: answers
served but not recorded because the store failed); else 0.
The summary of each run goes to stderr, prefixed with the run: [record], [verify-replay 1/2]...

Examples:
  ims-vcr run --cassettes cassettes --fail-on-miss -- pytest tests/
  IMS_VCR_MODE=record ims-vcr run --upstream https://ims.cn-north-4.myhuaweicloud.com \\
      --verify-replay 1 -- pytest tests/";

/// `run`: the serving flags of every mode (those of `auto`, a superset of `record`'s, plus the
/// replay source), the mode, `--verify-replay` and the command.
#[derive(Debug, Args)]
#[command(
    mut_arg("listen", |a| a.default_value("127.0.0.1:0")),
    // Optional here (replay needs none); the forwarding modes require it or a --route, also
    // when the mode comes from IMS_VCR_MODE (checked in `run_command`, where the other commands
    // have clap check it: `cli::command`).
    mut_arg("upstream", |a| a
        .help("Upstream base URL, e.g. https://ims.cn-north-4.myhuaweicloud.com (the route /): record, auto and passthrough need it or a --route; replay ignores it")),
    mut_arg("store", |a| a.help(
        "Store directory (sled): record and auto write it, --verify-replay replays it, replay serves it instead of --cassettes [default: .ims-vcr/store, or `store` in ims-vcr.toml]"
    )),
)]
pub(super) struct RunArgs {
    /// record, auto, replay or passthrough; the flag wins over IMS_VCR_MODE.
    #[arg(
        long,
        env = "IMS_VCR_MODE",
        default_value = "replay",
        value_name = "MODE",
        value_parser = mode_parser(),
    )]
    mode: Mode,
    #[command(flatten)]
    serving: AutoArgs,
    /// Replay mode: serve this folder of cassette files [default: cassettes, or `cassettes` in
    /// ims-vcr.toml].
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    cassettes: Option<PathBuf>,
    /// After a record or auto run that succeeded, run CMD N more times against a replay of the
    /// store; exit 3 naming each request that missed or recording left unused.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    verify_replay: u32,
    /// The command to run and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl RunArgs {
    /// Whether the proxy `run` starts forwards every request (`--mode record` or `passthrough`).
    pub(super) fn forwards_every_request(&self) -> bool {
        matches!(self.mode, Mode::Record | Mode::Passthrough)
    }
}

/// `--mode`: the four names (listed in `--help` and completions), as a [`Mode`].
fn mode_parser() -> ModeParser {
    ModeParser
}

const MODES: [&str; 4] = ["record", "auto", "replay", "passthrough"];

/// [`mode_parser`]: a bad value from `IMS_VCR_MODE` is reported as the variable's, not as a
/// `--mode` nobody typed.
#[derive(Clone)]
struct ModeParser;

impl clap::builder::TypedValueParser for ModeParser {
    type Value = Mode;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<Mode, clap::Error> {
        clap::builder::PossibleValuesParser::new(MODES)
            .map(|mode| mode.parse::<Mode>().expect("a listed mode"))
            .parse_ref(cmd, arg, value)
    }

    fn parse_ref_(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
        source: clap::parser::ValueSource,
    ) -> std::result::Result<Mode, clap::Error> {
        if source != clap::parser::ValueSource::EnvVariable {
            return self.parse_ref(cmd, arg, value);
        }
        // CI sets a variable it has no value for to the empty string (`${{ inputs.mode }}` on a
        // push): that is no mode, and the default applies, as the pytest plugin reads it.
        if value.to_string_lossy().trim().is_empty() {
            return Ok(Mode::Replay);
        }
        let parsed = self.parse_ref(cmd, arg, value);
        parsed.map_err(|_| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "invalid value {:?} in the environment variable IMS_VCR_MODE (the mode when \
                     --mode is not given)\n  [possible values: {}]\n",
                    value.to_string_lossy(),
                    MODES.join(", ")
                ),
            )
            .with_cmd(cmd)
        })
    }

    fn parse_(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: std::ffi::OsString,
        source: clap::parser::ValueSource,
    ) -> std::result::Result<Mode, clap::Error> {
        self.parse_ref_(cmd, arg, &value, source)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            MODES.into_iter().map(clap::builder::PossibleValue::new),
        ))
    }
}

/// How one run of the command ended.
enum End {
    /// It exited by itself.
    Exited(ExitStatus),
    /// ims-vcr got `signal` and passed it on; the command then ended with `status`.
    Interrupted { signal: i32, status: ExitStatus },
    /// It could not be started (or waited for).
    Failed(std::io::Error),
}

/// One proxy session around one run of the command.
struct Session {
    summary: Summary,
    end: End,
}

/// `ims-vcr run`.
pub(super) async fn run_command(args: RunArgs, config: &Config) -> Result<()> {
    // Installed before anything starts, so an early signal is not lost to the default action.
    let mut signals = Signals::install();
    let mode = args.mode;
    let record = &args.serving.record;
    let playback = &args.serving.playback;
    // Usage errors, as clap reports them (the mode may come from IMS_VCR_MODE).
    let usage = |why: String| {
        errln!("error: {why}\n\nFor more information, try '--help'.");
        Err(Error::ExitCode(2))
    };
    if mode.forwards() && record.upstream.upstream.is_none() && record.upstream.routes.is_empty() {
        return usage(format!(
            "{} mode needs --upstream <URL> (or --route <PREFIX=URL>)",
            mode.as_str()
        ));
    }
    if record.listen.stop_on_stdin_eof {
        return usage("--stop-on-stdin-eof does not apply to run: standard input is CMD's".into());
    }
    if let Some(dir) = args.cassettes.as_ref().filter(|_| mode != Mode::Replay) {
        // Accepted, as every other mode's flag; said, as `auto` may be expected to start from it.
        let (dir, mode) = (dir.display(), mode.as_str());
        tracing::warn!(
            "--cassettes {dir} is not read in {mode} mode, which works on the store; to start from the cassettes, `ims-vcr import` them into the store first, and `ims-vcr export` the store to them after"
        );
    }
    let matching = &record.matching;
    let match_flags = [
        ("--match-header", !matching.match_headers.is_empty()),
        ("--ignore-query", !matching.ignore_query.is_empty()),
        ("--volatile", !matching.volatile.is_empty()),
        ("--shift-time", !matching.shift_time.is_empty()),
    ];
    let given: Vec<&str> = match_flags
        .iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| *flag)
        .collect();
    if mode == Mode::Replay && !given.is_empty() {
        // Accepted, as the other modes take them; said, as replay reads the rules the
        // recordings were made with.
        tracing::warn!(
            "{} not read in replay mode: match rules are saved with the recordings when they are \
             made (record, auto), and replay uses those",
            given.join(", ") + if given.len() == 1 { " is" } else { " are" }
        );
    }
    let builder = match mode {
        Mode::Record => routed(forwarding(record, config)?, mode, &record.upstream)?,
        Mode::Auto => routed(
            forwarding(record, config)?
                .sequence(playback.sequence)
                .fail_on_unused(playback.fail_on_unused),
            mode,
            &record.upstream,
        )?,
        Mode::Passthrough => routed(server(&record.listen)?, mode, &record.upstream)?,
        Mode::Replay => replay_source(
            server(&record.listen)?
                .replay()
                .sequence(playback.sequence)
                .fail_on_unused(playback.fail_on_unused),
            record.store.store.clone(),
            args.cassettes.clone(),
            config,
        )?,
    };
    let first = session(builder, mode, mode.as_str(), &args.command, &mut signals).await?;
    let verdict = match mode {
        Mode::Replay | Mode::Auto => apply_verdicts(&first.summary, playback),
        Mode::Record | Mode::Passthrough => super::serve::stored_everything(&first.summary),
    };
    let status = match first.end {
        End::Exited(status) => status,
        end => return Err(ended_early(&args.command, end, verdict)),
    };
    if !status.success() {
        errln!("ims-vcr run: {} failed ({status})", shown(&args.command));
        if let Err(Error::Verdict(why)) = verdict {
            errln!("verdict: {why} (the exit status is the command's)");
        }
        return Err(Error::ExitCode(exit_code(status)));
    }
    verdict?;
    if args.verify_replay > 0 {
        if mode.stores() {
            verify_replay(&args, config, &first.summary, &mut signals).await?;
        } else {
            tracing::warn!(
                "--verify-replay ignored: {} mode records nothing",
                mode.as_str()
            );
        }
    }
    Ok(())
}

/// `--verify-replay N`: the command against a replay of the store just written, N times.
async fn verify_replay(
    args: &RunArgs,
    config: &Config,
    recorded: &Summary,
    signals: &mut Signals,
) -> Result<()> {
    let record = &args.serving.record;
    let store = store_path(record.store.store.clone(), config);
    // Recordings the recording run neither made nor played are none of the replays' business.
    let untouched: HashSet<&str> = recorded.unused.iter().map(String::as_str).collect();
    let n = args.verify_replay;
    for run in 1..=n {
        // A signal that came while no command ran (say, during the drain) stops here.
        if let Some(signal) = signals.pending().await {
            errln!("ims-vcr run: interrupted by signal {signal}; --verify-replay stopped");
            return Err(Error::ExitCode(u8::try_from(128 + signal).unwrap_or(1)));
        }
        let builder = server(&record.listen)?
            .replay()
            .sequence(args.serving.playback.sequence)
            .store(&store);
        let label = format!("verify-replay {run}/{n}");
        let Session { summary, end } =
            session(builder, Mode::Replay, &label, &args.command, signals).await?;
        let mut problems = Vec::new();
        match end {
            End::Exited(status) if status.success() => {}
            End::Exited(status) => {
                problems.push(format!("run {run}: the command failed ({status})"))
            }
            end => return Err(ended_early(&args.command, end, Ok(()))),
        }
        for miss in &summary.misses {
            problems.push(format!(
                "run {run}: missed ({}x) {}",
                miss.count,
                miss.request.replace('\n', " | ")
            ));
        }
        if summary.untracked_misses > 0 {
            problems.push(format!(
                "run {run}: and {} more missed requests (not listed)",
                summary.untracked_misses
            ));
        }
        for unused in &summary.unused {
            if !untouched.contains(unused.as_str()) {
                problems.push(format!("run {run}: unused {unused}"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Verdict(format!(
                "--verify-replay: what was just recorded does not replay:\n  {}",
                problems.join("\n  ")
            )));
        }
    }
    errln!("ims-vcr run: --verify-replay: {n} replay(s) of the recording passed");
    Ok(())
}

/// Starts the proxy, runs the command against it to its end, stops the proxy and prints the
/// summary, prefixed with `label`.
async fn session(
    builder: ProxyServerBuilder,
    mode: Mode,
    label: &str,
    command: &[OsString],
    signals: &mut Signals,
) -> Result<Session> {
    let server = builder.start().await?;
    let uri = server.uri();
    tracing::info!(%uri, "{label}: running {}", shown(command));
    let end = supervise(command, &uri, mode, signals).await;
    tracing::info!("shutting down: draining connections");
    let summary = server.shutdown().await?;
    err!("[{label}] {summary}");
    Ok(Session { summary, end })
}

/// The AK/SK the proxy re-signs with stay the proxy's: the command gets dummy ones in their
/// place (an SDK reading `HUAWEICLOUD_SDK_AK`/`_SK` still finds keys, and signs with them for
/// the proxy, which re-signs), and no security token. So a test that reaches past the proxy
/// (an endpoint not pointed at it) cannot call the real cloud with the real keys, and a test
/// that prints its environment shows none; a record run's command sees what a replay run's sees.
fn hide_the_proxys_keys(cmd: &mut tokio::process::Command) {
    use crate::net::signer::{ENV_AK, ENV_SECURITY_TOKEN, ENV_SK};
    let mut hidden = Vec::new();
    for (name, dummy) in [(ENV_AK, DUMMY_AK), (ENV_SK, DUMMY_SK)] {
        if std::env::var_os(name).is_some() {
            cmd.env(name, dummy);
            hidden.push(name);
        }
    }
    if std::env::var_os(ENV_SECURITY_TOKEN).is_some() {
        cmd.env_remove(ENV_SECURITY_TOKEN);
        hidden.push(ENV_SECURITY_TOKEN);
    }
    if !hidden.is_empty() {
        tracing::info!(
            "the command gets dummy keys in place of {} (the proxy signs with the real ones)",
            hidden.join(", ")
        );
    }
}

/// What the command finds in `HUAWEICLOUD_SDK_AK` and `HUAWEICLOUD_SDK_SK` when the proxy has
/// keys (see [`hide_the_proxys_keys`]).
pub(crate) const DUMMY_AK: &str = "IMSVCRDUMMYACCESSKEY";
/// See [`DUMMY_AK`].
pub(crate) const DUMMY_SK: &str = "ims-vcr-dummy-secret-key";

/// Runs the command to its end. A signal to ims-vcr is passed on; the command then has [`GRACE`]
/// (cut short by another signal) to exit before it is killed.
async fn supervise(command: &[OsString], uri: &str, mode: Mode, signals: &mut Signals) -> End {
    let (program, args) = command.split_first().expect("clap requires CMD");
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("IMS_VCR_URL", uri)
        .env("IMS_VCR_MODE", mode.as_str())
        .kill_on_drop(true);
    hide_the_proxys_keys(&mut cmd);
    let group = Group::choose(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return End::Failed(e),
    };
    let pid = child.id();
    let signal = tokio::select! {
        status = child.wait() => return match status {
            Ok(status) => End::Exited(status),
            Err(e) => End::Failed(e),
        },
        signal = signals.recv() => signal,
    };
    // Taken, it is passed on whatever the command does meanwhile; those sent with it are read
    // first, to pass on the one that matters.
    let signal = signals.with_those_sent_together(signal).await;
    let first = tokio::time::Instant::now();
    tracing::info!(signal, "passing the signal on to the command");
    group.forward(pid, signal);
    let deadline = tokio::time::Instant::now() + GRACE;
    let waited = tokio::select! {
        status = child.wait() => status,
        () = tokio::time::sleep_until(deadline) => {
            tracing::warn!("the command is still running {GRACE:?} after the signal: killing it");
            group.kill(pid, &mut child);
            child.wait().await
        }
        _ = signals.another(first) => {
            tracing::warn!("second signal: killing the command");
            group.kill(pid, &mut child);
            child.wait().await
        }
    };
    // A shell dies of the signal at once; what it started may still be finishing (and using the
    // proxy): the run ends when the whole group has, within the same grace period.
    if let (Group::Own, Some(pid)) = (group, pid) {
        tokio::select! {
            () = group_ended(pid) => {}
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!("processes the command started are still running {GRACE:?} after the signal: killing them");
                group.kill(Some(pid), &mut child);
            }
            _ = signals.another(first) => group.kill(Some(pid), &mut child),
        }
    }
    match waited {
        Ok(status) => End::Interrupted { signal, status },
        Err(e) => End::Failed(e),
    }
}

/// Resolves once no process of the group `pgid` is left (zombies aside), checked every 50 ms.
async fn group_ended(pgid: u32) {
    while group_alive(pgid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a live (not zombie) process is in process group `pgid`. Linux reads /proc: an orphan
/// that died stays a zombie in its group when PID 1 does not reap, as in some containers.
fn group_alive(pgid: u32) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(entries) = std::fs::read_dir("/proc") {
        return entries.flatten().any(|entry| {
            let path = entry.path().join("stat");
            let Ok(stat) = std::fs::read_to_string(path) else {
                return false;
            };
            // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
            pgrp == Some(pgid) && !matches!(state, "Z" | "X")
        });
    }
    #[cfg(unix)]
    if let Ok(pgid) = i32::try_from(pgid) {
        // SAFETY: kill(2) with signal 0 only checks that the group exists.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    }
    let _ = pgid;
    false
}

/// The error for a run that was interrupted or could not start, after its summary is printed.
fn ended_early(command: &[OsString], end: End, verdict: Result<()>) -> Error {
    match end {
        End::Exited(status) => Error::ExitCode(exit_code(status)),
        End::Interrupted { signal, status } => {
            errln!(
                "ims-vcr run: interrupted by signal {signal}; {} ended ({status})",
                shown(command)
            );
            if let Err(Error::Verdict(why)) = verdict {
                errln!("verdict: {why} (the run was interrupted)");
            }
            let code = exit_code(status);
            Error::ExitCode(if code == 0 {
                u8::try_from(128 + signal).unwrap_or(1)
            } else {
                code
            })
        }
        End::Failed(e) => {
            errln!("error: cannot run {}: {e}", shown(command));
            Error::ExitCode(match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            })
        }
    }
}

/// The exit status ims-vcr passes on: the code, or 128 + N for a command ended by signal N.
fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return u8::try_from(128 + signal).unwrap_or(1);
    }
    1
}
