//! `--wait-until-within`: block until a token's remaining time is at most a window, without
//! polling.
//!
//! Three file descriptors, one `poll`:
//! - inotify on the file's **directory**, filtered by name, so both ways the Claude CLI writes
//!   (in place, or a temp file renamed over it) and deletion/creation are seen;
//! - a `CLOCK_REALTIME` timerfd armed at the absolute instant the window opens, with
//!   `TFD_TIMER_CANCEL_ON_SET` so a clock jump wakes us to recompute (suspend is covered because
//!   the deadline is wall-clock time);
//! - a signalfd for SIGTERM/SIGINT, which are blocked so they arrive there.
//!
//! Changes are debounced ([`DEBOUNCE`]) so a create-then-write is read once, complete.

use crate::output::{human, remaining_text};
use crate::report::{self, Outcome, Settings};
use inotify::{EventMask, Inotify};
use keeper_core::input::Source;
use keeper_core::log::{Level, log};
use keeper_core::signal::Signals;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, TimerSetTimeFlags};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PROGRAM: &str = "token-expiry";

/// How long after the last change event the file is re-read (watchexec's default).
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Exit code when the file records no expiry (nothing to wait for).
const EXIT_NO_EXPIRY: u8 = 5;
/// Exit code for a logged-out stub.
const EXIT_LOGGED_OUT: u8 = 3;
/// Exit code when waiting cannot be set up.
const EXIT_CANNOT_WATCH: u8 = 4;

/// Waits on `path` until its token has at most `window` left; see the module docs.
pub(crate) fn run(path: &Path, window: Duration, settings: &Settings) -> ExitCode {
    match Waiter::new(path, window, settings) {
        Ok(mut w) => w.run(),
        Err(message) => {
            log(Level::Error, PROGRAM, format_args!("{message}"));
            ExitCode::from(EXIT_CANNOT_WATCH)
        }
    }
}

/// Why the file is being (re-)read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Start,
    Changed,
    Timer,
    ClockChanged,
}

/// What to do after reading the file.
enum Step {
    Wait,
    Exit(ExitCode),
}

struct Waiter<'a> {
    path: PathBuf,
    name: OsString,
    window: Duration,
    settings: &'a Settings,
    signals: Signals,
    inotify: Inotify,
    timer: TimerFd,
    /// The instant the window opens that the timer is armed for, if armed.
    armed_ms: Option<i64>,
}

impl<'a> Waiter<'a> {
    fn new(path: &Path, window: Duration, settings: &'a Settings) -> Result<Self, String> {
        let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?.to_owned();
        let dir = keeper_core::paths::parent_dir(path);
        // Block the stop signals first, so none is lost between here and the first poll. A signal
        // ignored at start (`cmd &` in a non-interactive shell ignores SIGINT) stays ignored.
        let signals = Signals::block(&[Signal::SIGTERM, Signal::SIGINT])
            .map_err(|e| format!("cannot receive stop signals: {e}"))?;
        // Watch before the first read, so a write in between is not missed.
        let inotify = Inotify::init().map_err(|e| format!("cannot initialise inotify: {e}"))?;
        inotify
            .watches()
            .add(dir, keeper_core::watch::FILE_IN_DIR_EVENTS)
            .map_err(|e| format!("cannot watch directory {}: {e}", dir.display()))?;
        let timer = TimerFd::new(ClockId::CLOCK_REALTIME, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)
            .map_err(|e| format!("cannot create a timerfd: {e}"))?;
        Ok(Self { path: path.to_path_buf(), name, window, settings, signals, inotify, timer, armed_ms: None })
    }

    fn run(&mut self) -> ExitCode {
        if let Step::Exit(code) = self.check(Why::Start) {
            return code;
        }
        let mut reread_at: Option<Instant> = None;
        loop {
            let timeout = keeper_core::watch::poll_timeout(reread_at);
            let (signal, changed, timer) = {
                let mut fds = [
                    PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                    PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.timer.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return self.fail(&format!("poll failed: {e}")),
                }
                let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                (ready(0), ready(1), ready(2))
            };
            if signal && let Some(code) = self.on_signal() {
                return code;
            }
            if changed {
                match self.drain_events() {
                    Ok(true) => reread_at = Some(Instant::now() + DEBOUNCE),
                    Ok(false) => {}
                    Err(message) => return self.fail(&message),
                }
            }
            if timer && let Some(why) = self.on_timer() {
                // The re-read below covers a pending change too.
                reread_at = None;
                if let Step::Exit(code) = self.check(why) {
                    return code;
                }
            }
            if reread_at.is_some_and(|at| Instant::now() >= at) {
                reread_at = None;
                if let Step::Exit(code) = self.check(Why::Changed) {
                    return code;
                }
            }
        }
    }

