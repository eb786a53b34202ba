//! End to end on a real user service manager (DOMAIN.md §5): the user units and the built tools
//! installed into a temporary HOME as setup.sh does, a stand-in `openclaw-gateway.service`, the
//! `claude` stand-in as the CLI. A new credentials file reaches every target and restarts the
//! gateway with the new token; the refresh timer pokes the CLI in its window; verify.sh passes,
//! then names what broke; a dead refresh token fires the notify@ unit; everything stops cleanly.

use keeper_install_tests::systemd::{self, UserManager};
use keeper_install_tests::{fake_token, fingerprint, has_token_shape, repo_root};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GATEWAY: &str = "openclaw-gateway.service";
const KEEPER_SERVICES: [&str; 4] = [
    "openclaw-keeper-refresh.service",
    "openclaw-keeper-sync.service",
    "openclaw-keeper-sync-once.service",
    "openclaw-keeper-notify@.service",
];

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// The install under test: paths in the temporary HOME.
struct Install {
    home: PathBuf,
    work: PathBuf,
    logs: PathBuf,
    creds: PathBuf,
    profiles: [PathBuf; 2],
    dropin: PathBuf,
    openclaw_env: PathBuf,
    flag: PathBuf,
    calls: PathBuf,
    unit_dir: PathBuf,
}

impl Install {
    fn new(root: &Path) -> Self {
        let home = root.join("home");
        let work = root.join("work");
        let logs = root.join("logs");
        let unit_dir = home.join(".config/systemd/user");
        Self {
            creds: home.join(".claude/.credentials.json"),
            profiles: ["main", "ops"].map(|a| home.join(format!(".openclaw/agents/{a}/agent/auth-profiles.json"))),
            dropin: unit_dir.join(format!("{GATEWAY}.d/anthropic.conf")),
            openclaw_env: home.join(".openclaw-env"),
            flag: home.join(".openclaw/REAUTH_NEEDED"),
            calls: logs.join("claude-calls.jsonl"),
            unit_dir,
            home,
            work,
            logs,
        }
    }

    fn targets(&self) -> Vec<&Path> {
        let mut t: Vec<&Path> = self.profiles.iter().map(PathBuf::as_path).collect();
        t.extend([self.dropin.as_path(), self.openclaw_env.as_path()]);
        t
    }

    /// Writes the CLI's credentials the way 2.1.197 does: a temp file renamed over the file.
    fn write_creds(&self, access: &str, refresh: &str, expires_ms: i64) {
        let doc = serde_json::json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
            "expiresAt": expires_ms, "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}});
        let tmp = self.creds.with_extension("json.tmp.0a1b2c3d");
        fs::write(&tmp, doc.to_string()).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
        fs::rename(&tmp, &self.creds).unwrap();
    }

    /// (access token, expiresAt) in the credentials file.
    fn current_creds(&self) -> Option<(String, i64)> {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&self.creds).ok()?).ok()?;
        let o = &v["claudeAiOauth"];
        Some((o["accessToken"].as_str()?.to_owned(), o["expiresAt"].as_i64()?))
    }

    /// The targets that do not hold `token` (by name; never the token).
    fn stale_targets(&self, token: &str) -> Vec<String> {
        self.targets()
            .into_iter()
            .filter(|t| !fs::read_to_string(t).is_ok_and(|text| text.contains(token)))
            .map(|t| t.display().to_string())
            .collect()
    }

    /// Everything the services and the manager printed.
    fn all_logs(&self) -> String {
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
}

/// The gateway's current main PID and the fingerprint of the token in its environment.
fn gateway_token(mgr: &UserManager) -> Option<(String, String)> {
    let pid = mgr.property(GATEWAY, "MainPID");
    if pid.is_empty() || pid == "0" {
        return None;
    }
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let value = environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"ANTHROPIC_OAUTH_TOKEN="))
        .map(|v| String::from_utf8_lossy(v).into_owned())?;
    Some((pid, fingerprint(&value)))
}

