//! The serving commands (`record`, `auto`, `replay`, `passthrough`): flags into a
//! [`ProxyServerBuilder`], the listener address, and serving until a signal.

use super::*;
use crate::model::count;

/// The builder settings every serving mode shares.
pub(super) fn server(listen: &ListenArgs) -> Result<ProxyServerBuilder> {
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
        input::check("--tls-cert", cert)?;
        input::check("--tls-key", key)?;
        builder = builder.tls(cert, key);
    }
    Ok(builder)
}

/// Longest timeout accepted: far beyond any use, and safely inside what deadline arithmetic
/// (`Instant + Duration`, which panics on overflow) can take.
pub(super) const MAX_TIMEOUT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// A timeout given with `flag`, in seconds: positive and at most a year.
pub(super) fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if value > 0.0 && value <= MAX_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Error::Usage(format!(
            "{flag} {value} must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS} (a year)"
        )))
    }
}

/// Settings shared by record and auto: store, durability, redaction, match rules.
pub(super) fn forwarding(args: &RecordArgs, config: &Config) -> Result<ProxyServerBuilder> {
    let mut builder = server(&args.listen)?
        .store(store_path(args.store.store.clone(), config))
        .fsync(args.fsync);
    if let Some(policy) = args.redact.policy(config) {
        tracing::info!(?policy, "redacting before storing");
        builder = builder
            .redact(policy)
            .redaction_key(writing_redaction_key()?);
    }
    let rules = match_rules(&args.matching, config)?;
    if !rules.is_default() {
        builder = builder.match_rules(rules);
    }
    Ok(builder)
}

pub(super) fn match_rules(args: &MatchArgs, config: &Config) -> Result<MatchRules> {
    // A bad setting from the settings file is named by the file and its key, not by a flag the
    // user never typed.
    let file = (config.source.as_deref()).unwrap_or(Path::new(crate::cli::config::CONFIG_FILE));
    let in_file =
        |key: &str, why: &str| Error::Config(format!("{}: [match] {key}{why}", file.display()));
    // Each flag replaces its `[match]` setting, as every flag replaces its setting.
    let volatile = if args.volatile.is_empty() {
        crate::model::volatile::Volatile::new(config.matching.volatile.clone()).map_err(|e| {
            // Every error of `Volatile::new` starts with the flag's name, which the key replaces.
            let why = e.strip_prefix("--volatile").unwrap_or(&e);
            in_file("volatile", why)
        })?
    } else {
        crate::model::volatile::Volatile::new(args.volatile.clone()).map_err(Error::Usage)?
    };
    let or_setting = |flag: &[String], setting: &[String]| match flag.is_empty() {
        true => setting.to_vec(),
        false => flag.to_vec(),
    };
    let headers_from_file = args.match_headers.is_empty();
    let rules = MatchRules {
        volatile,
        match_headers: or_setting(&args.match_headers, &config.matching.headers)
            .iter()
            .map(|name| name.to_ascii_lowercase())
            .collect(),
        ignore_query: or_setting(&args.ignore_query, &config.matching.ignore_query),
        shift_time: or_setting(&args.shift_time, &config.matching.shift_time),
    };
    rules.validate().map_err(|e| match headers_from_file {
        true => in_file(&format!("headers[{}]", e.index), &format!(": {e}")),
        false => Error::Usage(format!(
            "--match-header {}: {e}",
            args.match_headers[e.index]
        )),
    })?;
    Ok(rules)
}

/// `builder` in `mode`, forwarding by the routes of `args`.
pub(super) fn routed(
    builder: ProxyServerBuilder,
    mode: crate::proxy::Mode,
    args: &UpstreamArgs,
) -> Result<ProxyServerBuilder> {
    let mut builder = builder.mode(mode);
    for (prefix, upstream) in upstream_routes(args)? {
        builder = builder.route(prefix, upstream);
    }
    Ok(builder)
}

