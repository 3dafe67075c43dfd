//! The command line: clap definitions with help and examples, flag validation, and one function
//! per subcommand, each a thin layer over the library.

mod command_line;
mod commands;
mod config;
mod drift_check;
mod exit;
mod export;
mod input;
pub mod log;
mod output;
mod run;
mod serve;
mod signals;
mod source;
mod values;

use values::{bytes, non_blank, non_empty, parse, sequences};

pub use exit::markdown as exit_codes_markdown;

use commands::*;
use drift_check::*;
use output::{err, errln, outln};
use serve::*;
use source::*;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cli::config::Config;
use crate::error::{Error, Result};
use crate::formats::cassette;
use crate::model::key::MatchRules;
use crate::net::routes::Routes;
use crate::net::upstream::UpstreamConfig;
use crate::proxy::Mode;
use crate::proxy::realism::{Fault, Latency};
use crate::replay::tape::Sequence;
use crate::secrets::leak::Needle;
use crate::secrets::pseudonym::PseudonymKey;
use crate::secrets::redact::{RedactionPolicy, Redactor};
use crate::server::{ProxyServer, ProxyServerBuilder};
use crate::storage::store::Store;
use crate::tools::diff::IgnoreRules;
use crate::tools::drift;
use crate::tools::verify::VerifyOptions;
use hyper::header::HeaderValue;

/// Default `--listen`: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9696";
/// Default `--store`, relative to the working directory (a new store git-ignores itself).
pub const DEFAULT_STORE: &str = ".ims-vcr/store";
/// Default cassette folder replayed when neither `--store` nor `--cassettes` is given.
pub const DEFAULT_CASSETTES: &str = "cassettes";

const EXAMPLES: &str = "\
Examples:
  # Replay the shipped cassettes on a free port (prints `listening on http://127.0.0.1:PORT`)
  ims-vcr replay --listen 127.0.0.1:0

  # Record against the real endpoint (token clients pass X-Auth-Token through;
  # SDK clients: put HUAWEICLOUD_SDK_AK/SK in the proxy's environment so it re-signs)
  ims-vcr record --upstream https://ims.cn-north-4.myhuaweicloud.com

  # Share what was recorded, sanitized, then replay it anywhere
  ims-vcr export --out cassettes --redact
  ims-vcr verify cassettes --require-redaction
  ims-vcr replay --cassettes cassettes --fail-on-miss";

/// Record-and-replay test proxy for the Huawei Cloud IMS image API.
#[derive(Debug, Parser)]
#[command(name = "ims-vcr", version = version_text(), about, after_help = EXAMPLES)]
pub struct Cli {
    /// Settings file [default: ims-vcr.toml in the working directory, when present].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log every request (one line each, at debug level) besides start-up and the summary.
    /// `RUST_LOG` overrides it.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether the command forwards every request it serves to the upstream (`record`,
    /// `passthrough`, or `run` in one of those modes): a load that allocates and frees buffers of
    /// an answer's size for each request, which the binary tunes its allocator for (`main.rs`).
    pub fn forwards_every_request(&self) -> bool {
        match &self.command {
            Command::Record(_) | Command::Passthrough(_) => true,
            Command::Run(run) => run.forwards_every_request(),
            _ => false,
        }
    }
}

