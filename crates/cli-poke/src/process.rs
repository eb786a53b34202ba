//! Runs a program in a process group of its own, with its output captured (bounded) and a time
//! limit that ends the whole group.

use crate::command::Invocation;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes kept of each of stdout and stderr; the rest is read and dropped.
pub(crate) const OUTPUT_CAP: usize = 64 * 1024;
/// After SIGTERM, how long the group has before SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(2);
/// After the program exits, how long processes it left behind may keep its output open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How often the program's exit is checked.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
    /// The time limit ended it (its group got SIGTERM, then SIGKILL).
    TimedOut,
}

/// A finished run.
#[derive(Debug)]
pub(crate) struct Finished {
    /// How it ended.
    pub(crate) ended: Ended,
    /// Its stdout, at most [`OUTPUT_CAP`] bytes.
    pub(crate) stdout: Vec<u8>,
    /// Its stderr, at most [`OUTPUT_CAP`] bytes.
    pub(crate) stderr: Vec<u8>,
}

impl Finished {
    /// stdout and stderr as text.
    pub(crate) fn output(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.stdout).into_owned();
        s.push('\n');
        s.push_str(&String::from_utf8_lossy(&self.stderr));
        s
    }
}

/// Starts `inv` (stdin from /dev/null, token variables removed from its environment) in a new
/// process group and waits up to `timeout`. Fails only when it cannot be started.
pub(crate) fn run(inv: &Invocation, timeout: Duration) -> io::Result<Finished> {
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    for name in Invocation::env_to_remove(std::env::vars_os()) {
        cmd.env_remove(name);
    }
    for (k, v) in &inv.set_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let group = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());

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
    match killpg(group, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            let level = keeper_core::log::Level::Warning;
            keeper_core::log::log(level, crate::PROGRAM, format_args!("cannot signal the CLI's process group: {e}"));
        }
    }
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
    use std::path::PathBuf;

    fn sh(script: &str) -> Invocation {
        Invocation { program: PathBuf::from("/bin/sh"), args: vec!["-c".into(), script.into()], set_env: vec![] }
    }

    #[test]
    fn captures_output_and_exit_code() {
        let f = run(&sh("echo out; echo err >&2; exit 3"), Duration::from_secs(10)).unwrap();
        assert_eq!(f.ended, Ended::Exited(3));
        assert_eq!(f.stdout, b"out\n");
        assert_eq!(f.stderr, b"err\n");
    }

    #[test]
    fn output_is_capped_and_stdin_is_empty() {
        let f = run(&sh("head -c 200000 /dev/zero; cat; echo done >&2"), Duration::from_secs(10)).unwrap();
        assert_eq!(f.ended, Ended::Exited(0));
        assert_eq!(f.stdout.len(), OUTPUT_CAP);
        assert_eq!(f.stderr, b"done\n");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let inv = Invocation { program: PathBuf::from("/nonexistent/claude"), args: vec![], set_env: vec![] };
        assert_eq!(run(&inv, Duration::from_secs(1)).unwrap_err().kind(), io::ErrorKind::NotFound);
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
        let f = run(&sh("sleep 300 & echo $!"), Duration::from_secs(10)).unwrap();
        assert_eq!(f.ended, Ended::Exited(0));
        let pid = String::from_utf8(f.stdout).unwrap();
        assert!(gone(pid.trim()), "the background sleep {pid} is still running");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let f = run(&sh("sleep 300 & echo $!; sleep 300"), Duration::from_millis(300)).unwrap();
        assert_eq!(f.ended, Ended::TimedOut);
        let pid = String::from_utf8(f.stdout).unwrap();
        assert!(gone(pid.trim()), "the grandchild {pid} is still running");
    }
}
