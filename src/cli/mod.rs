//! The command line: clap definitions with help and examples, flag validation, and one function
//! per subcommand, each a thin layer over the library.

mod config;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cli::config::Config;
use crate::error::{Error, Result};
use crate::formats::cassette;
use crate::model::key::MatchRules;
use crate::net::upstream::{Upstream, UpstreamConfig};
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
/// Default `--store`, relative to the working directory (git-ignored).
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
  ims-vcr replay --cassettes cassettes --fail-on-miss

Exit codes: 0 success, 1 runtime error (message on stderr), 2 usage error,
3 verdict failed (replay/auto --fail-on-miss/--fail-on-unused, verify findings, drift).";

/// Record-and-replay test proxy for the Huawei Cloud IMS image API.
#[derive(Debug, Parser)]
#[command(name = "ims-vcr", version = version_text(), about, after_help = EXAMPLES)]
pub struct Cli {
    /// Settings file [default: ims-vcr.toml in the working directory, when present].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

const fn version_text() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (cassette format 1)")
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forward every request to the upstream, answer live, and store each answer (a session
    /// replaces the earlier answers of each request it records).
    #[command(
        after_help = "Example:\n  ims-vcr record --upstream https://ims.cn-north-4.myhuaweicloud.com --listen 127.0.0.1:0"
    )]
    Record(RecordArgs),
    /// Replay what is recorded; forward and record what is not (concurrent identical misses
    /// make one upstream call).
    #[command(
        after_help = "Example:\n  ims-vcr auto --upstream https://ims.cn-north-4.myhuaweicloud.com --fail-on-unused"
    )]
    Auto(AutoArgs),
    /// Serve stored answers only; never connects to any upstream.
    #[command(
        after_help = "Examples:\n  ims-vcr replay                      # serves ./cassettes\n  ims-vcr replay --store .ims-vcr/store --listen 127.0.0.1:0 --fail-on-miss"
    )]
    Replay(ReplayArgs),
    /// Forward every request, store nothing (debug a client against the real endpoint).
    #[command(
        after_help = "Example:\n  ims-vcr passthrough --upstream https://ims.cn-north-4.myhuaweicloud.com"
    )]
    Passthrough(PassthroughArgs),
    /// Write the store as cassette files (one JSON file per request) into --out.
    #[command(after_help = "Example:\n  ims-vcr export --out cassettes --redact")]
    Export(ExportArgs),
    /// Load cassette files into the store: all of them, or none if any is invalid.
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
    #[command(after_help = DRIFT_HELP)]
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
        after_help = "Examples:\n  ims-vcr verify cassettes --deny-file .secrets/project-ids.txt\n  ims-vcr verify cassettes --require-redaction --deny 0a1b2c3d4e5f...\n\nExit codes: 0 clean, 3 findings (one line each: file: JSON location: problem), 1 error."
    )]
    Verify(VerifyArgs),
}

const DRIFT_HELP: &str = "\
Examples:
  # Check the cassettes against the live endpoint (token from the environment, never a flag)
  IMS_VCR_DRIFT_TOKEN=$TOKEN ims-vcr drift --upstream https://ims.cn-north-4.myhuaweicloud.com
  # AK/SK re-signing like record (HUAWEICLOUD_SDK_AK/_SK set), a store, one more volatile field
  ims-vcr drift --upstream https://ims.cn-north-4.myhuaweicloud.com --store .ims-vcr/store --ignore-field checksum

Values of request_id, x-request-id, date, every *_at field and the redacted fields are not
compared (their presence and type are). Nothing is written.

Exit codes: 0 no breaking change, 1 a breaking change (status, removed field, changed type),
an upstream error, or any other error.";