const fn version_text() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (cassette format 1)")
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forward every request to the upstream, answer live, and store each answer (a session
    /// replaces the earlier answers of each request it records; a named session recorded again
    /// keeps only what the new run recorded).
    #[command(
        after_help = "Example:\n  ims-vcr record --upstream https://ims.cn-north-4.myhuaweicloud.com --listen 127.0.0.1:0"
    )]
    Record(RecordArgs),
    /// Replay what is recorded; forward and record what is not (concurrent identical misses
    /// make one upstream call, and the clients that waited get the stored answer as replayed).
    #[command(
        after_help = "Example:\n  ims-vcr auto --upstream https://ims.cn-north-4.myhuaweicloud.com --fail-on-unused"
    )]
    Auto(AutoArgs),
    /// Serve stored answers only; never connects to any upstream.
    #[command(
        after_help = "Examples:\n  ims-vcr replay                      # serves ./cassettes, else .ims-vcr/store\n  ims-vcr replay --store .ims-vcr/store --listen 127.0.0.1:0 --fail-on-miss"
    )]
    Replay(ReplayArgs),
    /// Forward every request, store nothing (debug a client against the real endpoint).
    #[command(
        after_help = "Example:\n  ims-vcr passthrough --upstream https://ims.cn-north-4.myhuaweicloud.com"
    )]
    Passthrough(PassthroughArgs),
    /// Write the store as cassette files (one JSON file per request) into --out.
    #[command(after_help = "Example:\n  ims-vcr export --out cassettes --redact")]
    Export(export::ExportArgs),
    /// Load cassette files into the store: all of them, or none if any is invalid. A request the
    /// store holds already gets the cassette's answers instead of its own (the summary counts new
    /// and replaced requests).
    #[command(after_help = "Example:\n  ims-vcr import cassettes")]
    Import(ImportArgs),
    /// List recorded requests: method, path, answers, statuses, recorded-at.
    #[command(after_help = "Examples:\n  ims-vcr ls\n  ims-vcr ls --store .ims-vcr/store --json")]
    Ls(LsArgs),
    /// Show the recorded answer(s) of one request, by key prefix, `METHOD /path?query` or path.
    #[command(
        after_help = "Examples:\n  ims-vcr show /v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52\n  ims-vcr show b89dc4cb\n  ims-vcr show 'GET /v2/schemas/image'"
    )]
    Show(ShowArgs),
    /// Send each recorded request to the live endpoint and report how the answers changed.
    #[command(after_help = commands::DRIFT_HELP)]
    Drift(DriftArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  ims-vcr completions bash > /etc/bash_completion.d/ims-vcr")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Check cassette files for credentials, missing redaction and denied values (for CI).
    #[command(
        after_help = "Examples:\n  ims-vcr verify cassettes --deny-file .secrets/project-ids.txt\n  ims-vcr verify cassettes --require-redaction --deny 0a1b2c3d4e5f..."
    )]
    Verify(VerifyArgs),
    /// Run a command (a test suite) against the proxy: start it on a free port, run CMD with
    /// IMS_VCR_URL set, stop it when CMD exits, exit with CMD's status or the verdict.
    // --stop-on-stdin-eof is refused by name (stdin is CMD's): not offered in the help.
    #[command(after_help = run::RUN_HELP, mut_arg("stop_on_stdin_eof", |arg| arg.hide(true)))]
    Run(run::RunArgs),
}

#[derive(Debug, Args)]
struct DriftArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Check the recordings of a store directory (read, then released; never written)
    /// [default: .ims-vcr/store when there is no cassette folder].
    #[arg(long, value_name = "DIR", conflicts_with = "cassettes")]
    store: Option<PathBuf>,
    /// Check a folder of cassette files [default: `cassettes` in ims-vcr.toml, else cassettes,
    /// when that folder exists].
    #[arg(long, value_name = "DIR")]
    cassettes: Option<PathBuf>,
    /// Also ignore the value of this JSON field, at any depth; PARENT.FIELD only inside PARENT
    /// (repeatable).
    #[arg(long = "ignore-field", value_name = "NAME", value_parser = non_blank)]
    ignore_fields: Vec<String>,
    /// Also send recorded requests whose method may change state (DELETE, POST, PUT, PATCH, ...):
    /// by default only GET, HEAD and OPTIONS are sent, the others are reported as skipped.
    /// Only against a throw-away project: a recorded DELETE deletes again.
    #[arg(long)]
    unsafe_methods: bool,
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Address to listen on: IP:PORT, localhost:PORT or PORT (port 0 picks a free one).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
    /// Allow --listen on a non-loopback address (anyone who reaches it gets the recordings).
    #[arg(long)]
    allow_remote: bool,
    /// Stop (as on SIGTERM: drained, the store flushed) when standard input ends: a harness
    /// that starts the proxy with a pipe as its stdin never leaves it running, even when the
    /// harness is killed.
    #[arg(long)]
    stop_on_stdin_eof: bool,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = crate::proxy::settings::DEFAULT_MAX_BODY, value_name = "BYTES", allow_negative_numbers = true, value_parser = bytes)]
    max_body: usize,
    /// Added latency: fixed:50ms, fixed:1s, recorded (as observed when recorded) or recorded*K.
    #[arg(long, value_name = "SPEC", value_parser = parse::<Latency>)]
    latency: Option<Latency>,
    /// Inject a fault into a fraction of requests: 503:RATE or reset:RATE (repeatable).
    #[arg(long, value_name = "KIND:RATE", value_parser = parse::<Fault>)]
    fault: Vec<Fault>,
    /// Seed for fault injection (same seed, same faults on the same request sequence).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        allow_negative_numbers = true
    )]
    seed: u64,
    /// Token that lets non-loopback peers use the control API (/__ims-vcr/, header x-ims-vcr-token).
    #[arg(
        long,
        env = "IMS_VCR_CONTROL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = non_empty
    )]
    control_token: Option<String>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain; needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds a client may take to send a request head, and again its body (408); also bounds
    /// the TLS handshake and idle keep-alive connections. Slower clients are disconnected.
    #[arg(
        long,
        default_value_t = 30.0,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    header_read_timeout: f64,
}