/// The routes: `--upstream URL` is the route `/`, each `--route PREFIX=URL` another; each takes
/// `--route-ca` for its prefix, else `--upstream-ca`, and the same timeout, answer cap and AK/SK.
pub(super) fn upstream_routes(args: &UpstreamArgs) -> Result<Vec<(String, UpstreamConfig)>> {
    use crate::net::routes::parse_assignment;
    let mut routes: Vec<(String, String)> = Vec::new();
    if let Some(url) = &args.upstream {
        routes.push(("/".to_owned(), url.clone()));
    }
    // A bad --route is a bad flag value: a usage error, as for --upstream.
    for text in &args.routes {
        let (prefix, url) = parse_assignment("--route", text).map_err(usage)?;
        route_url(&url).map_err(|reason| {
            let shown = crate::model::credentials::shown_url(&url);
            Error::Usage(format!(
                "invalid value '{prefix}={shown}' for '--route': {reason}"
            ))
        })?;
        if routes.iter().any(|(p, _)| *p == prefix) {
            return Err(Error::Usage(format!(
                "--route {prefix}: the prefix is given twice (--upstream is the route /)"
            )));
        }
        routes.push((prefix, url));
    }
    let mut cas: Vec<(String, PathBuf)> = Vec::new();
    for text in &args.route_cas {
        let (prefix, file) = parse_assignment("--route-ca", text).map_err(usage)?;
        if !routes.iter().any(|(p, _)| *p == prefix) {
            return Err(Error::Usage(format!(
                "--route-ca {text}: no route has the prefix {prefix} (routes: {})",
                routes
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        input::check_ca(
            "--route-ca",
            &format!("--route-ca {text}"),
            Path::new(&file),
        )?;
        cas.push((prefix, PathBuf::from(file)));
    }
    let base = upstream_config(args)?;
    Ok(routes
        .into_iter()
        .map(|(prefix, url)| {
            let mut config = base.clone();
            config.url = url;
            if let Some((_, ca)) = cas.iter().find(|(p, _)| *p == prefix) {
                config.ca_file = Some(ca.clone());
            }
            (prefix, config)
        })
        .collect())
}

/// A flag value refused by a parser that reports it as a runtime error: a usage error.
fn usage(e: Error) -> Error {
    Error::Usage(e.to_string())
}

/// The settings every route shares; AK/SK only ever come from the environment (a flag would
/// show in `ps`).
fn upstream_config(args: &UpstreamArgs) -> Result<UpstreamConfig> {
    let mut upstream = UpstreamConfig::new(String::new());
    if let Some(ca) = &args.upstream_ca {
        input::check_ca(
            "--upstream-ca",
            &format!("--upstream-ca {}", ca.display()),
            ca,
        )?;
    }
    upstream.ca_file = args.upstream_ca.clone();
    upstream.timeout = seconds(args.upstream_timeout, "--upstream-timeout")?;
    upstream.max_body = args.max_answer_body;
    upstream.credentials = crate::net::signer::Credentials::from_env().map_err(Error::Config)?;
    match &upstream.credentials {
        Some(credentials) => tracing::info!(
            ?credentials,
            "re-signing AK/SK-signed and credential-less requests with AK/SK from the environment \
             (a request carrying a token goes as it came)"
        ),
        None if std::env::var_os(crate::net::signer::ENV_SECURITY_TOKEN)
            .is_some_and(|t| !t.is_empty()) =>
        {
            tracing::warn!(
                "{} is set but {} and {} are not: a security token only goes with the temporary \
                 AK/SK it was issued with, so the proxy does not sign; requests are forwarded with \
                 the client's own credentials",
                crate::net::signer::ENV_SECURITY_TOKEN,
                crate::net::signer::ENV_AK,
                crate::net::signer::ENV_SK
            )
        }
        None => tracing::info!(
            "no AK/SK in the environment: requests are forwarded with the client's own credentials"
        ),
    }
    Ok(upstream)
}

pub(super) async fn replay(args: ReplayArgs, config: &Config) -> Result<()> {
    let builder = server(&args.listen)?
        .replay()
        .sequence(args.playback.sequence)
        .fail_on_unused(args.playback.fail_on_unused);
    let builder = replay_source(builder, args.store, args.cassettes, config)?;
    serve_until_signal(builder, Some(&args.playback), args.listen.stop_on_stdin_eof).await
}

/// What replay serves: `--store DIR`, else `--cassettes DIR` (else the config's, else the default).
pub(super) fn replay_source(
    builder: ProxyServerBuilder,
    store: Option<PathBuf>,
    cassettes: Option<PathBuf>,
    config: &Config,
) -> Result<ProxyServerBuilder> {
    Ok(match Source::choose(store, cassettes, config)? {
        Source::Store(store, _) => builder.store(store),
        Source::Cassettes(dir, _) => builder.cassettes(existing(&dir, "--cassettes")?),
    })
}

/// Serves until SIGINT/SIGTERM (or, with `stdin_eof`, until standard input ends), prints the
/// summary, and applies the CI verdicts.
pub(super) async fn serve_until_signal(
    builder: ProxyServerBuilder,
    verdicts: Option<&PlaybackArgs>,
    stdin_eof: bool,
) -> Result<()> {
    let signal = shutdown_signal();
    let signal = async move {
        tokio::select! {
            () = signal => {}
            () = stdin_ended(), if stdin_eof => {
                tracing::info!("standard input ended (--stop-on-stdin-eof)");
            }
        }
    };
    let server = builder.start().await?;
    // The one stdout line scripts read the port from.
    // Nobody reading it (a closed or failing stdout) does not stop the proxy: it serves on.
    if let Err(e) = outln!("listening on {}", server.uri()) {
        tracing::warn!(
            "cannot print the listening line ({}); serving on {}",
            output_error(&e),
            server.uri()
        );
    }
    tokio::select! {
        () = signal => {}
        // Replay of a store that turned out unreadable (its index is built behind serving).
        e = server.failure() => {
            let _ = server.shutdown().await;
            return Err(e);
        }
    }
    tracing::info!("shutting down: draining connections");
    // A second signal stops at once, as a second Ctrl-C does elsewhere: every answer a client
    // got is in the store's log already (what `kill -9` leaves is whole), so nothing recorded
    // is lost; the requests still in flight get no answer, and the next start reads the log.
    // Only one that comes a quarter of a second or more after the first (a person pressing
    // Ctrl-C again takes longer): a dropped ssh session can send SIGHUP twice, and systemd
    // sends SIGTERM then SIGHUP, each pair meaning one stop.
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        shutdown_signal().await;
    };
    let summary = tokio::select! {
        summary = server.shutdown() => summary?,
        () = second => {
            errln!(
                "a signal while draining: stopping now, without waiting for the requests in \
                 flight; every answer already served is in the store's log and is kept"
            );
            return Err(Error::ExitCode(1));
        }
    };
    err!("{summary}");
    match verdicts {
        Some(verdicts) => apply_verdicts(&summary, verdicts),
        None => stored_everything(&summary),
    }
}

/// A failed verdict when answers were served but the store failed to take them (a full disk):
/// a recording session that lost some is not a recording to trust, whatever else it did.
pub(super) fn stored_everything(summary: &crate::Summary) -> Result<()> {
    match summary.not_stored {
        0 => Ok(()),
        n => Err(Error::Verdict(format!(
            "{} served live but not recorded: the store failed (see the errors above)",
            count(n, "answer was", "answers were")
        ))),
    }
}

/// What went wrong printing to stdout, for a log line.
fn output_error(e: &Error) -> String {
    match e {
        Error::ExitCode(_) => "its reader has gone".to_owned(),
        e => e.to_string(),
    }
}

/// `--fail-on-miss` and `--fail-on-unused` against a summary: [`Error::Verdict`] naming each
/// that failed.
pub(super) fn apply_verdicts(summary: &crate::Summary, verdicts: &PlaybackArgs) -> Result<()> {
    let mut failed = Vec::new();
    if verdicts.fail_on_miss && summary.miss_count() > 0 {
        let n = summary.miss_count();
        failed.push(format!(
            "{} (--fail-on-miss)",
            count(n, "request missed", "requests missed")
        ));
    }
    if let Err(Error::Verdict(lost)) = stored_everything(summary) {
        failed.push(lost);
    }
    if verdicts.fail_on_unused && !summary.unused.is_empty() {
        let n = summary.unused.len();
        failed.push(format!(
            "{} (--fail-on-unused)",
            count(n, "recording never played", "recordings never played")
        ));
    }
    let mut sessions: Vec<&str> = summary
        .sessions
        .iter()
        .filter(|s| {
            (verdicts.fail_on_miss && s.miss_count > 0)
                || (verdicts.fail_on_unused && !s.unused.is_empty())
        })
        .map(|s| s.session.as_str())
        .collect();
    // Misses no named session had are the default session's: named too, beside the others.
    let in_sessions: u64 = summary.sessions.iter().map(|s| s.miss_count).sum();
    if verdicts.fail_on_miss && !sessions.is_empty() && summary.miss_count() > in_sessions {
        sessions.insert(0, "the default session (no x-ims-vcr-session)");
    }
    // A few named, the rest counted: the summary above lists them, bounded as it is.
    const NAMED: usize = 10;
    match sessions.len() {
        0 => {}
        n if n <= NAMED => failed.push(format!("failed sessions: {}", sessions.join(", "))),
        n => failed.push(format!(
            "{n} failed sessions: {} and {} more",
            sessions[..NAMED].join(", "),
            n - NAMED
        )),
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Verdict(failed.join("; ")))
    }
}

/// `--upstream`'s parser: [`upstream_url`], with a refusal that shows the URL without its user
/// information (clap's own message would repeat a `user:password@` URL whole, on stderr).
#[derive(Clone)]
pub(super) struct UpstreamUrl;

impl clap::builder::TypedValueParser for UpstreamUrl {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<String, clap::Error> {
        use clap::error::ErrorKind;
        let text = value
            .to_str()
            .ok_or_else(|| clap::Error::new(ErrorKind::InvalidUtf8).with_cmd(cmd))?;
        upstream_url(text).map_err(|reason| {
            let name = arg.map_or_else(|| "--upstream <URL>".to_owned(), |a| a.to_string());
            let shown = crate::model::credentials::shown_url(text);
            let message = format!("invalid value '{shown}' for '{name}': {reason}\n");
            clap::Error::raw(ErrorKind::ValueValidation, message).with_cmd(cmd)
        })
    }
}

/// Checks `--upstream` (clap reports a refusal as a usage error): `https://host[:port]`, or
/// `http://` for a local stand-in, and nothing after the authority. Clients send the whole path
/// (`/v2/images/…`), so a path here would be sent twice (`/v2/v2/images/…`).
pub(super) fn upstream_url(text: &str) -> std::result::Result<String, String> {
    let uri = origin(text)?;
    let path = uri.path();
    if !matches!(path, "" | "/") {
        // Shown with its `;token=` parameters masked, as the URL is in the refusal.
        let path = crate::model::credentials::shown_path(path);
        let authority = uri.authority().map_or("", |a| a.as_str());
        let origin = format!("{}://{authority}", uri.scheme_str().unwrap_or("https"));
        return Err(format!(
            "give only scheme://host[:port], without a path: clients send the whole path \
             (/v2/images/...), so {path} would be sent twice ({}/v2/...); use --upstream {origin}",
            path.trim_end_matches('/'),
        ));
    }
    Ok(text.to_owned())
}

/// Checks the URL of a `--route PREFIX=URL`: as `--upstream`, but a path is allowed (it is put
/// before each forwarded path).
pub(super) fn route_url(text: &str) -> std::result::Result<(), String> {
    origin(text).map(|_| ())
}

const CREDENTIALS_IN_URL: &str = "credentials in the URL are not supported: clients send their \
     own, and AK/SK go in the proxy's environment (HUAWEICLOUD_SDK_AK/_SK)";

/// The checks `--upstream` and `--route` share: a scheme (https, or http), a host, a port from
/// 1 to 65535 when one is given (`host:` with none is refused too), and no user information,
/// query or fragment (a fragment is never sent, so it would be dropped without a word).
fn origin(text: &str) -> std::result::Result<hyper::Uri, String> {
    const EXAMPLE: &str = "https://ims.cn-north-4.myhuaweicloud.com";
    // An origin (and a route's path prefix) has no use for `@`: one is user information, also
    // typed as `user:pa/ss@host` or `user:2024/pw@host` (which the URL rules read as host `user`
    // and a port): the message quotes no part of it.
    if text
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('@'))
    {
        return Err(CREDENTIALS_IN_URL.into());
    }
    let uri: hyper::Uri = text
        .parse()
        .map_err(|e| format!("{e}; expected a URL such as {EXAMPLE}"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        Some(_) => {
            return Err("the scheme must be https:// (or http:// for a local stand-in)".into());
        }
        None => return Err(format!("it needs a scheme, e.g. {EXAMPLE}")),
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("it has no host, e.g. {EXAMPLE}"));
    };
    if authority.as_str().contains('@') {
        return Err(CREDENTIALS_IN_URL.into());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(format!("it has no host before the port, e.g. {EXAMPLE}"));
    }
    // What follows the host: nothing, or `:PORT`.
    if let Some(port) = authority
        .as_str()
        .get(host.len()..)
        .filter(|p| !p.is_empty())
    {
        match port.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(1..)) => {}
            Some(_) if port == ":" => {
                return Err(
                    "the port after ':' is empty; give one (1 to 65535) or leave out the ':'"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "the port {} is not one from 1 to 65535",
                    port.trim_start_matches(':')
                ));
            }
        }
    }
    if uri.query().is_some() {
        return Err("it must not have a query string".into());
    }
    if text.contains('#') {
        return Err(
            "it must not have a fragment (#...): a fragment is never sent to a server".into(),
        );
    }
    Ok(uri)
}