#[derive(Debug, Args)]
struct DriftArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Check the recordings of a store directory (read, then released; never written).
    #[arg(long, value_name = "DIR", conflicts_with = "cassettes")]
    store: Option<PathBuf>,
    /// Check a folder of cassette files [default: `cassettes` in ims-vcr.toml, else cassettes].
    #[arg(long, value_name = "DIR")]
    cassettes: Option<PathBuf>,
    /// Also ignore the value of this JSON field, at any depth (repeatable).
    #[arg(long = "ignore-field", value_name = "NAME")]
    ignore_fields: Vec<String>,
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Address to listen on: IP:PORT, localhost:PORT or PORT (port 0 picks a free one).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
    /// Allow --listen on a non-loopback address (anyone who reaches it gets the recordings).
    #[arg(long)]
    allow_remote: bool,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = crate::proxy::settings::DEFAULT_MAX_BODY, value_name = "BYTES")]
    max_body: usize,
    /// Added latency: fixed:50ms, fixed:1s, recorded (as observed when recorded) or recorded*K.
    #[arg(long, value_name = "SPEC", value_parser = parse::<Latency>)]
    latency: Option<Latency>,
    /// Inject a fault into a fraction of requests: 503:RATE or reset:RATE (repeatable).
    #[arg(long, value_name = "KIND:RATE", value_parser = parse::<Fault>)]
    fault: Vec<Fault>,
    /// Seed for fault injection (same seed, same faults on the same request sequence).
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// Token that lets non-loopback peers use the control API (/__ims-vcr/, header x-ims-vcr-token).
    #[arg(
        long,
        env = "IMS_VCR_CONTROL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
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
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    header_read_timeout: f64,
}

#[derive(Debug, Args)]
struct UpstreamArgs {
    /// Upstream base URL, e.g. https://ims.cn-north-4.myhuaweicloud.com (http:// for local stand-ins).
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// Extra CA certificates (PEM) to trust for the upstream, besides the public roots.
    #[arg(long, value_name = "PEM")]
    upstream_ca: Option<PathBuf>,
    /// Limit in seconds on one upstream exchange (connect, answer and body).
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    upstream_timeout: f64,
}

#[derive(Debug, Args)]
struct MatchArgs {
    /// Also match on this request header, e.g. X-Project-Id (repeatable; saved with the recordings).
    #[arg(long = "match-header", value_name = "NAME")]
    match_headers: Vec<String>,
    /// Leave this query parameter out of matching, e.g. marker (repeatable; saved with the recordings).
    #[arg(long = "ignore-query", value_name = "NAME")]
    ignore_query: Vec<String>,
}

