//! The `ims-vcr` binary run as a user runs it: a child process in a folder, its listening line,
//! its log, signals and exit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{FakeIms, SEED_IMAGE_ID, get, shipped_cassettes};

pub const BIN: &str = env!("CARGO_BIN_EXE_ims-vcr");

/// Variables a test must not inherit: credentials, log filters, the control token.
const SCRUBBED: [&str; 5] = [
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "RUST_LOG",
    "IMS_VCR_CONTROL_TOKEN",
];

/// Distinguishes the log files of processes started in the same folder.
static LOGS: AtomicUsize = AtomicUsize::new(0);

/// A running `ims-vcr`, the URI from its listening line, and its own log file (stderr); killed
/// on drop.
pub struct Running {
    child: Child,
    pub uri: String,
    log: PathBuf,
}

impl Running {
    /// The process id of the running `ims-vcr`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(args: &[&str], cwd: &Path) -> Running {
        Running::start_with_env(args, cwd, &[])
    }

    /// Starts `ims-vcr args` in `cwd` with `env` added to this environment less [`SCRUBBED`],
    /// and waits (up to 30 s) for its listening line.
    pub fn start_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Running {
        Running::spawn(Command::new(BIN), args, cwd, env)
    }

    /// [`Running::start`], the process allowed to run on one CPU only (its affinity set to the
    /// first CPU this test may use, as `taskset -c` does).
    #[cfg(target_os = "linux")]
    pub fn start_on_one_cpu(args: &[&str], cwd: &Path) -> Running {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(BIN);
        // SAFETY: the closure runs in the child between fork and exec. It neither allocates nor
        // locks: it reads and sets its CPU mask on the stack through `sched_getaffinity` and
        // `sched_setaffinity`, which glibc implements as bare system calls (POSIX does not list
        // them as async-signal-safe, but nothing in them can be left half-done by the fork).
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let size = std::mem::size_of::<libc::cpu_set_t>();
                if libc::sched_getaffinity(0, size, &mut set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let first = (0..libc::CPU_SETSIZE as usize)
                    .find(|&cpu| libc::CPU_ISSET(cpu, &set))
                    .unwrap_or(0);
                libc::CPU_ZERO(&mut set);
                libc::CPU_SET(first, &mut set);
                if libc::sched_setaffinity(0, size, &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Running::spawn(command, args, cwd, &[])
    }

    /// [`Running::start`] under a file-size limit of `bytes` (`ulimit -f`, systemd's
    /// `LimitFSIZE=`): a write past it fails, or raises SIGXFSZ.
    #[cfg(unix)]
    pub fn start_with_file_size_limit(args: &[&str], cwd: &Path, bytes: u64) -> Running {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(BIN);
        // SAFETY: between fork and exec the child only sets one resource limit, from a value
        // on the stack, with a bare system call.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                match libc::setrlimit(libc::RLIMIT_FSIZE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        Running::spawn(command, args, cwd, &[])
    }

    /// [`Running::start`] with SIGHUP ignored, as `nohup` starts a command.
    #[cfg(unix)]
    pub fn start_ignoring_hangup(args: &[&str], cwd: &Path) -> Running {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(BIN);
        // SAFETY: between fork and exec the child only sets one signal's disposition, which
        // `signal` does with a bare system call.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
        Running::spawn(command, args, cwd, &[])
    }

    fn spawn(mut command: Command, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Running {
        let n = LOGS.fetch_add(1, Ordering::SeqCst);
        let log = cwd.join(format!("ims-vcr-{}-{n}.log", args[0]));
        for name in SCRUBBED {
            command.env_remove(name);
        }
        let mut child = command
            .envs(env.iter().copied())
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(uri) = line.trim_end().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ims-vcr {args:?} printed {line:?} instead of its listening line; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Running {
            uri: uri.to_owned(),
            child,
            log,
        }
    }

    /// `ims-vcr record` against `fake` (trusting its CA), on a free port, plus `extra` flags.
    pub fn record(fake: &FakeIms, cwd: &Path, extra: &[&str], env: &[(&str, &str)]) -> Running {
        Running::forwarding("record", fake, cwd, extra, env)
    }

    /// `ims-vcr MODE` (record, auto, passthrough) against `fake`, as [`Running::record`].
    pub fn forwarding(
        mode: &str,
        fake: &FakeIms,
        cwd: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Running {
        let ca = fake.write_ca_pem(cwd);
        let url = fake.base_url();
        let mut args = vec![
            mode,
            "--upstream",
            &url,
            "--upstream-ca",
            ca.to_str().unwrap(),
            "--listen",
            "0",
        ];
        args.extend_from_slice(extra);
        Running::start_with_env(&args, cwd, env)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        let authority = self.uri.split("://").nth(1).unwrap();
        authority.parse().unwrap()
    }

    /// Everything the process logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub fn assert_no_panic(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "the proxy panicked:\n{log}");
    }

    /// Open file descriptors of the process (sockets included).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Sends `signal` (`-TERM`, `-KILL`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, then reap.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits (up to 15 s) for the process to exit.
    pub fn wait(self) -> ExitStatus {
        self.wait_with_log().0
    }

    /// Waits (up to 15 s) for the process to exit; its status and everything it logged.
    pub fn wait_with_log(mut self) -> (ExitStatus, String) {
        let status = wait_exit(&mut self.child, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("ims-vcr did not exit within 15 s"));
        (status, self.log())
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, limit)
    }

    /// SIGTERM, then [`Running::wait`].
    pub fn terminate(self) -> ExitStatus {
        self.signal("-TERM");
        self.wait()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line `child` writes on its (piped) standard output, without its line ending.
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim_end().to_owned()
}

/// The child's exit status, or `None` if it is still running after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs `ims-vcr args` in `cwd` to completion (environment scrubbed as for [`Running`]):
/// (exit code, stdout, stderr). A run that takes over 30 s, or panics, fails the test.
pub fn run_with_stdout(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    for name in SCRUBBED {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_exit(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let status = status.unwrap_or_else(|| panic!("ims-vcr {args:?} hung; stderr:\n{stderr}"));
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// [`run_with_stdout`] without the stdout.
pub fn run(args: &[&str], cwd: &Path) -> (i32, String) {
    let (code, _, stderr) = run_with_stdout(args, cwd);
    (code, stderr)
}

/// `ims-vcr replay` of the shipped cassettes, with a 1 s header-read timeout and a 1 KiB body cap.
pub fn hostile_replay(dir: &Path) -> Running {
    shipped_cassettes(dir);
    Running::start_with_env(
        &[
            "replay",
            "--cassettes",
            "cassettes",
            "--listen",
            "0",
            "--header-read-timeout",
            "1",
            "--max-body",
            "1024",
        ],
        dir,
        &[],
    )
}

/// `ims-vcr record` in front of `upstream` into `dir/store`, same limits as [`hostile_replay`].
pub fn hostile_record(dir: &Path, upstream: &str, extra: &[&str]) -> Running {
    let mut args = vec![
        "record",
        "--upstream",
        upstream,
        "--store",
        "store",
        "--listen",
        "0",
        "--header-read-timeout",
        "1",
        "--max-body",
        "1024",
    ];
    args.extend_from_slice(extra);
    Running::start_with_env(&args, dir, &[])
}

/// A normal request still gets its normal answer, and nothing panicked so far.
pub async fn assert_still_serving(proxy: &Running) {
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["id"], SEED_IMAGE_ID);
    proxy.assert_no_panic();
}