/// Parses `--listen`: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` or a bare `PORT` (loopback).
/// A non-loopback address needs `--allow-remote`.
pub(super) fn listen_addr(args: &ListenArgs) -> Result<SocketAddr> {
    let text = args.listen.trim();
    let bad = || {
        Error::Usage(format!(
            "--listen {text:?}: expected IP:PORT, localhost:PORT or PORT (0 to 65535), e.g. 127.0.0.1:0"
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
            return Err(Error::Usage(format!(
                "--listen {addr} is not a loopback address: anyone who can reach it gets the recordings; \
                 add --allow-remote to bind it anyway"
            )));
        }
        tracing::warn!(%addr, "listening on a non-loopback address (--allow-remote)");
    }
    Ok(addr)
}

/// Resolves when standard input ends (or fails): the parent that holds its other end is gone.
/// Read on a thread of its own, left behind at exit (a runtime's blocking task would be waited
/// for, and a stdin that never ends would hold the exit up).
async fn stdin_ended() {
    let (ended, wait) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdin-eof".into())
        .spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 256];
            loop {
                match std::io::stdin().lock().read(&mut buf) {
                    Ok(0) => break,
                    // Input nobody asked for is read and dropped, at a bounded pace (an endless
                    // stream such as /dev/zero must not take a CPU).
                    Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                    // A non-blocking pipe with nothing in it yet has not ended.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = ended.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = wait.await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch standard input; --stop-on-stdin-eof is off");
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP (a closed terminal, a dropped ssh session, a
/// supervisor's stop; not when SIGHUP was ignored, as under `nohup`): each drains, flushes and
/// prints the summary. The handlers are installed when this is called (`Signals::install`), not
/// when the future is first polled, so a signal sent right after the listening line is never
/// lost to the default action (which would kill the process without draining or flushing).
pub(super) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let mut signals = super::signals::Signals::install();
    async move {
        signals.recv().await;
    }
}