    /// Reads the file and decides: exit now, or (re-)arm the timer and keep waiting.
    fn check(&mut self, why: Why) -> Step {
        let file = self.path.display().to_string();
        let report = report::inspect(&Source::File(self.path.clone()), self.settings);
        let (token, expires_at) = match &report.outcome {
            Outcome::Expiry { token, expires_at, .. } => (token, *expires_at),
            Outcome::LoggedOut => {
                log(Level::Error, PROGRAM, format_args!("{file}: {}", credmap::Error::LoggedOut));
                return Step::Exit(ExitCode::from(EXIT_LOGGED_OUT));
            }
            Outcome::NoExpiry { .. } => {
                let format = report.format.map_or("unknown format", credmap::Format::name);
                log(Level::Error, PROGRAM, format_args!("{file}: no expiry recorded ({format}): nothing to wait for"));
                return Step::Exit(ExitCode::from(EXIT_NO_EXPIRY));
            }
            Outcome::Invalid(problem) => {
                let what = if why == Why::Changed { "changed but cannot be used" } else { "cannot be used" };
                log(Level::Warning, PROGRAM, format_args!("{file} {what}: {problem}; still waiting"));
                return Step::Wait;
            }
        };
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let opens_ms = expires_at.as_millis().saturating_sub(window_ms);
        let now = keeper_core::clock::now_ms();
        let window = humantime::format_duration(self.window);
        if now >= opens_ms {
            let left = remaining_text(expires_at.as_millis(), now);
            log(
                Level::Info,
                PROGRAM,
                format_args!("{file}: token {token} expires {expires_at} ({left}): within {window}, done"),
            );
            return Step::Exit(ExitCode::SUCCESS);
        }
        if self.armed_ms != Some(opens_ms) {
            if let Err(e) = self.arm(opens_ms) {
                return Step::Exit(self.fail(&format!("cannot arm the timer: {e}")));
            }
            self.armed_ms = Some(opens_ms);
        }
        let opens =
            credmap::ExpiresAt::from_millis(opens_ms).map_or_else(|_| format!("{opens_ms} ms"), |t| t.to_string());
        let wait = human(((opens_ms - now) / 1000) as u64);
        let what = match why {
            Why::Start => "",
            Why::Changed => " changed, re-read",
            Why::Timer => " re-read at the timer",
            Why::ClockChanged => " re-read after a wall-clock change",
        };
        log(
            Level::Info,
            PROGRAM,
            format_args!(
                "{file}{what}: waiting until {opens} ({window} before expiry at {expires_at}, in {wait}); token {token}"
            ),
        );
        Step::Wait
    }

    fn arm(&self, at_ms: i64) -> nix::Result<()> {
        let at = TimeSpec::from_duration(Duration::from_millis(at_ms.max(1) as u64));
        let flags = TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET;
        self.timer.set(Expiration::OneShot(at), flags)
    }

    /// Reads the timerfd: the window opened (`Timer`), or the clock jumped (`ClockChanged`).
    fn on_timer(&mut self) -> Option<Why> {
        match nix::unistd::read(&self.timer, &mut [0u8; 8]) {
            Ok(_) => {
                self.armed_ms = None;
                Some(Why::Timer)
            }
            Err(Errno::ECANCELED) => {
                // The timer stays armed but no longer notices clock changes until re-armed.
                self.armed_ms = None;
                Some(Why::ClockChanged)
            }
            Err(_) => None,
        }
    }

    /// Drains queued inotify events; `Ok(true)` when one concerns our file.
    fn drain_events(&mut self) -> Result<bool, String> {
        let mut buffer = [0u8; 4096];
        let mut relevant = false;
        loop {
            let events = match self.inotify.read_events(&mut buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(relevant),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading inotify events failed: {e}")),
            };
            for event in events {
                if event.mask.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
                    let dir = keeper_core::paths::parent_dir(&self.path);
                    return Err(format!("directory {} was removed or moved: cannot keep watching", dir.display()));
                }
                relevant |= event.mask.contains(EventMask::Q_OVERFLOW) || event.name == Some(self.name.as_os_str());
            }
        }
    }

    /// Handles a stop signal: logs it and dies by it.
    fn on_signal(&self) -> Option<ExitCode> {
        let signal = self.signals.next()?;
        log(Level::Info, PROGRAM, format_args!("received {}, stopping (exiting by the same signal)", signal.as_str()));
        Some(self.signals.die_by(signal))
    }

    fn fail(&self, message: &str) -> ExitCode {
        log(Level::Error, PROGRAM, format_args!("{}: {message}", self.path.display()));
        ExitCode::from(EXIT_CANNOT_WATCH)
    }
}