#[derive(Debug, Args)]
struct UpstreamArgs {
    /// Upstream scheme://host[:port], e.g. https://ims.cn-north-4.myhuaweicloud.com (http:// for
    /// local stand-ins; no path: clients send the whole path): the route of every path no
    /// --route takes (`--route /=URL`).
    #[arg(long, value_name = "URL", value_parser = UpstreamUrl)]
    upstream: Option<String>,
    /// Forward paths under PREFIX to URL, e.g. /v3=https://iam.myhuaweicloud.com (repeatable;
    /// the longest prefix wins, whole path segments only; the path is forwarded unchanged).
    #[arg(long = "route", value_name = "PREFIX=URL", value_parser = non_empty)]
    routes: Vec<String>,
    /// Extra CA certificates (PEM) to trust for every upstream, besides the public roots.
    #[arg(long, value_name = "PEM")]
    upstream_ca: Option<PathBuf>,
    /// CA certificates (PEM) for one route's upstream only, instead of --upstream-ca (repeatable).
    #[arg(long = "route-ca", value_name = "PREFIX=PEM", value_parser = non_empty)]
    route_cas: Vec<String>,
    /// Limit in seconds on one upstream exchange (connect, answer and body).
    #[arg(
        long,
        default_value_t = 30.0,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    upstream_timeout: f64,
    /// Largest upstream answer body accepted, in bytes, also once gzip/deflate is decoded;
    /// larger ones get 502 too-large. Answers are held in memory whole, in every mode.
    #[arg(long, default_value_t = crate::net::upstream::DEFAULT_MAX_UPSTREAM_BODY, value_name = "BYTES", allow_negative_numbers = true, value_parser = bytes)]
    max_answer_body: usize,
}

#[derive(Debug, Args)]
struct MatchArgs {
    /// Also match on this request header, e.g. X-Project-Id (repeatable; saved with the recordings).
    #[arg(long = "match-header", value_name = "NAME", value_parser = non_blank)]
    match_headers: Vec<String>,
    /// Leave this query parameter out of matching, e.g. marker (repeatable; saved with the recordings).
    #[arg(long = "ignore-query", value_name = "NAME", value_parser = non_blank)]
    ignore_query: Vec<String>,
    /// Text matching this regular expression in the path, query or body is a value the suite
    /// generates fresh each run (e.g. 'tf-acc-test-[a-z0-9]{5}'): masked for matching, and the
    /// recorded value in a replayed answer is replaced by the live one (repeatable; saved with
    /// the recordings).
    #[arg(long = "volatile", value_name = "REGEX", value_parser = non_empty)]
    volatile: Vec<String>,
    /// Replay moves the timestamp in this JSON field forward by the time since the answer was
    /// recorded, besides expires_at and issued_at (repeatable; saved with the recordings).
    #[arg(long = "shift-time", value_name = "FIELD", value_parser = non_blank)]
    shift_time: Vec<String>,
}

