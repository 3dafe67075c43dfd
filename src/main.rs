//! The `ims-vcr` binary: parse arguments, set up logging, run the library, report errors.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a recording allocates and frees buffers of a few KiB to a
/// few hundred KiB per request (the answer, its serialised interaction, the journal record, the
/// log's group), which glibc serves from its free lists with coalescing (`malloc_consolidate`,
/// `unlink_chunk`: about 10 % of record's CPU in a profile); with mimalloc, record serves 8-14 %
/// more requests per CPU-second. Built without transparent huge pages (the crate's `no_thp`):
/// with them a recording's p99 went from about 4 ms to about 20 ms (huge-page faults). When
/// freed memory goes back to the system depends on the command (see [`set_purge_delay`]). See
/// docs/performance-history.md, Twenty-second and Thirty-seventh passes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_when_output_is_closed();
    file_size_limit_is_an_error();
    let cli = ims_vcr::cli::parse_args();
    set_purge_delay(&cli);
    // Kept to the end: dropping it waits (briefly) for log lines queued for a piped stderr.
    let log = ims_vcr::cli::log::init(cli.verbose);
    let code = run(cli);
    drop(log);
    code
}

fn run(cli: ims_vcr::cli::Cli) -> ExitCode {
    let (mut builder, threads) = runtime_builder();
    tracing::debug!("async runtime: {threads}");
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ims_vcr::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ims_vcr::Error::ExitCode(code)) => ExitCode::from(code),
        Err(e) => {
            match &e {
                ims_vcr::Error::Verdict(why) => say(&format!("verdict: {why}")),
                ims_vcr::Error::Unchecked(why) => say(&format!("not checked: {why}")),
                ims_vcr::Error::Usage(why) => {
                    say(&format!(
                        "error: {why}\n\nFor more information, try '--help'."
                    ));
                }
                e => say(&format!("error: {e}")),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// One line on stderr, after the log's. A stderr that cannot be written (its reader gone, a full
/// disk) loses the line; it never turns the exit status into a panic (`eprintln!` panics).
/// Control characters are written visibly (`\x1b`, see `cli::log::say`).
fn say(line: &str) {
    ims_vcr::cli::log::say(line);
}

/// The commands print through `cli::output`, which ends a command quietly when its reader has
/// gone (`ims-vcr ls | head -1`). This is the backstop for a `println!` anywhere else (the
/// listings of `ls` and `show`): when it panics because standard output's pipe is closed, the
/// process ends at once with status 0 and no panic message, as `cat` ends. Only standard
/// output: a closed stderr must never end a proxy that is serving (nothing there uses
/// `eprintln!`, and the log drops a line it cannot write). Every other panic is reported as before.
fn quiet_when_output_is_closed() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if closed_pipe(message) {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// Under a file-size limit (`ulimit -f`, systemd's `LimitFSIZE=`), a write past it raises SIGXFSZ,
/// which kills the process unless caught: a recorder would die mid-session with no summary, a
/// pack rebuild before it served. Caught by a handler that does nothing, the write fails with
/// `EFBIG` instead, and takes the path of a full disk (an answer served but NOT stored, the
/// summary, exit status 3). A handler, not `SIG_IGN`: a caught signal is back to its default in
/// a program `run` starts, where an ignored one would stay ignored.
fn file_size_limit_is_an_error() {
    #[cfg(unix)]
    {
        extern "C" fn nothing(_: libc::c_int) {}
        // SAFETY: installs a handler that touches nothing (async-signal-safe by being empty)
        // for one signal, with a zeroed, then emptied, mask.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(libc::SIGXFSZ, &action, std::ptr::null_mut());
        }
    }
}

/// Whether `message` is the panic of `print!` on a pipe whose reader has gone:
/// `failed printing to stdout: Broken pipe (os error 32)`.
fn closed_pipe(message: &str) -> bool {
    #[cfg(unix)]
    let epipe = std::io::Error::from_raw_os_error(libc::EPIPE).to_string();
    #[cfg(not(unix))]
    let epipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
    message.starts_with("failed printing to stdout") && message.ends_with(&epipe)
}

/// The async runtime, and how it runs, in words for the log. A single thread when the process
/// may use one CPU only (started under `taskset -c N`, or in a container limited to one CPU), so a
/// request and the upstream connection it borrows never hand work across threads: forwarding
/// then costs less CPU per request (docs/performance-history.md, "Fifth pass"). A worker per CPU
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

/// Sets how long mimalloc keeps memory freed in whole pages before giving it back to the system
/// (its purge delay; mimalloc's own default is a second, and `MIMALLOC_PURGE_DELAY` in the
/// environment is overridden):
/// - at once (0) for every command but the two below (`auto` too: like `replay`, it builds a
///   store's index behind serving). Start-up builds large temporary indexes (reading a
///   100,000-recording store's pack, or rewriting a deleted one behind serving): with a
///   second's delay, RSS a second after start-up was 53-75 MB against 40-55 MB, and with even
///   10 ms the peak RSS of a pack's rewrite went from 57 to 64 MB;
/// - 100 ms for a command that forwards every request (`record`, `passthrough`, and `run` in
///   those modes, whose `--verify-replay` replays then run with it too): each request frees
///   buffers of its answer's size, and pages given back at once came back as page faults, one
///   for every three recorded requests (0.33 a request, against 0.11 with the delay): record
///   served 3-5 % more requests per CPU-second with the delay, passthrough 1-2 %, with the same
///   p99 (docs/performance-history.md, Thirty-seventh pass). mimalloc purges the pages whose
///   delay ran out when it is next used, so an idle proxy keeps what it freed last until its
///   next request.
fn set_purge_delay(cli: &ims_vcr::cli::Cli) {
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (the crate exports no constant for
    // it; mimalloc keeps the numbers of its options stable).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    let ms = if cli.forwards_every_request() { 100 } else { 0 };
    // SAFETY: mi_option_set is not thread-safe; this runs in main before any thread is started
    // (parsing the arguments starts none).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, ms) };
}