#[derive(Debug, Args)]
struct PlaybackArgs {
    /// After a request's last recorded answer: repeat-last, cycle, or strict (a miss).
    #[arg(long, default_value = "repeat-last", value_name = "POLICY", value_parser = parse::<Sequence>)]
    sequence: Sequence,
    /// Exit with code 3 at shutdown if any request missed.
    #[arg(long)]
    fail_on_miss: bool,
    /// Exit with code 3 at shutdown if any recording was never played.
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
    /// Redact owner/account values (JSON fields owner, __account_code; header X-Project-Id;
    /// query owner) with consistent pseudonyms keyed by IMS_VCR_REDACT_KEY.
    #[arg(long)]
    redact: bool,
    /// Also redact this JSON field, at any depth (repeatable; implies --redact).
    #[arg(long = "redact-field", value_name = "NAME")]
    fields: Vec<String>,
    /// Also redact this header (repeatable; implies --redact).
    #[arg(long = "redact-header", value_name = "NAME")]
    headers: Vec<String>,
    /// Also redact this query parameter (repeatable; implies --redact).
    #[arg(long = "redact-query", value_name = "NAME")]
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
    /// Without it each answer is written to the store's journal first, which survives a
    /// `kill -9` of the proxy, and sled syncs within about half a second.
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
    /// Replay a store directory.
    #[arg(long, value_name = "DIR", conflicts_with = "cassettes")]
    store: Option<PathBuf>,
    /// Replay a folder of cassette files [default: cassettes, or `cassettes` in ims-vcr.toml].
    #[arg(long, value_name = "DIR")]
    cassettes: Option<PathBuf>,
    #[command(flatten)]
    playback: PlaybackArgs,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Where to write: a folder of cassettes (created if needed), or with --format har a file
    /// [default: `cassettes` in ims-vcr.toml].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// cassettes (one JSON file per request) or har (one HTTP Archive 1.2 file).
    #[arg(long, default_value = "cassettes", value_parser = ["cassettes", "har"])]
    format: String,
    #[command(flatten)]
    redact: RedactArgs,
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
    /// Read a store directory.
    #[arg(long, value_name = "DIR", conflicts_with = "cassettes")]
    store: Option<PathBuf>,
    /// Read a folder of cassette files [default: cassettes, or `cassettes` in ims-vcr.toml].
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
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Folder of cassettes to check [default: the config's cassettes, else cassettes].
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A value that must appear in no cassette, in any encoding (repeatable).
    #[arg(long, value_name = "VALUE")]
    deny: Vec<String>,
    /// A file of such values, one per line, `#` comments allowed (repeatable).
    #[arg(long = "deny-file", value_name = "FILE")]
    deny_files: Vec<PathBuf>,
    /// Require every cassette to carry a redaction stamp covering the policy (on by default when
    /// ims-vcr.toml has `[redact] enabled = true`).
    #[arg(long)]
    require_redaction: bool,
}

fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> std::result::Result<T, String> {
    text.parse()
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
            serve_until_signal(builder.record(upstream_config(&a.upstream)?), None).await
        }
        Command::Auto(AutoArgs {
            record: a,
            playback,
        }) => {
            let builder = forwarding(&a, &config)?.sequence(playback.sequence);
            serve_until_signal(builder.auto(upstream_config(&a.upstream)?), Some(&playback)).await
        }
        Command::Passthrough(a) => {
            let builder = server(&a.listen)?.passthrough(upstream_config(&a.upstream)?);
            serve_until_signal(builder, None).await
        }
        Command::Replay(a) => replay(a, &config).await,
        Command::Export(a) => export(a, &config),
        Command::Import(a) => import(a, &config).await,
        Command::Verify(a) => verify(a, &config),
        Command::Drift(a) => drift(a, &config).await,
        Command::Ls(a) => crate::tools::listing::ls(&load_source(&a.source, &config)?, a.json),
        Command::Show(a) => {
            crate::tools::listing::show(&load_source(&a.source, &config)?, &a.request)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ims-vcr",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// `--store`, else `store` from the config, else the default.
fn store_path(flag: Option<PathBuf>, config: &Config) -> PathBuf {
    flag.or_else(|| config.store.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

/// `--cassettes`, else `cassettes` from the config, else the default.
fn cassettes_path(flag: Option<PathBuf>, config: &Config) -> PathBuf {
    flag.or_else(|| config.cassettes.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CASSETTES))
}

/// The builder settings every serving mode shares.
fn server(listen: &ListenArgs) -> Result<ProxyServerBuilder> {
    let mut builder = ProxyServer::builder()
        .listen(listen_addr(listen)?)
        .max_body(listen.max_body)
        .header_read_timeout(seconds(
            listen.header_read_timeout,
            "--header-read-timeout",
        )?)
        .latency(listen.latency.unwrap_or_default())
        .faults(listen.fault.clone(), listen.seed)
        .redaction_key(redaction_key());
    if let Some(token) = &listen.control_token {
        builder = builder.control_token(token);
    }
    if let (Some(cert), Some(key)) = (&listen.tls_cert, &listen.tls_key) {
        builder = builder.tls(cert, key);
    }
    Ok(builder)
}

/// Longest timeout accepted: far beyond any use, and safely inside what deadline arithmetic
/// (`Instant + Duration`, which panics on overflow) can take.
const MAX_TIMEOUT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// A timeout given with `flag`, in seconds: positive and at most a year.
fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if value > 0.0 && value <= MAX_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Error::Config(format!(
            "{flag} {value} must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS} (a year)"
        )))
    }
}