#[derive(Debug, Args)]
struct PlaybackArgs {
    /// After a request's last recorded answer: repeat-last, cycle, or strict (a miss).
    #[arg(long, default_value = "repeat-last", value_name = "POLICY", value_parser = sequences())]
    sequence: Sequence,
    /// Exit with code 3 at shutdown if any request missed.
    #[arg(long)]
    fail_on_miss: bool,
    /// Exit with code 3 at shutdown if any recording was never played (since start: a reset of
    /// the cursors does not make a played recording unused).
    #[arg(long)]
    fail_on_unused: bool,
}

#[derive(Debug, Args)]
struct StoreArg {
    /// Store directory (sled) [default: .ims-vcr/store, or `store` in ims-vcr.toml].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RedactArgs {
    /// Redact owner/account values (JSON fields owner, __account_code, project, user and domain
    /// ids and names; header X-Project-Id; query owner) with consistent pseudonyms keyed by
    /// IMS_VCR_REDACT_KEY, everywhere they occur.
    #[arg(long)]
    redact: bool,
    /// Also redact this JSON field, at any depth; PARENT.FIELD only inside PARENT (repeatable;
    /// implies --redact).
    #[arg(long = "redact-field", value_name = "NAME", value_parser = non_blank)]
    fields: Vec<String>,
    /// Also redact this header (repeatable; implies --redact).
    #[arg(long = "redact-header", value_name = "NAME", value_parser = non_blank)]
    headers: Vec<String>,
    /// Also redact this query parameter (repeatable; implies --redact).
    #[arg(long = "redact-query", value_name = "NAME", value_parser = non_blank)]
    query: Vec<String>,
}

impl RedactArgs {
    /// The policy to apply, if redaction is on (flag, extension flags, or `[redact] enabled`).
    fn policy(&self, config: &Config) -> Option<RedactionPolicy> {
        let on = self.redact
            || config.redact.enabled
            || !(self.fields.is_empty() && self.headers.is_empty() && self.query.is_empty());
        on.then(|| config.redaction_policy(&self.fields, &self.headers, &self.query))
    }
}

#[derive(Debug, Args)]
struct RecordArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    redact: RedactArgs,
    #[command(flatten)]
    matching: MatchArgs,
    /// Also sync each answer to the disk before the client gets it (group commit: one
    /// `fdatasync` for every answer written meanwhile), so recordings survive a power loss too.
    /// Without it each answer is written to the store's log first, which survives a `kill -9`
    /// of the proxy; the log is synced every 64 MiB of recordings and at the session's end.
    #[arg(long)]
    fsync: bool,
}

/// `auto` takes everything `record` does, plus the playback and verdict flags of `replay`.
#[derive(Debug, Args)]
struct AutoArgs {
    #[command(flatten)]
    record: RecordArgs,
    #[command(flatten)]
    playback: PlaybackArgs,
}

#[derive(Debug, Args)]
struct PassthroughArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    #[command(flatten)]
    listen: ListenArgs,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    listen: ListenArgs,
    /// Replay a store directory [default: .ims-vcr/store when there is no cassette folder].
    #[arg(long, value_name = "DIR", conflicts_with = "cassettes")]
    store: Option<PathBuf>,
    /// Replay a folder of cassette files [default: cassettes, or `cassettes` in ims-vcr.toml,
    /// when that folder exists].
    #[arg(long, value_name = "DIR")]
    cassettes: Option<PathBuf>,
    #[command(flatten)]
    playback: PlaybackArgs,
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(flatten)]
    store: StoreArg,
    /// A folder of cassette files, or a .har file (HTTP Archive 1.2).
    #[arg(value_name = "PATH")]
    dir: PathBuf,
    #[command(flatten)]
    redact: RedactArgs,
}

