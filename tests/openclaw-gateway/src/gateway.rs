//! A running `openclaw gateway run`, and agent turns sent through it.

use crate::home::{GATEWAY_TOKEN, OpenClawHome};
use crate::run::{self, Output, describe, redact, tail};
use keeper_anthropic_mock::Request;
use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a start may take before it counts as a hang: 2026.9.6 needs 8–40 s on 2 cores, and
/// over 100 s when other builds share them.
pub const READY_LIMIT: Duration = Duration::from_secs(300);
/// How long a stopping gateway gets after SIGTERM before its group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// What a turn may take: the gateway's own limit (`--timeout`), and the wall-clock limit on the
/// `openclaw agent` process, a little later.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(300);
/// The line both generations log once the gateway accepts connections.
const READY_LINE: &str = "http server listening";
/// A port nothing listens on: `openclaw agent`'s proxy, so that it cannot reach the mock itself.
const DEAD_PROXY: &str = "http://127.0.0.1:9";

/// How to start a [`Gateway`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOptions {
    /// `true`: [`GATEWAY_TOKEN`] is in `openclaw.json` (`gateway.auth.token`), where local CLI
    /// commands (`paste-token`) find it and can tell the gateway to reload credentials.
    /// `false`: it is removed from the config and given to the gateway as
    /// `OPENCLAW_GATEWAY_TOKEN` only, so a command without that variable cannot reach it.
    pub token_in_config: bool,
    /// More variables for the gateway process (e.g. `ANTHROPIC_OAUTH_TOKEN`).
    pub extra_env: Vec<(String, String)>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self { token_in_config: true, extra_env: Vec::new() }
    }
}

/// A running `openclaw gateway run --bind loopback --auth token` in its own process group, its
/// stdout and stderr appended to [`OpenClawHome::gateway_log_path`]. Dropping it kills the group.
#[derive(Debug)]
pub struct Gateway<'a> {
    home: &'a OpenClawHome<'a>,
    options: GatewayOptions,
    child: Option<Child>,
    ready_after: Duration,
    stopped_after: Duration,
}

impl<'a> Gateway<'a> {
    /// Starts the gateway and waits (up to [`READY_LIMIT`]) until it logs that it listens;
    /// panics, with the log's tail, when it exits or hangs first.
    #[must_use]
    pub fn start(home: &'a OpenClawHome<'a>, options: GatewayOptions) -> Self {
        let mut gateway =
            Self { home, options, child: None, ready_after: Duration::ZERO, stopped_after: Duration::ZERO };
        gateway.spawn_and_wait();
        gateway
    }

    /// How long the last start (or [`Gateway::restart`]) took until the gateway listened.
    #[must_use]
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// How long the last [`Gateway::stop`] took until the whole process group was gone.
    #[must_use]
    pub fn stopped_after(&self) -> Duration {
        self.stopped_after
    }

