//! The signals that stop ims-vcr (SIGINT, SIGTERM and SIGHUP, as signal numbers: the serving
//! commands drain on them, and `run` passes them on to the command it runs), and who gets a
//! passed-on one (the command alone, or its whole process group).

use std::time::Duration;

/// How soon after a signal another one is the same stop ([`Signals::another`]).
pub(super) const PAIRED: Duration = Duration::from_millis(250);

/// How long after a first signal the others sent with it are waited for, to pass on the one
/// that matters (see [`Signals::first`]).
const TOGETHER: Duration = Duration::from_millis(50);

/// SIGINT, SIGTERM and SIGHUP (Ctrl-C elsewhere), received as signal numbers.
pub(super) struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
                hangup: (!hangup_ignored())
                    .then(|| signal(SignalKind::hangup()).ok())
                    .flatten(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// A signal received and not yet taken, if any.
    pub(super) async fn pending(&mut self) -> Option<i32> {
        // Polls `recv` once: a timeout polls its future before its deadline.
        tokio::time::timeout(Duration::ZERO, self.recv()).await.ok()
    }

    /// `signal`, just taken, or the one that matters of those sent with it: SIGINT, then
    /// SIGTERM, then SIGHUP. systemd sends SIGTERM and SIGHUP back to back, and the kernel
    /// delivers the lower-numbered one first: a SIGHUP can be taken before its SIGTERM has
    /// arrived, so the signals received within [`TOGETHER`] of it are read too.
    pub(super) async fn with_those_sent_together(&mut self, mut signal: i32) -> i32 {
        let until = tokio::time::Instant::now() + TOGETHER;
        while let Ok(other) = tokio::time::timeout_at(until, self.recv()).await {
            if urgency(other) < urgency(signal) {
                signal = other;
            }
        }
        signal
    }

    /// The next signal received a quarter of a second or more after the first one, taken at
    /// `first`: those in between are one stop with it (a dropped ssh session sends SIGHUP
    /// twice, systemd SIGTERM then SIGHUP), where a person pressing Ctrl-C again takes longer.
    /// Past that quarter of a second, any signal counts.
    pub(super) async fn another(&mut self, first: tokio::time::Instant) -> i32 {
        let paired_until = first + PAIRED;
        if tokio::time::Instant::now() < paired_until {
            tokio::time::sleep_until(paired_until).await;
            while self.pending().await.is_some() {}
        }
        self.recv().await
    }

    /// The next signal received.
    pub(super) async fn recv(&mut self) -> i32 {
        #[cfg(unix)]
        {
            async fn next(stream: Option<&mut tokio::signal::unix::Signal>) {
                match stream {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            // In this order when several are pending: systemd sends SIGTERM then SIGHUP as one
            // stop, and the command must get the SIGTERM (a random pick passed either on).
            tokio::select! {
                biased;
                () = next(self.interrupt.as_mut()) => libc::SIGINT,
                () = next(self.terminate.as_mut()) => libc::SIGTERM,
                () = next(self.hangup.as_mut()) => libc::SIGHUP,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            2
        }
    }
}

/// Which of signals sent together is passed on: the lowest (SIGINT, SIGTERM, then SIGHUP).
fn urgency(signal: i32) -> u8 {
    #[cfg(unix)]
    match signal {
        libc::SIGINT => 0,
        libc::SIGTERM => 1,
        _ => 2,
    }
    #[cfg(not(unix))]
    {
        let _ = signal;
        0
    }
}

/// Whether SIGHUP was ignored when the process started (`nohup`, or a supervisor that does
/// so): then it stays ignored, as the user asked, and is neither caught nor passed on.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: `sigaction` with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Who gets a forwarded signal.
///
/// When ims-vcr runs in the foreground of a terminal, the command stays in ims-vcr's process
/// group, so it can read the terminal and Ctrl-C reaches it directly (and is not sent a second
/// time); SIGTERM goes to the command. Otherwise (CI, scripts, `kill`) the command leads a
/// process group of its own and signals go to that whole group, so the shells and workers it
/// started stop too.
#[derive(Clone, Copy)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(super) enum Group {
    /// The command shares ims-vcr's process group, in a terminal's foreground.
    Shared,
    /// The command leads its own process group.
    Own,
}

impl Group {
    /// Decides, and sets up `cmd` for it.
    pub(super) fn choose(cmd: &mut tokio::process::Command) -> Group {
        #[cfg(unix)]
        if !in_terminal_foreground() {
            cmd.process_group(0);
            return Group::Own;
        }
        let _ = cmd;
        Group::Shared
    }

    /// Passes `signal` on to the command.
    pub(super) fn forward(self, pid: Option<u32>, signal: i32) {
        #[cfg(unix)]
        match self {
            // The terminal sent Ctrl-C to the whole foreground group, the command included.
            Group::Shared if signal == libc::SIGINT => {}
            Group::Shared => send(pid, false, signal),
            Group::Own => send(pid, true, signal),
        }
        #[cfg(not(unix))]
        let _ = (self, pid, signal);
    }

    /// SIGKILL to the command (and its group).
    pub(super) fn kill(self, pid: Option<u32>, child: &mut tokio::process::Child) {
        #[cfg(unix)]
        if let Group::Own = self {
            send(pid, true, libc::SIGKILL);
        }
        #[cfg(not(unix))]
        let _ = (self, pid);
        let _ = child.start_kill();
    }
}

/// Whether ims-vcr is in the foreground process group of the terminal on stdin, stdout or stderr.
#[cfg(unix)]
fn in_terminal_foreground() -> bool {
    // SAFETY: getpgrp and tcgetpgrp only read process state; tcgetpgrp returns -1 (ENOTTY,
    // EBADF) for a descriptor that is closed or not a terminal.
    let own = unsafe { libc::getpgrp() };
    (0..=2).any(|fd| unsafe { libc::tcgetpgrp(fd) } == own)
}

/// Sends `signal` to process `pid`, or to the process group it leads.
#[cfg(unix)]
fn send(pid: Option<u32>, group: bool, signal: i32) {
    let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) has no memory-safety preconditions; a target that is gone is ESRCH.
    if unsafe { libc::kill(target, signal) } != 0 {
        tracing::debug!(target, signal, error = %std::io::Error::last_os_error(), "kill");
    }
}