#[derive(Debug, Args)]
struct SourceArgs {
    /// Read a store directory [default: .ims-vcr/store when there is no cassette folder].
    #[arg(long, value_name = "DIR", conflicts_with = "cassettes")]
    store: Option<PathBuf>,
    /// Read a folder of cassette files [default: cassettes, or `cassettes` in ims-vcr.toml, when
    /// that folder exists].
    #[arg(long, value_name = "DIR")]
    cassettes: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// Key digest prefix (as in `ls`), `METHOD /path?query`, or a path.
    #[arg(value_name = "REQUEST")]
    request: String,
    /// Only this session's recordings (`--session ""`: the default session's).
    #[arg(long, value_name = "NAME")]
    session: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Folder of cassettes to check [default: the config's cassettes, else cassettes].
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A value that must appear in no cassette, in any encoding (repeatable).
    #[arg(long, value_name = "VALUE", value_parser = non_empty)]
    deny: Vec<String>,
    /// A file of such values, one per line, `#` comments allowed (repeatable).
    #[arg(long = "deny-file", value_name = "FILE")]
    deny_files: Vec<PathBuf>,
    /// Require every cassette to carry a redaction stamp covering the policy, and every value
    /// under the policy's names to be a pseudonym the stamp vouches for (on by default when
    /// ims-vcr.toml has `[redact] enabled = true`).
    #[arg(long)]
    require_redaction: bool,
}

/// The command line as clap sees it, with each command's exit codes (from one table) after its
/// examples in `--help`.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let mut command = Cli::command();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(&name, |sub| {
            let examples = sub.get_after_help().map(ToString::to_string);
            let sub = sub.after_help(with_exit_codes(examples, Some(&name)));
            // The commands that forward need an upstream, by `--upstream` or `--route` (`run`
            // checks it by its mode): a missing one is said as both, never as `--upstream` alone.
            match ["record", "auto", "passthrough", "drift"].contains(&name.as_str()) {
                true => sub.group(
                    clap::ArgGroup::new("upstreams")
                        .args(["upstream", "routes"])
                        .required(true)
                        .multiple(true),
                ),
                false => sub,
            }
        });
    }
    let examples = command.get_after_help().map(ToString::to_string);
    let command = command.after_help(with_exit_codes(examples, None));
    if color_allowed(std::env::var_os("NO_COLOR")) {
        command
    } else {
        command.color(clap::ColorChoice::Never)
    }
}

fn with_exit_codes(examples: Option<String>, command: Option<&str>) -> String {
    let codes = exit::help(command);
    match examples {
        Some(examples) => format!("{examples}\n\n{codes}"),
        None => codes,
    }
}

/// Whether log lines on stderr may carry colours: only on a terminal, and not when `NO_COLOR` is
/// set to anything but the empty string (<https://no-color.org>).
pub fn colored_logs() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && color_allowed(std::env::var_os("NO_COLOR"))
}

fn color_allowed(no_color: Option<std::ffi::OsString>) -> bool {
    no_color.is_none_or(|v| v.is_empty())
}