fn wait_for(what: &str, install: &Install, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            let logs = install.all_logs();
            assert!(!has_token_shape(&logs), "a token is in the logs");
            panic!("timed out after {timeout:?} waiting for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A webhook on 127.0.0.1 that records the bodies it receives.
fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/keeper", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let body = loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_owned());
                    }
                }
            };
            if let Some(body) = body {
                seen.lock().unwrap().push(body);
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, bodies)
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Installs the user set as setup.sh does (user mode, JSON-era OpenClaw, gateway user unit):
/// tools in ~/.local/bin, units in ~/.config/systemd/user, the config, the drop-ins with the
/// writable paths (systemd/README.md's rules), the target directories.
fn install_like_setup(i: &Install, notify_url: &str) {
    let home = i.home.display().to_string();
    systemd::install_tools(&i.home.join(".local/bin"), true);
    fs::create_dir_all(&i.unit_dir).unwrap();
    for src in systemd::unit_sources("user") {
        fs::copy(&src, i.unit_dir.join(src.file_name().unwrap())).unwrap_or_else(|e| panic!("{e}"));
    }
    let agents = i.home.join(".openclaw/agents");
    for profile in &i.profiles {
        write(profile, r#"{"version":1,"profiles":{}}"#);
    }
    write(&i.openclaw_env, "# OpenClaw's environment\n");
    // setup creates every target directory: a ReadWritePaths=- entry for a missing one is ignored.
    fs::create_dir_all(i.dropin.parent().unwrap()).unwrap();
    fs::create_dir_all(i.creds.parent().unwrap()).unwrap();
    let config = format!(
        "# written by scripts/setup.sh\n\
         KEEPER_INSTALL=user\n\
         KEEPER_GATEWAY=user-unit\n\
         KEEPER_GATEWAY_UNIT={GATEWAY}\n\
         KEEPER_OPENCLAW_GENERATION=json\n\
         KEEPER_MODE=refresh\n\
         KEEPER_CREDENTIALS={creds}\n\
         KEEPER_CLI={home}/.local/bin/claude\n\
         KEEPER_TO=openclaw-profiles:{agents}/*/agent/auth-profiles.json systemd-dropin:{dropin} dotenv:{env}\n\
         KEEPER_OPENCLAW_DIR={home}/.openclaw\n\
         KEEPER_NOTIFY_URL={notify_url}\n\
         KEEPER_EXEC_ON_CHANGE=systemctl --user daemon-reload && systemctl --user try-restart {GATEWAY}\n\
         KEEPER_SYNC_UNIT=openclaw-keeper-sync.service\n\
         KEEPER_UNITS=openclaw-keeper-refresh.timer openclaw-keeper-sync.service\n\
         # the claude stand-in's call log (cli-poke passes the environment on to the CLI)\n\
         CLAUDE_STAND_IN_LOG={calls}\n",
        creds = i.creds.display(),
        agents = agents.display(),
        dropin = i.dropin.display(),
        env = i.openclaw_env.display(),
        calls = i.calls.display(),
    );
    let config_file = i.home.join(".config/openclaw-oauth-keeper/keeper.env");
    write(&config_file, &config);
    fs::set_permissions(&config_file, fs::Permissions::from_mode(0o600)).unwrap();
    // 50-keeper-paths.conf, by systemd/README.md's rules.
    let claude_home = i.creds.parent().unwrap().parent().unwrap();
    let paths = |dirs: &[&Path]| {
        dirs.iter().fold("# written by scripts/setup.sh\n[Service]\n".to_owned(), |mut s, d| {
            let _ = writeln!(s, "ReadWritePaths=-{}", d.display());
            s
        })
    };
    let refresh_paths = paths(&[claude_home, i.flag.parent().unwrap()]);
    let sync_paths = paths(&[&agents, i.dropin.parent().unwrap(), i.openclaw_env.parent().unwrap()]);
    for (unit, text) in [
        ("openclaw-keeper-refresh.service", &refresh_paths),
        ("openclaw-keeper-sync.service", &sync_paths),
        ("openclaw-keeper-sync-once.service", &sync_paths),
    ] {
        write(&i.unit_dir.join(format!("{unit}.d/50-keeper-paths.conf")), text);
    }
    // The gateway stand-in: a process that keeps the environment its drop-in gives it.
    write(
        &i.unit_dir.join(GATEWAY),
        "[Unit]\nDescription=OpenClaw gateway (test stand-in)\n\n[Service]\nExecStart=/bin/sleep infinity\n\n\
         [Install]\nWantedBy=default.target\n",
    );
}

/// Test-only drop-ins: output to files (there is no journal), a fast refresh timer, and the
/// sandboxing settings this machine cannot apply turned off.
fn test_dropins(i: &Install, unsupported: &[&str]) {
    fs::create_dir_all(&i.logs).unwrap();
    for unit in KEEPER_SERVICES {
        let log = i.logs.join(format!("{}.log", unit.trim_end_matches(".service").trim_end_matches('@')));
        write(
            &i.unit_dir.join(format!("{unit}.d/90-test-output.conf")),
            &format!(
                "[Service]\nStandardOutput=append:{0}\nStandardError=append:{0}\nReadWritePaths=-{1}\n",
                log.display(),
                i.logs.display()
            ),
        );
        if let Some(off) = systemd::sandbox_off_dropin(unsupported) {
            write(&i.unit_dir.join(format!("{unit}.d/99-test-sandbox.conf")), &off);
        }
    }
    // Every 2 s instead of *:0/2, so the test does not wait minutes for a run.
    write(
        &i.unit_dir.join("openclaw-keeper-refresh.timer.d/90-test-fast.conf"),
        "[Timer]\nOnCalendar=\nOnActiveSec=1s\nOnUnitActiveSec=2s\nAccuracySec=100ms\n",
    );
    write(
        &i.home.join(".config/systemd/user.conf"),
        "[Manager]\nDefaultStandardOutput=inherit\nDefaultStandardError=inherit\n",
    );
}

/// scripts/verify.sh --user against this install: (exit code, output).
fn verify(mgr: &UserManager) -> (i32, String) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/verify.sh"))
        .arg("--user")
        .env_clear()
        .envs(mgr.client_env())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().expect("exited"), text)
}

