//! The machine the user-manager tests run on: a temporary HOME with a JSON-era `~/.openclaw` (two
//! agents), the `claude` stand-in at `~/.local/bin/claude` with its credentials, a stand-in
//! `openclaw-gateway.service` (a shell script that sleeps with the environment its drop-in gives
//! it), and a private user manager for it whose service output goes to files (there is no journal).
//!
//! What each test does differently (the install itself, the gateway's stop delay, where the
//! test-only drop-ins go) stays with the test, as parameters here.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::systemd::{self, UserManager};
use crate::{bin_dir, fingerprint, write_file};

/// The gateway's user unit.
pub const GATEWAY: &str = "openclaw-gateway.service";

/// The services of the shipped user set: each gets the test-only output drop-in.
pub const KEEPER_SERVICES: [&str; 5] = [
    "openclaw-keeper-refresh.service",
    "openclaw-keeper-refresh-direct.service",
    "openclaw-keeper-sync.service",
    "openclaw-keeper-sync-once.service",
    "openclaw-keeper-notify@.service",
];

/// Where the test-only drop-ins (service output to files, unsupported sandboxing off) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDropins {
    /// Beside the units, in `~/.config/systemd/user` (nothing else writes there).
    UnitDir,
    /// In the manager's runtime `systemd/user.control/`, outside what setup.sh writes.
    RuntimeControl,
}

/// The machine's paths, all under one temporary root.
#[derive(Debug)]
pub struct Machine {
    /// The user's HOME.
    pub home: PathBuf,
    /// The manager's runtime directory and log files, and scratch space.
    pub work: PathBuf,
    /// The services' output, one file per service.
    pub logs: PathBuf,
    /// The Claude CLI's credentials file.
    pub creds: PathBuf,
    /// `~/.openclaw`.
    pub openclaw: PathBuf,
    /// The two agents' `auth-profiles.json`.
    pub profiles: [PathBuf; 2],
    /// OpenClaw's dotenv file, `~/.openclaw-env`.
    pub openclaw_env: PathBuf,
    /// `~/.config/systemd/user`.
    pub unit_dir: PathBuf,
    /// The gateway stand-in's unit file.
    pub gateway_unit: PathBuf,
    /// The gateway's drop-in with the token.
    pub dropin: PathBuf,
    /// The REAUTH flag file.
    pub flag: PathBuf,
}

impl Machine {
    /// The machine's paths under `root` (nothing is created).
    #[must_use]
    pub fn new(root: &Path) -> Self {
        let home = root.join("home");
        let openclaw = home.join(".openclaw");
        let unit_dir = home.join(".config/systemd/user");
        Self {
            creds: home.join(".claude/.credentials.json"),
            profiles: ["main", "ops"].map(|a| openclaw.join(format!("agents/{a}/agent/auth-profiles.json"))),
            openclaw_env: home.join(".openclaw-env"),
            gateway_unit: unit_dir.join(GATEWAY),
            dropin: unit_dir.join(format!("{GATEWAY}.d/anthropic.conf")),
            flag: openclaw.join("REAUTH_NEEDED"),
            work: root.join("work"),
            logs: root.join("logs"),
            unit_dir,
            openclaw,
            home,
        }
    }

    /// A new machine in a directory services can see, or None when no user manager can run
    /// here (the test is skipped, or fails when systemd is required).
    #[must_use]
    pub fn create(prefix: &str) -> Option<(tempfile::TempDir, Self)> {
        if let Some(why) = systemd::user_manager_unavailable() {
            systemd::skip(&why);
            return None;
        }
        let root = systemd::service_visible_tempdir(prefix);
        let machine = Self::new(root.path());
        Some((root, machine))
    }

