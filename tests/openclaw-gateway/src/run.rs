//! Running an OpenClaw command to completion within a limit, and keeping tokens out of what is
//! shown.

use keeper_anthropic_mock::fingerprint;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Far above the 2–50 s an OpenClaw command takes on 2 busy cores: only a hang trips it.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// What a finished command printed, tokens already replaced by fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output, [redacted](redact).
    pub stdout: String,
    /// Standard error, [redacted](redact).
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Output {
    /// Whether it exited 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Both streams, stdout first, for messages and `contains` checks.
    #[must_use]
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` (stdin: `input`, else `/dev/null`) in its own process group to completion; after
/// `limit` the whole group is killed and this panics (a hang is a failed test, not a result).
#[must_use]
pub fn run(mut cmd: Command, input: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: OpenClaw may leave helpers behind, and a timeout must end them too.
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        // A command that exits without reading its stdin is judged by its output, not by EPIPE.
        let _ = stdin.write_all(input);
    }
    let reader = |mut stream: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout was piped")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr was piped")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if start.elapsed() > limit {
            crate::gateway::kill_group(child.id(), nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!("{} did not finish within {limit:?}", describe(&cmd));
        }
        thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Output { code: status.code(), stdout: redact(&stdout), stderr: redact(&stderr), took }
}

/// The program and its arguments, without the environment (which may hold a token).
pub(crate) fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    redact(&words.join(" "))
}

/// `text` with every Anthropic token (`sk-ant-…`: access, refresh or API key) replaced by
/// `<token FINGERPRINT>`, so that output can be printed and kept in failure messages.
#[must_use]
pub fn redact(text: &str) -> String {
    const PREFIX: &str = "sk-ant-";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let len = tail
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .map_or(tail.len(), |(i, _)| i);
        out.push_str("<token ");
        out.push_str(&fingerprint(&tail[..len]));
        out.push('>');
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The last `lines` lines of `text`, for failure messages.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_replaces_every_token_by_its_fingerprint() {
        let token = format!("sk-ant-oat01-{}", "a1_-".repeat(24));
        let text = format!("token {token}, again:{token}\nend");
        let fp = fingerprint(&token);
        assert_eq!(redact(&text), format!("token <token {fp}>, again:<token {fp}>\nend"));
        assert_eq!(redact("no token here"), "no token here");
        assert_eq!(redact("sk-ant-"), format!("<token {}>", fingerprint("sk-ant-")));
    }

    #[test]
    fn run_collects_both_streams_and_the_code() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo err >&2; exit 3"]);
        let out = run(cmd, Some(b"in"), Duration::from_secs(30));
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (Some(3), "in", "err\n"));
    }

    #[test]
    #[should_panic(expected = "did not finish")]
    fn run_kills_a_hang() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let _ = run(cmd, None, Duration::from_millis(200));
    }
}
