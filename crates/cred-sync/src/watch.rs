//! `--watch`: sync whenever the Claude CLI rewrites its credentials, without polling.
//!
//! inotify watches the source's **directory**, filtered by the file's name, so both ways the CLI
//! writes (in place: `CLOSE_WRITE`; temp file renamed over it: `MOVED_TO`) and a recreation (`CREATE`)
//! are seen. When the directory itself is missing (or removed later), the nearest existing
//! ancestor is watched until it appears. A sync starts on the first event (no added latency);
//! events that arrive during a sync cause exactly one more sync right after it, so a write that
//! lands meanwhile is never lost. `--debounce` adds a trailing-edge quiet period instead.
//! Signals arrive on a signalfd and are handled between syncs: SIGTERM/SIGINT stop, SIGHUP forces
//! a full re-sync.

use crate::Runner;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use keeper_core::log::{Level, log};
use keeper_core::signal::Signals;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Exit code when the watch cannot be set up or breaks.
const EXIT_CANNOT_WATCH: u8 = crate::EXIT_SOURCE_INVALID;

/// What the inotify watch is on.
enum Watching {
    /// The source's directory: file events, filtered by name.
    SourceDir(WatchDescriptor),
    /// An ancestor, until the next path component towards the source's directory appears.
    Ancestor(WatchDescriptor),
}

struct Watcher<'a> {
    runner: &'a mut Runner,
    dir: PathBuf,
    name: OsString,
    inotify: Inotify,
    watching: Option<Watching>,
    signals: Signals,
}

/// Runs until SIGTERM/SIGINT (exit 0) or until the watch breaks.
pub(crate) fn run(runner: &mut Runner) -> ExitCode {
    let source = runner.from.clone();
    let Some(name) = source.file_name().map(ToOwned::to_owned) else {
        return fail(&source, "not a file name");
    };
    // Block the signals first so none is lost; watch before the first read so no write is missed.
    let signals = match Signals::block(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]) {
        Ok(s) => s,
        Err(e) => return fail(&source, &format!("cannot receive signals: {e}")),
    };
    let inotify = match Inotify::init() {
        Ok(i) => i,
        Err(e) => return fail(&source, &format!("cannot initialise inotify: {e}")),
    };
    let dir = absolute(keeper_core::paths::parent_dir(&source));
    let mut w = Watcher { runner, dir, name, inotify, watching: None, signals };
    if let Err(e) = w.arm() {
        return fail(&source, &e);
    }
    w.run()
}

fn fail(source: &Path, message: &str) -> ExitCode {
    log(Level::Error, crate::PROGRAM, format_args!("cannot watch {}: {message}", source.display()));
    ExitCode::from(EXIT_CANNOT_WATCH)
}

fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