/// Parses the process's arguments with [`command`]; exits (code 2) on a usage error, as clap does.
/// An empty `IMS_VCR_CONTROL_TOKEN` (a CI secret not set, as for a fork's pull request) is no token.
pub fn parse_args() -> Cli {
    use clap::FromArgMatches as _;
    if std::env::var_os("IMS_VCR_CONTROL_TOKEN").is_some_and(|v| v.is_empty()) {
        // SAFETY: first thing in `main`, before any thread exists that could read the environment.
        unsafe { std::env::remove_var("IMS_VCR_CONTROL_TOKEN") };
    }
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    if let Some(source) = &config.source {
        tracing::debug!(config = %source.display(), "settings loaded");
    }
    match cli.command {
        Command::Record(a) => {
            let builder = forwarding(&a, &config)?;
            let builder = routed(builder, Mode::Record, &a.upstream)?;
            serve_until_signal(builder, None, a.listen.stop_on_stdin_eof).await
        }
        Command::Auto(AutoArgs {
            record: a,
            playback,
        }) => {
            let builder = forwarding(&a, &config)?
                .sequence(playback.sequence)
                .fail_on_unused(playback.fail_on_unused);
            let builder = routed(builder, Mode::Auto, &a.upstream)?;
            serve_until_signal(builder, Some(&playback), a.listen.stop_on_stdin_eof).await
        }
        Command::Passthrough(a) => {
            let builder = routed(server(&a.listen)?, Mode::Passthrough, &a.upstream)?;
            serve_until_signal(builder, None, a.listen.stop_on_stdin_eof).await
        }
        Command::Replay(a) => replay(a, &config).await,
        Command::Export(a) => export::export(a, &config),
        Command::Import(a) => import(a, &config).await,
        Command::Verify(a) => verify(a, &config),
        Command::Run(a) => run::run_command(a, &config).await,
        Command::Drift(a) => drift(a, &config).await,
        Command::Ls(a) => {
            let (table, counts) =
                crate::tools::listing::ls(&load_source(&a.source, &config)?.0, a.json);
            output::stdout(table)?;
            counts.iter().for_each(|counts| output::stderr(counts));
            Ok(())
        }
        Command::Show(a) => {
            let (recordings, source) = load_source(&a.source, &config)?;
            let ls = format!("ims-vcr ls {}", source.flags());
            let shown = crate::tools::listing::show(
                &recordings,
                &a.request,
                a.session.as_deref(),
                ls.trim_end(),
            )?;
            output::stdout(shown)
        }
        Command::Completions { shell } => completions(shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn listen(text: &str, allow_remote: bool) -> Result<SocketAddr> {
        listen_addr(&ListenArgs {
            listen: text.into(),
            allow_remote,
            stop_on_stdin_eof: false,
            max_body: 1,
            latency: None,
            fault: vec![],
            seed: 0,
            control_token: None,
            tls_cert: None,
            tls_key: None,
            header_read_timeout: 30.0,
        })
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn record_passthrough_and_run_in_those_modes_forward_every_request() {
        use clap::FromArgMatches as _;
        let forwards = |args: &[&str]| {
            let matches = command().try_get_matches_from(args).unwrap();
            Cli::from_arg_matches(&matches)
                .unwrap()
                .forwards_every_request()
        };
        let upstream = "--upstream=https://ims.example";
        assert!(forwards(&["ims-vcr", "record", upstream]));
        assert!(forwards(&["ims-vcr", "passthrough", upstream]));
        assert!(forwards(&[
            "ims-vcr", "run", "--mode", "record", upstream, "--", "true"
        ]));
        assert!(forwards(&[
            "ims-vcr",
            "run",
            "--mode",
            "passthrough",
            upstream,
            "--",
            "true"
        ]));
        assert!(!forwards(&[
            "ims-vcr", "run", "--mode", "replay", "--", "true"
        ]));
        assert!(!forwards(&[
            "ims-vcr", "run", "--mode", "auto", upstream, "--", "true"
        ]));
        assert!(!forwards(&["ims-vcr", "auto", upstream]));
        assert!(!forwards(&["ims-vcr", "replay"]));
        assert!(!forwards(&["ims-vcr", "export", "--out", "x"]));
    }

    #[test]
    fn no_color_set_to_anything_but_empty_turns_colours_off() {
        assert!(color_allowed(None));
        assert!(color_allowed(Some("".into())));
        assert!(!color_allowed(Some("1".into())));
        assert!(!color_allowed(Some("false".into())));
    }

    #[test]
    fn progress_rates_are_rounded() {
        assert_eq!(per_second(3113.1542), "3113/s");
        assert_eq!(per_second(2.54), "2.5/s");
        assert_eq!(per_second(0.0), "0/s");
    }

    #[test]
    fn listen_accepts_the_documented_forms() {
        assert_eq!(listen("0", false).unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(
            listen("localhost:81", false).unwrap(),
            "127.0.0.1:81".parse().unwrap()
        );
        assert_eq!(
            listen("[::1]:0", false).unwrap(),
            "[::1]:0".parse().unwrap()
        );
        assert!(
            listen("nonsense", false)
                .unwrap_err()
                .to_string()
                .contains("--listen")
        );
    }

    #[test]
    fn non_loopback_listen_needs_allow_remote() {
        let err = listen("0.0.0.0:0", false).unwrap_err().to_string();
        assert!(err.contains("--allow-remote"), "{err}");
        assert!(listen("0.0.0.0:0", true).is_ok());
    }
}
