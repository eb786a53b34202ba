//! Stop and reload signals received through a `signalfd`, so a long-running tool handles them in
//! its `poll` loop, between units of work, never in the middle of a write.

use nix::sys::signal::{SigSet, Signal, raise};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;
use std::process::ExitCode;

/// Blocked signals and the descriptor they arrive on.
#[derive(Debug)]
pub struct Signals {
    blocked: SigSet,
    fd: SignalFd,
}

impl Signals {
    /// Blocks `signals` (except one ignored when the process started: `cmd &` in a
    /// non-interactive shell ignores SIGINT, and that choice is kept) and opens a non-blocking
    /// signalfd for them. Call it before anything that could be missed in between.
    pub fn block(signals: &[Signal]) -> io::Result<Self> {
        let blocked: SigSet = signals.iter().copied().filter(|s| !ignored_at_start(*s)).collect();
        blocked.thread_block().map_err(io::Error::from)?;
        let fd =
            SignalFd::with_flags(&blocked, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(io::Error::from)?;
        Ok(Self { blocked, fd })
    }

    /// The descriptor to `poll` for readability.
    #[must_use]
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The next pending signal, if any.
    #[must_use]
    pub fn next(&self) -> Option<Signal> {
        let info = self.fd.read_signal().ok()??;
        Signal::try_from(i32::try_from(info.ssi_signo).ok()?).ok()
    }

    /// Terminates the process by `signal`, so a shell sees 128+N, `&&` chains stop, and systemd
    /// counts it as a clean stop.
    ///
    /// No handler was ever installed and a signal ignored at start was never taken over, so the
    /// disposition is still the default (terminate): re-raising the signal while it is blocked
    /// leaves it pending, and unblocking delivers it. No `unsafe` signal(2) call is needed.
    #[must_use]
    pub fn die_by(&self, signal: Signal) -> ExitCode {
        let _ = raise(signal);
        let _ = self.blocked.thread_unblock();
        // Not reached; the shell convention in case the signal was somehow not fatal.
        ExitCode::from(128 + signal as u8)
    }
}

/// Whether `signal` was ignored when the process started (from `/proc/self/status`'s `SigIgn`).
fn ignored_at_start(signal: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal as u32 - 1)) != 0)
}