impl Watcher<'_> {
    fn run(&mut self) -> ExitCode {
        log(Level::Info, crate::PROGRAM, format_args!("watching {}", self.runner.from.display()));
        self.runner.cycle(true);
        let debounce = self.runner.debounce;
        let mut due: Option<Instant> = None;
        loop {
            let timeout = keeper_core::watch::poll_timeout(due);
            let (signal, events) = {
                let mut fds = [
                    PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                    PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return fail(&self.runner.from, &format!("poll failed: {e}")),
                }
                let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                (ready(0), ready(1))
            };
            if signal {
                match self.signals.next() {
                    Some(Signal::SIGHUP) => {
                        log(Level::Info, crate::PROGRAM, format_args!("SIGHUP: full re-sync"));
                        self.runner.cycle(true);
                        due = None;
                    }
                    Some(s) => {
                        log(Level::Info, crate::PROGRAM, format_args!("received {}, stopping", s.as_str()));
                        return ExitCode::SUCCESS;
                    }
                    None => {}
                }
            }
            if events {
                match self.drain() {
                    Err(e) => return fail(&self.runner.from, &e),
                    Ok(false) => {}
                    Ok(true) if debounce.is_zero() => self.sync_until_quiet(),
                    Ok(true) => due = Some(Instant::now() + debounce),
                }
            }
            if due.is_some_and(|at| Instant::now() >= at) {
                due = None;
                self.sync_until_quiet();
            }
        }
    }

    /// Syncs, then once more for as long as relevant events arrived during the sync.
    fn sync_until_quiet(&mut self) {
        loop {
            self.runner.cycle(false);
            match self.drain() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    // Reported again by the next poll round, which then ends the watch.
                    log(Level::Warning, crate::PROGRAM, format_args!("{e}"));
                    return;
                }
            }
        }
    }

    /// Watches the source's directory, or its nearest existing ancestor.
    fn arm(&mut self) -> Result<(), String> {
        if let Some(Watching::SourceDir(wd) | Watching::Ancestor(wd)) = self.watching.take() {
            let _ = self.inotify.watches().remove(wd);
        }
        // A directory on the way down may be created between the failed watch below it and the
        // ancestor's watch: its IN_CREATE came before that watch existed, so look again after
        // adding it (bounded: a path flapping that fast is caught by the next event).
        for _ in 0..8 {
            match self.inotify.watches().add(&self.dir, keeper_core::watch::FILE_IN_DIR_EVENTS) {
                Ok(wd) => {
                    self.watching = Some(Watching::SourceDir(wd));
                    return Ok(());
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("cannot watch {}: {e}", self.dir.display()));
                }
                Err(_) => {}
            }
            let (wd, ancestor) = self.watch_nearest_ancestor()?;
            let below = self.dir.ancestors().take_while(|a| *a != ancestor).last().unwrap_or(&self.dir);
            if !below.exists() {
                log(
                    Level::Warning,
                    crate::PROGRAM,
                    format_args!(
                        "{} does not exist; watching {} until it does",
                        self.dir.display(),
                        ancestor.display()
                    ),
                );
                self.watching = Some(Watching::Ancestor(wd));
                return Ok(());
            }
            let _ = self.inotify.watches().remove(wd);
        }
        Err(format!("{} keeps appearing and vanishing; cannot watch it", self.dir.display()))
    }

    /// Watches the nearest existing ancestor of the source's directory for the way back down.
    fn watch_nearest_ancestor(&mut self) -> Result<(WatchDescriptor, PathBuf), String> {
        let dir_events = WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
            | WatchMask::ONLYDIR;
        for ancestor in self.dir.ancestors().skip(1) {
            match self.inotify.watches().add(ancestor, dir_events) {
                Ok(wd) => return Ok((wd, ancestor.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot watch {}: {e}", ancestor.display())),
            }
        }
        Err(format!("no existing directory above {}", self.dir.display()))
    }

    /// Drains queued events; `Ok(true)` when the source may have changed.
    fn drain(&mut self) -> Result<bool, String> {
        let mut buffer = [0u8; 4096];
        let mut relevant = false;
        let mut rearm = false;
        loop {
            let events = match self.inotify.read_events(&mut buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading inotify events failed: {e}")),
            };
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    relevant = true;
                    continue;
                }
                // Removing a watch (to re-arm) queues IN_IGNORED for it: events of a watch we
                // already replaced say nothing about the current one, and acting on them would
                // re-arm forever.
                let current = match &self.watching {
                    Some(Watching::SourceDir(wd) | Watching::Ancestor(wd)) => wd == &event.wd,
                    None => false,
                };
                if !current {
                    continue;
                }
                match &self.watching {
                    Some(Watching::SourceDir(_)) => {
                        if event.mask.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
                            log(
                                Level::Warning,
                                crate::PROGRAM,
                                format_args!(
                                    "{} was removed or moved; waiting for it to come back",
                                    self.dir.display()
                                ),
                            );
                            rearm = true;
                        } else if event.name == Some(self.name.as_os_str()) {
                            if event.mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                                log(
                                    Level::Warning,
                                    crate::PROGRAM,
                                    format_args!(
                                        "{} was removed; waiting for it to come back",
                                        self.runner.from.display()
                                    ),
                                );
                            } else {
                                relevant = true;
                            }
                        }
                    }
                    // Anything appearing or vanishing up there may be the way back to the source.
                    Some(Watching::Ancestor(_)) | None => rearm = true,
                }
            }
        }
        if rearm {
            self.arm()?;
            if matches!(self.watching, Some(Watching::SourceDir(_))) {
                log(Level::Info, crate::PROGRAM, format_args!("{} exists again", self.dir.display()));
                // The file may already be there (a directory moved into place with it).
                relevant |= self.runner.from.exists();
            }
        }
        Ok(relevant)
    }
}
