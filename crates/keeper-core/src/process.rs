//! Running a helper program with a secret on its stdin, its output captured, and a time limit
//! that kills its whole process group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How much of each output stream is kept; the rest is read and dropped so the child never
/// blocks on a full pipe.
pub const MAX_CAPTURE_BYTES: usize = 64 * 1024;

/// How long a process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// What a finished run left.
#[derive(Debug)]
pub struct Finished {
    /// Exit status (`None` when it had to be killed at the time limit).
    pub status: Option<ExitStatus>,
    /// Captured stdout (at most [`MAX_CAPTURE_BYTES`]); may hold secrets: redact before showing.
    pub stdout: Vec<u8>,
    /// Captured stderr (at most [`MAX_CAPTURE_BYTES`]); may hold secrets: redact before showing.
    pub stderr: Vec<u8>,
}

impl Finished {
    /// Whether it ran to the end and exited 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exit status 1", "killed by SIGKILL" or "timed out", for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.status {
            None => "timed out".to_owned(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(sig)) => Signal::try_from(sig)
                    .map_or_else(|_| format!("killed by signal {sig}"), |s| format!("killed by {s}")),
                (None, None) => "ended".to_owned(),
            },
        }
    }
}

/// Runs `cmd` in a process group of its own with `input` on its stdin (then closed), capturing
/// stdout and stderr. When `timeout` passes first, the whole group gets SIGTERM, then SIGKILL
/// after [`KILL_GRACE`], and the result's `status` is `None`. Whatever is left of the group when
/// its leader has exited is killed too.
///
/// Fails only when the program cannot be started (not found, not executable).
pub fn run(mut cmd: Command, input: &[u8], timeout: Duration) -> io::Result<Finished> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn()?;
    let pgid = Pid::from_raw(i32::try_from(child.id()).map_err(io::Error::other)?);
    let stdout = child.stdout.take().map(capture);
    let stderr = child.stderr.take().map(capture);
    if let Some(mut stdin) = child.stdin.take() {
        // A child that exits without reading its input is not our failure: its status says more.
        let _ = stdin.write_all(input);
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = if let Ok(status) = rx.recv_timeout(timeout) {
        Some(status?)
    } else {
        let _ = killpg(pgid, Signal::SIGTERM);
        if rx.recv_timeout(KILL_GRACE).is_err() {
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = rx.recv();
        }
        None
    };
    // What is left of the group once its leader is gone would hold our pipes open (and the reads
    // below with them): a helper program's stragglers are not wanted.
    let _ = killpg(pgid, Signal::SIGKILL);
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(Finished { status, stdout: join(stdout), stderr: join(stderr) })
}

fn capture(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_CAPTURE_BYTES.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_reaches_stdin_and_output_is_captured() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "read -r line; echo \"got $line\"; echo err >&2; exit 3"]);
        let done = run(cmd, b"secret-value\n", Duration::from_secs(10)).unwrap();
        assert_eq!(done.stdout, b"got secret-value\n");
        assert_eq!(done.stderr, b"err\n");
        assert_eq!(done.describe(), "exit status 3");
        assert!(!done.success());
    }

    #[test]
    fn the_time_limit_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let mut cmd = Command::new("sh");
        // The grandchild ignores SIGTERM, so only the group-wide SIGKILL ends it.
        let script = format!("sh -c 'trap \"\" TERM; echo $$ > {}; sleep 60' & wait", pid_file.display());
        cmd.args(["-c", &script]);
        let done = run(cmd, b"", Duration::from_millis(300)).unwrap();
        assert!(done.status.is_none());
        assert_eq!(done.describe(), "timed out");
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        // Reaped by init or still a zombie for a moment: either way no longer running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z "), "grandchild {pid} still running: {state}");
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let err = run(Command::new("/nonexistent/program"), b"", Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
