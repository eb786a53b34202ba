//! Running a helper program (the Claude CLI, `openclaw`, `docker`, a hook) in a process group of
//! its own, with a secret on its stdin if needed, its output captured (bounded), and a time limit
//! that ends the whole group.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes kept of each of stdout and stderr; the rest is read and dropped, so the program never
/// blocks on a full pipe.
pub const OUTPUT_CAP: usize = 64 * 1024;
/// After SIGTERM, how long the group has before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// After the program exits, how long processes it left behind may keep its output open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often the program's exit is checked.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
    /// The time limit ended it (its group got SIGTERM, then SIGKILL).
    TimedOut,
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub ended: Ended,
    /// Its stdout, at most [`OUTPUT_CAP`] bytes; may hold secrets: redact before showing.
    pub stdout: Vec<u8>,
    /// Its stderr, at most [`OUTPUT_CAP`] bytes; may hold secrets: redact before showing.
    pub stderr: Vec<u8>,
}

impl Finished {
    /// Whether it exited 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// "exited with status 1", "was killed by signal 9" or "timed out", for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.ended {
            Ended::Exited(0) => "exited successfully".to_owned(),
            Ended::Exited(code) => format!("exited with status {code}"),
            Ended::Signalled(sig) => format!("was killed by signal {sig}"),
            Ended::TimedOut => "timed out".to_owned(),
        }
    }

    /// stdout and stderr as text (unredacted).
    #[must_use]
    pub fn output(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.stdout).into_owned();
        s.push('\n');
        s.push_str(&String::from_utf8_lossy(&self.stderr));
        s
    }
}

/// Starts `cmd` in a new process group, with `input` on its stdin (then closed) or stdin from
/// /dev/null, and waits up to `timeout`; then SIGTERM to the group, SIGKILL after
/// [`KILL_GRACE`]. Processes it leaves behind holding its output open are killed after a short
/// grace. Fails only when the program cannot be started (not found, not executable).
pub fn run(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> io::Result<Finished> {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let group = Pid::from_raw(i32::try_from(child.id()).map_err(io::Error::other)?);
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // A program that exits without reading its input is not our failure: its status says more.
        let _ = stdin.write_all(input);
    }

    let deadline = Instant::now() + timeout;
    let ended = loop {
        if let Some(status) = child.try_wait()? {
            break status.code().map_or_else(|| Ended::Signalled(status.signal().unwrap_or(0)), Ended::Exited);
        }
        let now = Instant::now();
        if now >= deadline {
            signal_group(group, Signal::SIGTERM);
            let grace_end = Instant::now() + KILL_GRACE;
            while child.try_wait()?.is_none() && Instant::now() < grace_end {
                std::thread::sleep(POLL_EVERY);
            }
            // Whatever is left of the group, the program included, is killed for good.
            signal_group(group, Signal::SIGKILL);
            child.wait()?;
            break Ended::TimedOut;
        }
        std::thread::sleep(POLL_EVERY.min(deadline - now));
    };

    // Processes the program left behind in its group may still hold its stdout or stderr open;
    // wait a little for the output to end, then end them.
    let drain_end = Instant::now() + DRAIN_GRACE;
    let mut stdout_bytes = stdout.recv_timeout(drain_end.saturating_duration_since(Instant::now())).ok();
    let mut stderr_bytes = stderr.recv_timeout(drain_end.saturating_duration_since(Instant::now())).ok();
    if stdout_bytes.is_none() || stderr_bytes.is_none() {
        signal_group(group, Signal::SIGKILL);
        stdout_bytes = stdout_bytes.or_else(|| stdout.recv_timeout(KILL_GRACE).ok());
        stderr_bytes = stderr_bytes.or_else(|| stderr.recv_timeout(KILL_GRACE).ok());
    }
    Ok(Finished { ended, stdout: stdout_bytes.unwrap_or_default(), stderr: stderr_bytes.unwrap_or_default() })
}

fn signal_group(group: Pid, signal: Signal) {
    // ESRCH: the group is already gone. Anything else cannot happen for our own child's group.
    let _ = killpg(group, signal).or_else(|e| if e == Errno::ESRCH { Ok(()) } else { Err(e) });
}

/// Reads a pipe to its end in a thread, keeping the first [`OUTPUT_CAP`] bytes.
fn collect(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut pipe) = pipe {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = OUTPUT_CAP.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn captures_output_and_exit_code() {
        let f = run(sh("echo out; echo err >&2; exit 3"), None, Duration::from_secs(10)).unwrap();
        assert_eq!(f.ended, Ended::Exited(3));
        assert_eq!((f.stdout.as_slice(), f.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
        assert_eq!(f.describe(), "exited with status 3");
    }

    #[test]
    fn input_reaches_stdin_and_then_it_is_closed() {
        let f =
            run(sh("read -r line; echo \"got $line\"; cat"), Some(b"secret-value\n"), Duration::from_secs(10)).unwrap();
        assert!(f.success());
        assert_eq!(f.stdout, b"got secret-value\n");
    }

    #[test]
    fn output_is_capped_and_stdin_is_empty_without_input() {
        let f = run(sh("head -c 200000 /dev/zero; cat; echo done >&2"), None, Duration::from_secs(10)).unwrap();
        assert_eq!(f.ended, Ended::Exited(0));
        assert_eq!(f.stdout.len(), OUTPUT_CAP);
        assert_eq!(f.stderr, b"done\n");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run(Command::new("/nonexistent/claude"), None, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// Whether a process is gone (or a zombie nobody reaped yet), waiting up to 5 s for a
    /// process that was just sent SIGKILL to finish dying.
    fn gone(pid: &str) -> bool {
        let dead = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        };
        let end = Instant::now() + Duration::from_secs(5);
        while !dead() {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn a_leftover_holding_the_output_open_is_ended() {
        let f = run(sh("sleep 300 & echo $!"), None, Duration::from_secs(10)).unwrap();
        assert_eq!(f.ended, Ended::Exited(0));
        let pid = String::from_utf8(f.stdout).unwrap();
        assert!(gone(pid.trim()), "the background sleep {pid} is still running");
    }

    #[test]
    fn timeout_kills_the_whole_group_even_a_grandchild_ignoring_sigterm() {
        let f = run(sh("sh -c 'trap \"\" TERM; sleep 300' & echo $!; sleep 300"), None, Duration::from_millis(300))
            .unwrap();
        assert_eq!(f.ended, Ended::TimedOut);
        assert_eq!(f.describe(), "timed out");
        let pid = String::from_utf8(f.stdout).unwrap();
        assert!(gone(pid.trim()), "the grandchild {pid} is still running");
    }
}