    /// Builds the machine: a JSON-era OpenClaw with two agents, the CLI where its native
    /// installer puts it, the gateway unit (which takes `gateway_stop_seconds` to shut down, as a
    /// gateway finishing its requests does) and the manager's output settings. The credentials
    /// are the caller's ([`Machine::write_creds`]).
    ///
    /// # Panics
    /// On I/O errors.
    pub fn build(&self, gateway_stop_seconds: u32) {
        fs::create_dir_all(&self.work).unwrap();
        fs::create_dir_all(&self.logs).unwrap();
        write_file(
            &self.openclaw.join("openclaw.json"),
            r#"{"meta":{"lastTouchedVersion":"2026.5.20"},"gateway":{"port":18789}}"#,
        );
        for profile in &self.profiles {
            write_file(profile, r#"{"version":1,"profiles":{}}"#);
        }
        write_file(&self.openclaw_env, "# OpenClaw's environment (the second seed)\n");
        fs::create_dir_all(self.creds.parent().unwrap()).unwrap();
        // The Claude CLI where its native installer puts it (setup detects it there).
        let cli = self.home.join(".local/bin/claude");
        fs::create_dir_all(cli.parent().unwrap()).unwrap();
        fs::copy(bin_dir().join("claude"), &cli).unwrap();
        fs::set_permissions(&cli, fs::Permissions::from_mode(0o755)).unwrap();
        // The gateway stand-in: a script that sleeps, holding the environment it was started with.
        // SIGUSR1 is what OpenClaw 2026.6.x takes as an in-process restart (docs/UPSTREAM.md): the
        // process stays, and each one is counted in gateway/usr1.log.
        let script = self.home.join("gateway/openclaw-gateway.sh");
        let usr1 = self.home.join("gateway/usr1.log");
        let body = format!(
            "trap 'echo usr1 >> {}' USR1\ntrap 'sleep {gateway_stop_seconds}; exit 0' TERM\n\
             while :; do sleep infinity & wait $!; done\n",
            usr1.display()
        );
        write_file(&script, &format!("#!/bin/sh\n# OpenClaw gateway stand-in\n{body}"));
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        write_file(
            &self.gateway_unit,
            &format!(
                "[Unit]\nDescription=OpenClaw gateway (test stand-in)\n\n[Service]\nExecStart={}\n\n\
                 [Install]\nWantedBy=default.target\n",
                script.display()
            ),
        );
        // No journal: unit output goes to the manager's log files.
        write_file(
            &self.home.join(".config/systemd/user.conf"),
            "[Manager]\nDefaultStandardOutput=inherit\nDefaultStandardError=inherit\n",
        );
    }

    /// Writes the CLI's credentials the way 2.1.197 does: a temp file (0600) renamed over the file.
    ///
    /// # Panics
    /// On I/O errors.
    pub fn write_creds(&self, access: &str, refresh: &str, expires_ms: i64) {
        let doc = serde_json::json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
            "expiresAt": expires_ms, "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}});
        let tmp = self.creds.with_extension("json.tmp.0a1b2c3d");
        fs::write(&tmp, doc.to_string()).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
        fs::rename(&tmp, &self.creds).unwrap();
    }

    /// (access token, expiresAt) in the credentials file, if it is readable.
    #[must_use]
    pub fn current_creds(&self) -> Option<(String, i64)> {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&self.creds).ok()?).ok()?;
        let o = &v["claudeAiOauth"];
        Some((o["accessToken"].as_str()?.to_owned(), o["expiresAt"].as_i64()?))
    }

    /// The access token in the credentials file.
    ///
    /// # Panics
    /// When the file has none.
    #[must_use]
    pub fn current_token(&self) -> String {
        self.current_creds().expect("an access token in the credentials file").0
    }

    /// The targets that do not hold `token` (by name, never the token): the profiles, the
    /// gateway's drop-in and OpenClaw's dotenv file.
    #[must_use]
    pub fn stale_targets(&self, token: &str) -> Vec<String> {
        self.profiles
            .iter()
            .chain([&self.dropin, &self.openclaw_env])
            .filter(|t| !fs::read_to_string(t).is_ok_and(|text| text.contains(token)))
            .map(|t| t.display().to_string())
            .collect()
    }

    /// Everything the services and the manager printed.
    #[must_use]
    pub fn all_logs(&self) -> String {
        let mut text = String::new();
        for dir in [&self.logs, &self.work] {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().is_file() {
                    let _ = writeln!(text, "==> {}", entry.path().display());
                    text.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        text
    }

    /// Polls `ok` every 20 ms until it holds; after `timeout`, fails the test naming `what`,
    /// with every log (checked first for tokens, which must never be printed).
    ///
    /// # Panics
    /// On the timeout.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ok() {
            if Instant::now() > deadline {
                let logs = self.all_logs();
                assert!(!crate::has_token_shape(&logs), "a token is in the logs");
                panic!("timed out after {timeout:?} waiting for {what}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the repository's `scripts/NAME` as the user would, against `mgr` (its client
    /// environment only; no Docker engine, so detection finds the user unit); returns its exit
    /// status, its output and how long it took. A token in the output fails the test.
    ///
    /// # Panics
    /// When the script cannot be started, or printed a token.
    #[must_use]
    pub fn run_script(&self, mgr: &UserManager, name: &str, args: &[&str]) -> (i32, String, Duration) {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(crate::repo_root().join("scripts").join(name))
            .args(args)
            .env_clear()
            .envs(mgr.client_env())
            .env("LANG", "C.UTF-8")
            .env("TMPDIR", &self.work)
            .env("DOCKER_HOST", format!("unix://{}", self.work.join("no-engine.sock").display()))
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        let text = format!(
            "--- stdout\n{}--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!crate::has_token_shape(&text), "a token in {name}'s output");
        (out.status.code().unwrap_or(-1), text, started.elapsed())
    }

    /// Starts the machine's user manager with the test-only drop-ins in `dropins` (service
    /// output to files in [`Machine::logs`], the sandboxing this machine cannot apply turned
    /// off) and reloads it; None when it did not start (the test is skipped, or fails when
    /// systemd is required).
    ///
    /// # Panics
    /// On I/O errors.
    #[must_use]
    pub fn start_manager(&self, dropins: TestDropins) -> Option<UserManager> {
        let mgr = match UserManager::start(&self.home, &self.work) {
            Ok(mgr) => mgr,
            Err(why) => {
                systemd::skip(&format!("the user manager did not start: {why}"));
                return None;
            }
        };
        let dir = match dropins {
            TestDropins::UnitDir => self.unit_dir.clone(),
            TestDropins::RuntimeControl => mgr.runtime_dir.join("systemd/user.control"),
        };
        let unsupported = mgr.unsupported_sandboxing(&dir);
        if !unsupported.is_empty() {
            eprintln!("note: this machine cannot apply {unsupported:?}; turned off for this test only");
        }
        for unit in KEEPER_SERVICES {
            let log = self.logs.join(format!("{}.log", unit.trim_end_matches(".service").trim_end_matches('@')));
            write_file(
                &dir.join(format!("{unit}.d/90-test-output.conf")),
                &format!(
                    "[Service]\nStandardOutput=append:{0}\nStandardError=append:{0}\nReadWritePaths=-{1}\n",
                    log.display(),
                    self.logs.display()
                ),
            );
            if let Some(off) = systemd::sandbox_off_dropin(&unsupported) {
                write_file(&dir.join(format!("{unit}.d/99-test-sandbox.conf")), &off);
            }
        }
        let _ = mgr.systemctl_ok(&["daemon-reload"]);
        Some(mgr)
    }
}

/// How often the gateway stand-in was nudged (SIGUSR1, OpenClaw 2026.6.x's in-process restart).
#[must_use]
pub fn gateway_nudges(m: &Machine) -> usize {
    fs::read_to_string(m.home.join("gateway/usr1.log")).unwrap_or_default().lines().count()
}

/// The gateway's main PID and the fingerprint of the token in its environment (None: not
/// running; empty fingerprint: no token in its environment).
#[must_use]
pub fn gateway_token(mgr: &UserManager) -> Option<(String, String)> {
    let pid = mgr.property(GATEWAY, "MainPID");
    if pid.is_empty() || pid == "0" {
        return None;
    }
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let fp = environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"ANTHROPIC_OAUTH_TOKEN="))
        .map_or_else(String::new, |v| fingerprint(&String::from_utf8_lossy(v)));
    Some((pid, fp))
}