/// The status column of the first row whose CHECK starts with `check`.
fn row_status<'a>(table: &'a str, check: &str) -> Option<&'a str> {
    table.lines().find(|l| l.starts_with(check)).and_then(|l| l.split(" | ").nth(1)).map(str::trim)
}

#[test]
#[allow(clippy::too_many_lines)] // Reason: one scenario on one manager; its steps build on each other.
fn user_units_keep_the_gateway_current_end_to_end() {
    if let Some(why) = systemd::user_manager_unavailable() {
        systemd::skip(&why);
        return;
    }
    let root = systemd::service_visible_tempdir("user-systemd-");
    let inst = Install::new(root.path());
    fs::create_dir_all(&inst.work).unwrap();
    let (notify_url, posts) = webhook();
    install_like_setup(&inst, &notify_url);
    let (first, refresh) = (fake_token("oat"), fake_token("ort"));
    inst.write_creds(&first, &refresh, now_ms() + 3_600_000);

    let mut mgr = match UserManager::start(&inst.home, &inst.work) {
        Ok(m) => m,
        Err(why) => {
            systemd::skip(&format!("the user manager did not start: {why}"));
            return;
        }
    };
    let unsupported = mgr.unsupported_sandboxing(&inst.unit_dir);
    if !unsupported.is_empty() {
        eprintln!("note: this machine cannot apply {unsupported:?}; turned off for this test only");
    }
    test_dropins(&inst, &unsupported);
    let _ = mgr.systemctl_ok(&["daemon-reload"]);

    // 1. The sync service copies the token into every target at start.
    let _ = mgr.systemctl_ok(&["enable", "--now", "openclaw-keeper-sync.service"]);
    wait_for("every target holds the first token", &inst, Duration::from_secs(20), || {
        inst.stale_targets(&first).is_empty()
    });
    let _ = mgr.systemctl_ok(&["start", GATEWAY]);
    wait_for("the gateway runs with the first token", &inst, Duration::from_secs(20), || {
        gateway_token(&mgr).is_some_and(|(_, fp)| fp == fingerprint(&first))
    });
    let (first_pid, _) = gateway_token(&mgr).unwrap();

    // 2. A new credentials file: every target updated, the gateway restarted with it.
    let (second, refresh) = (fake_token("oat"), refresh);
    inst.write_creds(&second, &refresh, now_ms() + 2 * 3_600_000);
    wait_for("every target holds the new token", &inst, Duration::from_secs(20), || {
        inst.stale_targets(&second).is_empty()
    });
    wait_for("the restart hook gave the gateway the new token", &inst, Duration::from_secs(20), || {
        gateway_token(&mgr).is_some_and(|(pid, fp)| pid != first_pid && fp == fingerprint(&second))
    });

    // 3. The refresh timer pokes the CLI; inside its window the CLI refreshes, and the new token
    //    goes everywhere.
    let near_expiry = fake_token("oat");
    inst.write_creds(&near_expiry, &refresh, now_ms() + 3 * 60_000);
    let _ = mgr.systemctl_ok(&["enable", "--now", "openclaw-keeper-refresh.timer"]);
    wait_for("the refresh timer made the CLI refresh", &inst, Duration::from_secs(30), || {
        inst.current_creds().is_some_and(|(t, exp)| t != near_expiry && t != second && exp > now_ms() + 3_600_000)
    });
    let (refreshed, _) = inst.current_creds().unwrap();
    wait_for("every target holds the refreshed token", &inst, Duration::from_secs(20), || {
        inst.stale_targets(&refreshed).is_empty()
    });
    wait_for("the gateway holds the refreshed token", &inst, Duration::from_secs(20), || {
        gateway_token(&mgr).is_some_and(|(_, fp)| fp == fingerprint(&refreshed))
    });
    let calls = fs::read_to_string(&inst.calls).unwrap_or_default();
    assert!(calls.lines().count() >= 1, "the stand-in CLI was run:\n{calls}");
    let refresh_log = fs::read_to_string(inst.logs.join("openclaw-keeper-refresh.log")).unwrap_or_default();
    assert!(refresh_log.contains("refreshed:"), "{refresh_log}");

    // 4. verify.sh: all ok.
    let (code, table) = verify(&mgr);
    assert_eq!(code, 0, "{table}");
    for check in [
        "config",
        "unit openclaw-keeper-refresh.timer",
        "unit openclaw-keeper-sync.service",
        "token expiry",
        "gateway token",
        "REAUTH flag",
    ] {
        assert_eq!(row_status(&table, check), Some("ok"), "{check}:\n{table}");
    }
    assert_eq!(table.lines().filter(|l| l.starts_with("copy ") && l.contains("| ok ")).count(), 4, "{table}");
    assert_eq!(row_status(&table, "openclaw models status"), Some("skip"), "{table}");
    assert!(!table.contains("FAIL"), "{table}");

    // 5. Break it: the sync service stopped and the credentials changed behind its back (a new
    //    login: it expires later than the copies, or cred-sync would refuse the downgrade).
    let _ = mgr.systemctl_ok(&["stop", "openclaw-keeper-sync.service"]);
    let relogin = fake_token("oat");
    inst.write_creds(&relogin, &refresh, now_ms() + 9 * 3_600_000);
    let (code, table) = verify(&mgr);
    assert_eq!(code, 1, "{table}");
    assert_eq!(row_status(&table, "unit openclaw-keeper-sync.service"), Some("FAIL"), "{table}");
    assert_eq!(table.lines().filter(|l| l.starts_with("copy ") && l.contains("| FAIL |")).count(), 4, "{table}");
    assert_eq!(row_status(&table, "gateway token"), Some("FAIL"), "{table}");
    assert_eq!(row_status(&table, "token expiry"), Some("ok"), "{table}");
    // ... and heals when it runs again.
    let _ = mgr.systemctl_ok(&["start", "openclaw-keeper-sync.service"]);
    wait_for("every target holds the token again", &inst, Duration::from_secs(20), || {
        inst.stale_targets(&relogin).is_empty()
    });
    wait_for("the gateway holds the token again", &inst, Duration::from_secs(20), || {
        gateway_token(&mgr).is_some_and(|(_, fp)| fp == fingerprint(&relogin))
    });
    let (code, table) = verify(&mgr);
    assert_eq!(code, 0, "{table}");

    // 6. A dead refresh token: the refresh fails, notify@ reports it (log line and webhook).
    write(
        &inst.unit_dir.join("openclaw-keeper-refresh.service.d/95-test-dead.conf"),
        "[Service]\nEnvironment=CLAUDE_STAND_IN_DEAD=1\n",
    );
    let _ = mgr.systemctl_ok(&["daemon-reload"]);
    inst.write_creds(&fake_token("oat"), &fake_token("ort"), now_ms() + 2 * 60_000);
    let notify_log = inst.logs.join("openclaw-keeper-notify.log");
    let expected =
        "openclaw-keeper-refresh.service failed; its log: journalctl --user-unit openclaw-keeper-refresh.service";
    wait_for("notify@ logged the failed refresh", &inst, Duration::from_secs(30), || {
        fs::read_to_string(&notify_log).is_ok_and(|t| t.contains(expected))
    });
    wait_for("notify@ posted the failure", &inst, Duration::from_secs(10), || {
        posts.lock().unwrap().iter().any(|p| p.contains("openclaw-keeper-refresh.service failed"))
    });
    assert!(inst.flag.exists(), "cli-poke raised the REAUTH flag");
    let (code, table) = verify(&mgr);
    assert_eq!(code, 1, "{table}");
    assert_eq!(row_status(&table, "REAUTH flag"), Some("FAIL"), "{table}");
    assert_eq!(row_status(&table, "token expiry"), Some("FAIL"), "{table}");

    // 7. Stop everything: the manager stops every unit and exits; nothing is left.
    let gateway_pid = mgr.property(GATEWAY, "MainPID");
    let (clean, leftovers) = mgr.stop();
    assert!(clean, "systemd --user did not exit by itself on SIGTERM");
    assert!(leftovers.is_empty(), "processes left in the manager's cgroups: {leftovers:?}");
    assert!(!Path::new(&format!("/proc/{gateway_pid}")).exists(), "the gateway {gateway_pid} still runs");

    // Nothing printed first token.
    let logs = inst.all_logs();
    assert!(!has_token_shape(&logs), "a token is in the logs");
    for post in posts.lock().unwrap().iter() {
        assert!(!has_token_shape(post), "a token was posted");
    }
    assert!(!has_token_shape(&table));
}