/// Settings shared by record and auto: store, durability, redaction, match rules.
fn forwarding(args: &RecordArgs, config: &Config) -> Result<ProxyServerBuilder> {
    let mut builder = server(&args.listen)?
        .store(store_path(args.store.store.clone(), config))
        .fsync(args.fsync);
    if let Some(policy) = args.redact.policy(config) {
        tracing::info!(?policy, "redacting before storing");
        builder = builder.redact(policy);
    }
    let matching = &args.matching;
    if !(matching.match_headers.is_empty() && matching.ignore_query.is_empty()) {
        builder = builder.match_rules(match_rules(matching)?);
    }
    Ok(builder)
}

fn match_rules(args: &MatchArgs) -> Result<MatchRules> {
    let mut rules = MatchRules::default();
    for name in &args.match_headers {
        let lower = name.to_ascii_lowercase();
        if crate::model::headers::is_credential(&lower)
            || crate::model::headers::is_volatile_request(&lower)
        {
            return Err(Error::Config(format!(
                "--match-header {name}: this header is never stored (credential or volatile), so it cannot be matched on"
            )));
        }
        rules.match_headers.push(lower);
    }
    rules.ignore_query = args.ignore_query.clone();
    Ok(rules)
}

/// The upstream settings; AK/SK only ever come from the environment (a flag would show in `ps`).
fn upstream_config(args: &UpstreamArgs) -> Result<UpstreamConfig> {
    let mut upstream = UpstreamConfig::new(args.upstream.clone());
    upstream.ca_file = args.upstream_ca.clone();
    upstream.timeout = seconds(args.upstream_timeout, "--upstream-timeout")?;
    upstream.credentials = crate::net::signer::Credentials::from_env().map_err(Error::Config)?;
    match &upstream.credentials {
        Some(credentials) => tracing::info!(
            ?credentials,
            "re-signing every upstream request with AK/SK from the environment"
        ),
        None => tracing::info!(
            "no AK/SK in the environment: requests are forwarded with the client's own credentials"
        ),
    }
    Ok(upstream)
}

async fn replay(args: ReplayArgs, config: &Config) -> Result<()> {
    let builder = server(&args.listen)?
        .replay()
        .sequence(args.playback.sequence);
    let builder = match args.store {
        Some(store) => builder.store(existing(&store, "--store")?),
        None => builder.cassettes(existing(
            &cassettes_path(args.cassettes, config),
            "--cassettes",
        )?),
    };
    serve_until_signal(builder, Some(&args.playback)).await
}

/// Serves until SIGINT/SIGTERM, prints the summary, and applies the CI verdicts.
async fn serve_until_signal(
    builder: ProxyServerBuilder,
    verdicts: Option<&PlaybackArgs>,
) -> Result<()> {
    let signal = shutdown_signal();
    let server = builder.start().await?;
    // The one stdout line scripts read the port from.
    println!("listening on {}", server.uri());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    signal.await;
    tracing::info!("shutting down: draining connections");
    let summary = server.shutdown().await?;
    eprint!("{summary}");
    let Some(verdicts) = verdicts else {
        return Ok(());
    };
    let mut failed = Vec::new();
    if verdicts.fail_on_miss && summary.miss_count() > 0 {
        failed.push(format!(
            "{} request(s) missed (--fail-on-miss)",
            summary.miss_count()
        ));
    }
    if verdicts.fail_on_unused && !summary.unused.is_empty() {
        failed.push(format!(
            "{} recording(s) never played (--fail-on-unused)",
            summary.unused.len()
        ));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Verdict(failed.join("; ")))
    }
}