    /// The gateway's PID (also its process group): the process renames itself
    /// (`openclaw-gateway` or `openclaw`), so this is how to find it.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the gateway is running").id()
    }

    /// The home it runs in.
    #[must_use]
    pub fn home(&self) -> &'a OpenClawHome<'a> {
        self.home
    }

    /// The options it was (last) started with.
    #[must_use]
    pub fn options(&self) -> &GatewayOptions {
        &self.options
    }

    /// Sends `signal` to the gateway process (not its group).
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("a PID fits in i32"));
        signal::kill(pid, signal).unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
    }

    /// `kill -USR1`: the gateway restarts in-process; returns the time until it listens again.
    /// Panics when the process exits instead (or does not listen within [`READY_LIMIT`]).
    pub fn usr1_restart(&mut self) -> Duration {
        let offset = self.log_len();
        let start = Instant::now();
        self.signal(Signal::SIGUSR1);
        self.wait_ready(offset, start);
        start.elapsed()
    }

    /// Stops the gateway ([`Gateway::stop`]), waits until its whole process group is gone (a
    /// second gateway on the same state directory fails while the first still shuts down), and
    /// starts it again with the same options; returns the time from the SIGTERM until it listens
    /// again ([`Gateway::stopped_after`] and [`Gateway::ready_after`] split it).
    pub fn restart(&mut self) -> Duration {
        self.stop();
        self.spawn_and_wait();
        self.stopped_after + self.ready_after
    }

    /// [`Gateway::restart`] with new options.
    pub fn restart_with(&mut self, options: GatewayOptions) -> Duration {
        self.stop();
        self.options = options;
        self.spawn_and_wait();
        self.stopped_after + self.ready_after
    }

    /// SIGTERM to the group, SIGKILL after [`STOP_GRACE`]; returns once every process of the
    /// group is gone. Does nothing when it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let start = Instant::now();
        let pgid = child.id();
        kill_group(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(50));
        }
        kill_group(pgid, Signal::SIGKILL);
        let _ = child.wait();
        wait_group_gone(pgid);
        self.stopped_after = start.elapsed();
    }

    /// Sends one agent turn through the gateway: `openclaw agent --agent AGENT -m hi --json
    /// --timeout …` with `OPENCLAW_GATEWAY_TOKEN`. The `/v1/messages` requests the mock recorded
    /// meanwhile are the turn's (turns are sequential; do not [`clear`](keeper_anthropic_mock::Mock::clear)
    /// the mock during one).
    ///
    /// The `openclaw agent` process gets a dead proxy instead of the mock: 2026.6.1 falls back to
    /// an embedded local run when the gateway is unreachable or times out (2026.9.6 does not, and
    /// neither has a flag to forbid it), and such a run must never count as the gateway's. A
    /// fallback announced in the output panics.
    #[must_use]
    pub fn turn(&self, agent: &str) -> Turn {
        assert!(self.child.is_some(), "turn through a stopped gateway");
        let mock = self.home.mock();
        let before = mock.messages().len();
        let secs = TURN_TIMEOUT.as_secs().to_string();
        let mut cmd = self.home.bare(&["agent", "--agent", agent, "-m", "hi", "--json", "--timeout", &secs]);
        cmd.env("OPENCLAW_GATEWAY_TOKEN", GATEWAY_TOKEN);
        for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            cmd.env(var, DEAD_PROXY);
        }
        let out = run::run(cmd, None, TURN_TIMEOUT + Duration::from_secs(30));
        let requests = mock.messages().split_off(before);
        let json: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        let meta = json.pointer("/result/meta").unwrap_or(&Value::Null);
        assert!(
            !out.stderr.contains("EMBEDDED FALLBACK")
                && meta["transport"] != "embedded"
                && meta.get("fallbackFrom").is_none(),
            "the turn ran embedded in the CLI, not in the gateway: {}",
            tail(&out.text(), 20)
        );
        let reply: Vec<&str> = json
            .pointer("/result/payloads")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default();
        let ok = out.success() && json["status"] == "ok";
        let output = if ok { reply.join("\n") } else { error_lines(&out) };
        Turn { ok, output, took: out.took, requests }
    }

    fn spawn_and_wait(&mut self) {
        self.home.set_gateway_token_in_config(self.options.token_in_config);
        let log_path = self.home.gateway_log_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log_path.display()));
        let err = log.try_clone().expect("cloning the log handle");
        let mut cmd = self.home.openclaw(&["gateway", "run", "--bind", "loopback", "--auth", "token"]);
        if !self.options.token_in_config {
            cmd.env("OPENCLAW_GATEWAY_TOKEN", GATEWAY_TOKEN);
        }
        cmd.envs(self.options.extra_env.iter().map(|(k, v)| (k, v)));
        // Its own group, so that stopping it ends its helpers too.
        cmd.stdin(Stdio::null()).stdout(log).stderr(err).process_group(0);
        let offset = self.log_len();
        let start = Instant::now();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", describe(&cmd)));
        self.child = Some(child);
        self.wait_ready(offset, start);
        self.ready_after = start.elapsed();
    }

    /// Waits for [`READY_LINE`] after byte `offset` of the log.
    fn wait_ready(&mut self, offset: u64, start: Instant) {
        loop {
            if self.log_since(offset).contains(READY_LINE) {
                return;
            }
            let child = self.child.as_mut().expect("the gateway was started");
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.log_since(offset);
                self.child = None;
                panic!("the gateway exited ({status}) before it listened; its log ends:\n{}", tail(&log, 40));
            }
            if start.elapsed() > READY_LIMIT {
                let log = self.log_since(offset);
                self.stop();
                panic!("the gateway did not listen within {READY_LIMIT:?}; its log ends:\n{}", tail(&log, 40));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The gateway's log (redacted), from the first start on.
    #[must_use]
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let bytes = std::fs::read(self.home.gateway_log_path()).unwrap_or_default();
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        redact(&String::from_utf8_lossy(&bytes[from..]))
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.home.gateway_log_path()).map_or(0, |m| m.len())
    }
}

impl Drop for Gateway<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            wait_group_gone(child.id());
        }
    }
}

/// One agent turn (see [`Gateway::turn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// `openclaw agent` exited 0 with `"status": "ok"`.
    pub ok: bool,
    /// The reply when ok, else the error lines; tokens redacted.
    pub output: String,
    /// The whole `openclaw agent` run, CLI start-up included.
    pub took: Duration,
    /// The `/v1/messages` requests the mock recorded during the turn, in arrival order.
    pub requests: Vec<Request>,
}

impl Turn {
    /// The fingerprint each request carried, `-` for none.
    #[must_use]
    pub fn fingerprints(&self) -> Vec<String> {
        self.requests.iter().map(|r| r.token_fingerprint.clone().unwrap_or_else(|| "-".to_owned())).collect()
    }

    /// The fingerprint of the first request, if there was one.
    #[must_use]
    pub fn first_fingerprint(&self) -> Option<&str> {
        self.requests.first()?.token_fingerprint.as_deref()
    }

    /// One line for logs and messages: ok, time, fingerprints, output.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} in {:.1}s, requests {:?}: {}",
            if self.ok { "ok" } else { "FAILED" },
            self.took.as_secs_f64(),
            self.fingerprints(),
            self.output.lines().next().unwrap_or("")
        )
    }
}

/// The lines of a failed `openclaw agent` that say why (the banner and blank lines dropped).
fn error_lines(out: &Output) -> String {
    // The banner is `OpenClaw VERSION (COMMIT) — TAGLINE`, and the tagline varies.
    let banner = |l: &str| l.starts_with("OpenClaw 20") && l.contains(" — ");
    let text = out.text();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !banner(l)).collect();
    tail(&lines.join("\n"), 10)
}

/// `kill(-pgid, signal)`, ignoring a group that is already gone.
pub(crate) fn kill_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = signal::killpg(Pid::from_raw(pgid), signal);
    }
}

/// Waits until no process is left in group `pgid` (stragglers get SIGKILL after the grace).
fn wait_group_gone(pgid: u32) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    let start = Instant::now();
    while signal::killpg(Pid::from_raw(raw), None) != Err(Errno::ESRCH) {
        if start.elapsed() > STOP_GRACE {
            let _ = signal::killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
        if start.elapsed() > 2 * STOP_GRACE {
            eprintln!("keeper-gateway-test: process group {pgid} still has members after {:?}", 2 * STOP_GRACE);
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
