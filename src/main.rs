//! The `ims-vcr` binary: parse arguments, set up logging, run the library, report errors.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = ims_vcr::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(if cli.verbose {
                "info,ims_vcr=debug"
            } else {
                "info"
            })
        }))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ims_vcr::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ims_vcr::Error::ExitCode(code)) => ExitCode::from(code),
        Err(ims_vcr::Error::Verdict(why)) => {
            eprintln!("verdict: {why}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