fn export(args: ExportArgs, config: &Config) -> Result<()> {
    let out = args
        .out
        .or_else(|| config.cassettes.clone())
        .ok_or_else(|| {
            Error::Config("--out DIR is required (or set `cassettes` in ims-vcr.toml)".into())
        })?;
    let store_dir = store_path(args.store.store, config);
    let store = Store::open(existing(&store_dir, "--store")?)?;
    let rules = store.rules()?;
    let mut recordings = store.load(&rules)?;
    drop(store);
    if let Some(policy) = args.redact.policy(config) {
        let redactor = Redactor::new(policy, redaction_key());
        recordings = cassette::redact_recordings(&recordings, &redactor, &rules)?;
    }
    if args.format == "har" {
        let har = serde_json::to_vec_pretty(&crate::formats::har::to_har(&recordings))
            .expect("a HAR document serialises");
        cassette::write_atomically(&out, &har)?;
        eprintln!(
            "exported {} requests to {} (HAR 1.2)",
            recordings.len(),
            out.display()
        );
        return Ok(());
    }
    let progress = progress_bar(recordings.len(), "exporting");
    let summary = cassette::write_dir_with_progress(&out, &recordings, &rules, &progress)?;
    progress.finish_and_clear();
    let removed = if summary.removed > 0 {
        format!(", removed {} stale cassettes", summary.removed)
    } else {
        String::new()
    };
    eprintln!(
        "exported {} requests ({} answers) to {}{removed}",
        summary.files,
        summary.answers,
        out.display()
    );
    Ok(())
}

async fn import(args: ImportArgs, config: &Config) -> Result<()> {
    // Every file is validated (and redacted, and leak-checked) before the store is written.
    let redactor = args
        .redact
        .policy(config)
        .map(|p| Redactor::new(p, redaction_key()));
    let har = match args.dir.is_file() {
        true => Some(std::fs::read(&args.dir).map_err(|e| Error::io(&args.dir, e))?),
        false => None,
    };
    let (recordings, rules) = if let Some(bytes) = &har {
        let rules = MatchRules::default();
        (
            crate::formats::har::from_har(&args.dir, bytes, &rules, redactor.as_ref())?,
            rules,
        )
    } else {
        let dir = existing(&args.dir, "import PATH")?;
        let progress = progress_bar(0, "validating");
        let (recordings, rules) = cassette::read_dir_with_progress(dir, &progress)?;
        progress.finish_and_clear();
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
    store.set_rules(&rules).await?;
    store.import(&recordings).await?;
    // The import is committed; a pack that cannot be written only slows the next replay.
    if let Err(e) = store.replay_pack() {
        tracing::warn!(error = %e, "cannot update the replay pack");
    }
    eprintln!(
        "imported {} requests ({} answers) into {}",
        recordings.len(),
        recordings.iter().map(|r| r.answers.len()).sum::<usize>(),
        store_dir.display()
    );
    Ok(())
}

fn verify(args: VerifyArgs, config: &Config) -> Result<()> {
    let dir = cassettes_path(args.dir, config);
    let dir = existing(&dir, "verify DIR")?;
    let mut deny: Vec<Needle> = args
        .deny
        .iter()
        .enumerate()
        .map(|(i, value)| Needle {
            label: format!("denied value (--deny #{})", i + 1),
            value: value.clone(),
        })
        .collect();
    for file in args.deny_files.iter().chain(&config.verify.deny_files) {
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
        println!("{finding}");
    }
    if findings.is_empty() {
        println!(
            "verified {} cassettes ({} answers) in {}: no credential headers{}, {} denied values checked, none found",
            summary.files,
            summary.answers,
            dir.display(),
            if options.require_redaction.is_some() {
                ", every file redacted as the policy requires"
            } else {
                ""
            },
            options.deny.len()
        );
        Ok(())
    } else {
        Err(Error::Verdict(format!(
            "verify found {} problem(s) in {}",
            findings.len(),
            dir.display()
        )))
    }
}

async fn drift(args: DriftArgs, config: &Config) -> Result<()> {
    let upstream_settings = upstream_config(&args.upstream)?;
    let token = drift_token()?;
    if upstream_settings.credentials.is_none() && token.is_none() {
        tracing::warn!(
            "neither AK/SK (HUAWEICLOUD_SDK_AK/_SK) nor {} is set: requests go unauthenticated, \
             and a real endpoint answers 401",
            drift::ENV_TOKEN
        );
    }
    let upstream = Upstream::new(&upstream_settings)?;
    let (recordings, source) = match args.store {
        Some(dir) => {
            // Load, then release the lock at once: drift never writes to the store.
            let store = Store::open(existing(&dir, "--store")?)?;
            let recordings = store.load(&store.rules()?)?;
            (recordings, format!("--store {}", dir.display()))
        }
        None => {
            let dir = cassettes_path(args.cassettes, config);
            let (recordings, _rules) = cassette::read_dir(existing(&dir, "--cassettes")?)?;
            (recordings, format!("--cassettes {}", dir.display()))
        }
    };
    if recordings.is_empty() {
        return Err(Error::Config(format!(
            "{source}: no recordings, nothing to check"
        )));
    }
    let ignore = IgnoreRules::default().with_fields(args.ignore_fields);
    let drifts = drift::run(&recordings, &upstream, &ignore, token.as_ref()).await;
    print!("{}", drift::render(&drifts));
    let breaking: usize = drifts.iter().map(drift::RequestDrift::breaking).sum();
    if breaking > 0 {
        return Err(Error::Verdict(format!(
            "drift found {breaking} breaking change(s) against {}",
            upstream.origin()
        )));
    }
    Ok(())
}

/// `X-Auth-Token` for drift from `IMS_VCR_DRIFT_TOKEN` (tokens are never stored; unset or empty
/// means none). Marked sensitive so it is never logged.
fn drift_token() -> Result<Option<HeaderValue>> {
    let Some(raw) = std::env::var_os(drift::ENV_TOKEN).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let mut value = raw
        .to_str()
        .and_then(|v| HeaderValue::from_str(v).ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "{} contains characters that cannot be sent in an HTTP header",
                drift::ENV_TOKEN
            ))
        })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Recordings from `--store` or `--cassettes` (for ls and show).
