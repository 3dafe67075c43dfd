//! The `ims-vcr` binary: parse arguments, set up logging, run the library, report errors.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = ims_vcr::cli::parse_args();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(if cli.verbose {
                "info,ims_vcr=debug"
            } else {
                "info"
            })
        }))
        .with_writer(std::io::stderr)
        .with_ansi(ims_vcr::cli::colored_logs())
        .init();
    let (mut builder, threads) = runtime_builder();
    tracing::debug!("async runtime: {threads}");
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ims_vcr::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ims_vcr::Error::ExitCode(code)) => ExitCode::from(code),
        Err(e) => {
            match &e {
                ims_vcr::Error::Verdict(why) => eprintln!("verdict: {why}"),
                ims_vcr::Error::Unchecked(why) => eprintln!("not checked: {why}"),
                ims_vcr::Error::Usage(why) => {
                    eprintln!("error: {why}\n\nFor more information, try '--help'.");
                }
                e => eprintln!("error: {e}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// The async runtime, and how it runs, in words for the log. A single thread when the process
/// may use one CPU only (started under `taskset -c N`, or in a container limited to one CPU), so a
/// request and the upstream connection it borrows never hand work across threads: forwarding
/// then costs less CPU per request (docs/performance.md, "Fifth pass"). A worker per CPU
/// otherwise.
fn runtime_builder() -> (tokio::runtime::Builder, &'static str) {
    match std::thread::available_parallelism() {
        Ok(cpus) if cpus.get() == 1 => (
            tokio::runtime::Builder::new_current_thread(),
            "one thread (one CPU available)",
        ),
        _ => (
            tokio::runtime::Builder::new_multi_thread(),
            "a worker per available CPU",
        ),
    }
}
