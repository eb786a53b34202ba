//! `--wait-until-within`: woken by inotify, by the wall-clock timer, and stopped by signals.

mod common;

use common::{HOUR, MINUTE, SECOND, access_token, claude_json, now_ms, std_cmd, stub_json, write};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bound on any wait that should end.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `token-expiry --wait-until-within`, its stderr read line by line.
struct Waiting {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    started: Instant,
}

impl Waiting {
    fn start(file: &Path, window: &str) -> Self {
        let started = Instant::now();
        let mut child = std_cmd()
            .args(["--wait-until-within", window])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, log: Vec::new(), started }
    }

    /// Waits for a stderr line containing `needle`.
    fn expect_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no line containing {needle:?} ({e}); log so far: {:#?}", self.log),
            }
        }
    }

    /// Fails if the process has already exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.drain();
            panic!("exited early with {status:?}; log: {:#?}", self.log);
        }
    }

    /// Waits for the exit (bounded), checks stdout stayed empty, and returns the status.
    fn finish(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.drain();
                panic!("still waiting after {TIMEOUT:?}; log: {:#?}", self.log);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stdout = String::new();
        self.child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        self.drain();
        assert_eq!(stdout, "", "wait mode prints nothing on stdout");
        status
    }

    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.log.push(line);
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), signal).unwrap();
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn waiting_outside_the_window(dir: &Path) -> (std::path::PathBuf, Waiting) {
    let file = write(dir, ".credentials.json", claude_json(&access_token(), now_ms() + HOUR));
    let mut w = Waiting::start(&file, "5m");
    let line = w.expect_line("waiting until");
    assert!(line.contains("(5m before expiry at "), "{line}");
    w.assert_running();
    (file, w)
}

#[test]
fn a_rewrite_in_place_into_the_window_releases_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut w) = waiting_outside_the_window(dir.path());
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    std::fs::write(&file, claude_json(&access_token(), now_ms() + 4 * MINUTE)).unwrap();
    assert_eq!(inode, std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap()), "written in place");
    let written = Instant::now();
    assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
    assert!(written.elapsed() < Duration::from_secs(5), "woken by inotify, not by a timeout");
    assert!(w.log.last().unwrap().contains("within 5m, done"), "{:#?}", w.log);
}

#[test]
fn a_temp_file_renamed_over_it_releases_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut w) = waiting_outside_the_window(dir.path());
    let tmp = write(dir.path(), ".credentials.json.tmp.4f3a9c1e", claude_json(&access_token(), now_ms() + 4 * MINUTE));
    w.assert_running(); // the temp file itself is not our file
    std::fs::rename(&tmp, &file).unwrap();
    assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
}

#[test]
fn the_timer_fires_when_the_window_opens() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.json", claude_json(&access_token(), now_ms() + 5 * MINUTE + 2 * SECOND));
    let mut w = Waiting::start(&file, "5m");
    w.expect_line("waiting until");
    let status = w.finish();
    let elapsed = w.started.elapsed();
    assert_eq!(status.code(), Some(0), "{:#?}", w.log);
    assert!(elapsed >= Duration::from_secs(1), "exited after {elapsed:?}, before the window opened");
    assert!(elapsed < Duration::from_secs(10), "exited after {elapsed:?}");
}

#[test]
fn a_half_written_file_is_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut w) = waiting_outside_the_window(dir.path());
    let full = claude_json(&access_token(), now_ms() + 4 * MINUTE);
    std::fs::write(&file, &full[..full.len() / 3]).unwrap();
    let line = w.expect_line("truncated JSON");
    assert!(line.contains("warning") && line.contains("still waiting"), "{line}");
    w.assert_running();
    std::fs::write(&file, "").unwrap();
    w.expect_line("empty input");
    w.assert_running();
    std::fs::write(&file, &full).unwrap();
    assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
}

#[test]
fn a_logged_out_stub_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut w) = waiting_outside_the_window(dir.path());
    std::fs::write(&file, stub_json()).unwrap();
    assert_eq!(w.finish().code(), Some(3), "{:#?}", w.log);
    assert!(w.log.iter().any(|l| l.contains("claude auth login")), "{:#?}", w.log);

    let mut w = Waiting::start(&file, "5m");
    assert_eq!(w.finish().code(), Some(3), "a stub at start exits at once");
}

#[test]
fn sigterm_and_sigint_kill_it_by_the_same_signal() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let (_file, mut w) = waiting_outside_the_window(dir.path());
        w.signal(signal);
        let status = w.finish();
        assert_eq!(status.signal(), Some(signal as i32), "{status:?} {:#?}", w.log);
        assert_eq!(status.code(), None);
        assert!(w.log.iter().any(|l| l.contains(&format!("received {}", signal.as_str()))), "{:#?}", w.log);
    }
}

#[test]
fn a_file_missing_at_start_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".credentials.json");
    let mut w = Waiting::start(&file, "5m");
    let line = w.expect_line("no such file");
    assert!(line.contains("still waiting"), "{line}");
    w.assert_running();
    std::fs::write(&file, claude_json(&access_token(), now_ms() + 4 * MINUTE)).unwrap();
    assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
}

#[test]
fn a_file_deleted_and_recreated_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut w) = waiting_outside_the_window(dir.path());
    std::fs::remove_file(&file).unwrap();
    w.expect_line("no such file");
    w.assert_running();
    std::fs::write(&file, claude_json(&access_token(), now_ms() + MINUTE)).unwrap();
    assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
}

#[test]
fn writes_that_leave_it_outside_the_window_keep_it_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut w) = waiting_outside_the_window(dir.path());
    write(dir.path(), "unrelated.json", "{}");
    // An MCP-only rewrite, or a refresh to a later expiry: re-read, re-armed, still waiting.
    std::fs::write(&file, claude_json(&access_token(), now_ms() + 2 * HOUR)).unwrap();
    let line = w.expect_line("changed, re-read: waiting until");
    assert!(line.contains("(5m before expiry at "), "{line}");
    assert!(!w.log.iter().any(|l| l.contains("unrelated")), "{:#?}", w.log);
    w.assert_running();
    // ... and a later move into the window still releases it.
    std::fs::write(&file, claude_json(&access_token(), now_ms() + 5 * MINUTE - SECOND)).unwrap();
    assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
}

#[test]
fn already_inside_the_window_or_expired_exits_0_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for expires in [now_ms() + 4 * MINUTE, now_ms() - HOUR] {
        let file = write(dir.path(), "c.json", claude_json(&access_token(), expires));
        let mut w = Waiting::start(&file, "5m");
        assert_eq!(w.finish().code(), Some(0), "{:#?}", w.log);
        assert!(w.started.elapsed() < Duration::from_secs(5));
        assert!(w.log.iter().any(|l| l.contains("within 5m, done")), "{:#?}", w.log);
    }
}

#[test]
fn no_expiry_exits_5_and_an_unwatchable_directory_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let env = write(dir.path(), ".env", format!("ANTHROPIC_OAUTH_TOKEN={}\n", access_token()));
    let mut w = Waiting::start(&env, "5m");
    assert_eq!(w.finish().code(), Some(5), "{:#?}", w.log);
    assert!(w.log.iter().any(|l| l.contains("nothing to wait for")), "{:#?}", w.log);

    let mut w = Waiting::start(&dir.path().join("no-such-dir/.credentials.json"), "5m");
    assert_eq!(w.finish().code(), Some(4), "{:#?}", w.log);
    assert!(w.log.iter().any(|l| l.contains("cannot watch directory")), "{:#?}", w.log);
}