fn load_source(
    source: &SourceArgs,
    config: &Config,
) -> Result<Vec<crate::model::recording::Recording>> {
    match &source.store {
        Some(dir) => {
            let store = Store::open(existing(dir, "--store")?)?;
            store.load(&store.rules()?)
        }
        None => Ok(cassette::read_dir(existing(
            &cassettes_path(source.cassettes.clone(), config),
            "--cassettes",
        )?)?
        .0),
    }
}

/// A progress bar on a terminal; hidden (plain summaries only) when stderr is not one.
fn progress_bar(len: usize, what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("a valid progress template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// The redaction key from `IMS_VCR_REDACT_KEY`, warning when it is the public default.
fn redaction_key() -> PseudonymKey {
    let (key, public) = PseudonymKey::from_lookup(|n| std::env::var(n).ok());
    if public {
        tracing::debug!(
            fingerprint = key.fingerprint(),
            "using the public default redaction key"
        );
    }
    key
}

fn existing<'a>(path: &'a Path, flag: &str) -> Result<&'a Path> {
    if path.is_dir() {
        Ok(path)
    } else {
        Err(Error::Config(format!(
            "{flag} {}: no such directory",
            path.display()
        )))
    }
}

/// Parses `--listen`: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` or a bare `PORT` (loopback).
/// A non-loopback address needs `--allow-remote`.
fn listen_addr(args: &ListenArgs) -> Result<SocketAddr> {
    let text = args.listen.trim();
    let bad = || {
        Error::Config(format!(
            "--listen {text:?}: expected IP:PORT, localhost:PORT or PORT, e.g. 127.0.0.1:0"
        ))
    };
    let addr = if let Ok(port) = text.parse::<u16>() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else if let Some(port) = text.strip_prefix("localhost:") {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.parse().map_err(|_| bad())?,
        )
    } else {
        text.parse::<SocketAddr>().map_err(|_| bad())?
    };
    if !addr.ip().is_loopback() {
        if !args.allow_remote {
            return Err(Error::Config(format!(
                "--listen {addr} is not a loopback address: anyone who can reach it gets the recordings; \
                 add --allow-remote to bind it anyway"
            )));
        }
        tracing::warn!(%addr, "listening on a non-loopback address (--allow-remote)");
    }
    Ok(addr)
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal sent right after the listening line is never lost to the
/// default action (which would kill the process without draining or flushing).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async {
            match terminate.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = terminate => {}
        }
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
