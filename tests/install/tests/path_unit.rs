//! The `.path`-unit variant of the sync on a real private user manager (docs/UPSTREAM.md, "The test machines"):
//! `scripts/setup.sh --user --yes --sync path` installs `openclaw-keeper-sync.path`, which starts
//! `openclaw-keeper-sync-once.service` when the CLI replaces its credentials file (by rename, as
//! 2.1.197 does).
//!
//! The race (systemd#5770): a write landing while the oneshot still runs is not reported by
//! `PathChanged=`. The run is held open deterministically: `KEEPER_EXEC_ON_CHANGE` (which runs on
//! every change) waits for a file the test creates only after its second write. With
//! cred-sync's re-check (the default) the last token reaches every target; with
//! `KEEPER_MAX_ROUNDS=1` (no re-check) it does not: the loss the re-check exists for.
//!
//! `KEEPER_PATH_RACE_TRIALS=N` repeats each race N times and prints the count (a measurement).

use keeper_anthropic_mock::Mock;
use keeper_install_tests::machine::{GATEWAY, Machine, TestDropins, gateway_nudges, gateway_token};
use keeper_install_tests::systemd::UserManager;
use keeper_install_tests::{access_token, bin_dir, has_token_shape, now_ms, refresh_token, row_status};
use std::fs;
use std::path::Path;
use std::time::Duration;

const PATH_UNIT: &str = "openclaw-keeper-sync.path";
const ONCE: &str = "openclaw-keeper-sync-once.service";
const HOUR_MS: i64 = 3_600_000;

/// The machine with the path variant installed by setup.sh, the gateway running with the
/// token the CLI test refreshed. None: no user manager here (skipped).
fn installed_path_variant() -> Option<(tempfile::TempDir, Machine, UserManager)> {
    let (root, m) = Machine::create("path-unit-")?;
    m.build(0);
    m.write_creds(&access_token(), &refresh_token(), now_ms() + 3 * 60_000);
    let mgr = m.start_manager(TestDropins::RuntimeControl)?;
    let _ = mgr.systemctl_ok(&["start", GATEWAY]);
    let bins = bin_dir().to_str().unwrap().to_owned();
    let (code, out, _) = m.run_script(&mgr, "setup.sh", &["--user", "--yes", "--sync", "path", "--bin-dir", &bins]);
    assert_eq!(code, 0, "setup.sh\n{out}\n{}", m.all_logs());
    assert!(out.contains(&format!("enable and start openclaw-keeper-refresh.timer {PATH_UNIT}")), "{out}");
    Some((root, m, mgr))
}

/// Sets the config's `KEEPER_EXEC_ON_CHANGE` (run on every change) to: (once per arming)
/// "started" and a wait for "go"; every run appends to `hook-runs`. Adds `extra` lines. The
/// service reads the config at each start: no reload needed.
fn slow_hook_config(m: &Machine, extra: &str) {
    let config = m.home.join(".config/openclaw-oauth-keeper/keeper.env");
    let text = fs::read_to_string(&config).unwrap();
    let logs = m.logs.display();
    let hook = format!(
        "echo run >> {logs}/hook-runs; if [ -e {logs}/armed ] && [ ! -e {logs}/started ]; then \
         : > {logs}/started; while [ ! -e {logs}/go ]; do sleep 0.02; done; fi"
    );
    let mut new: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("KEEPER_EXEC_ON_CHANGE=") && !l.starts_with("KEEPER_MAX_ROUNDS="))
        .map(str::to_owned)
        .collect();
    new.push(format!("KEEPER_EXEC_ON_CHANGE=\"{hook}\""));
    new.push(extra.to_owned());
    let new = new.join("\n");
    fs::write(&config, new).unwrap();
}

fn hook_runs(m: &Machine) -> usize {
    fs::read_to_string(m.logs.join("hook-runs")).unwrap_or_default().lines().count()
}

fn settled(mgr: &UserManager) -> bool {
    mgr.property(ONCE, "ActiveState") != "activating" && mgr.property(PATH_UNIT, "SubState") == "waiting"
}

/// One race: write A (triggers the oneshot, which holds in the hook), write B while it runs,
/// release it, wait until the oneshot has finished and the path unit waits again. Returns
/// (A, B, hook runs during the trial).
fn race(m: &Machine, mgr: &UserManager) -> (String, String, usize) {
    // A write landing before the previous run has ended would itself be the race under test.
    m.wait_for("the previous run to end", Duration::from_secs(60), || settled(mgr));
    for f in ["started", "go"] {
        let _ = fs::remove_file(m.logs.join(f));
    }
    fs::write(m.logs.join("armed"), "").unwrap();
    let runs_before = hook_runs(m);
    let a = access_token();
    m.write_creds(&a, &refresh_token(), now_ms() + 8 * HOUR_MS);
    m.wait_for("the oneshot to hold in its hook", Duration::from_secs(60), || m.logs.join("started").exists());
    assert!(m.stale_targets(&a).is_empty(), "A was synced before the hook ran");
    let b = access_token();
    m.write_creds(&b, &refresh_token(), now_ms() + 8 * HOUR_MS);
    assert_eq!(mgr.property(ONCE, "ActiveState"), "activating", "B landed while the oneshot ran");
    fs::write(m.logs.join("go"), "").unwrap();
    m.wait_for("the oneshot to finish", Duration::from_secs(60), || settled(mgr));
    fs::remove_file(m.logs.join("armed")).unwrap();
    (a, b, hook_runs(m) - runs_before)
}

fn trials() -> usize {
    std::env::var("KEEPER_PATH_RACE_TRIALS").ok().and_then(|n| n.parse().ok()).unwrap_or(1)
}

#[test]
fn path_unit_syncs_a_renamed_credentials_file_and_a_write_landing_mid_run() {
    let Some((_root, m, mut mgr)) = installed_path_variant() else { return };
    assert_eq!(mgr.property(PATH_UNIT, "ActiveState"), "active");
    assert_eq!(mgr.property(PATH_UNIT, "SubState"), "waiting");
    assert_eq!(mgr.property(PATH_UNIT, "UnitFileState"), "enabled");
    assert_eq!(mgr.property("openclaw-keeper-sync.service", "ActiveState"), "inactive", "not the watcher too");
    // Only the install's credentials file is watched (the drop-in reset the default).
    assert_eq!(mgr.property(PATH_UNIT, "Paths"), format!("{} (PathChanged)", m.creds.display()));
    assert_eq!(mgr.property(ONCE, "StartLimitIntervalUSec"), "0");
    let refreshed = m.current_token();
    assert!(m.stale_targets(&refreshed).is_empty(), "the CLI test's token: {:?}", m.stale_targets(&refreshed));
    // Regression (issue 15, item 3): setup's CLI test (`cli-poke --force`) marks the held token
    // due, which triggers the oneshot before the CLI has refreshed; it used to exit 4 ("expired"),
    // failing the unit and firing OnFailure= on every `setup.sh --sync path`.
    m.wait_for("the oneshot to finish", Duration::from_secs(60), || settled(&mgr));
    assert_eq!(mgr.property(ONCE, "Result"), "success", "{}", m.all_logs());
    assert!(!m.logs.join("openclaw-keeper-notify.log").exists(), "notify@ ran:\n{}", m.all_logs());

    // verify.sh: the path unit's row is ok (active, waiting).
    let (code, table, _) = m.run_script(&mgr, "verify.sh", &["--user"]);
    assert_eq!(code, 0, "{table}");
    assert_eq!(row_status(&table, &format!("unit {PATH_UNIT}")), Some("ok"), "{table}");
    assert!(table.contains(&format!("active (waiting), watching: {} (PathChanged)", m.creds.display())), "{table}");

    // A new file by rename (a new inode) starts the oneshot: every target. The store delivered it
    // (auth-profiles.json is re-read by the running gateway), so the gateway is neither restarted
    // nor nudged: the same process, still started with the token before.
    let (pid, started_with) = gateway_token(&mgr).expect("the gateway runs");
    let nudges = gateway_nudges(&m);
    let next = access_token();
    m.write_creds(&next, &refresh_token(), now_ms() + 8 * HOUR_MS);
    m.wait_for("the renamed file's token in every target", Duration::from_secs(30), || {
        m.stale_targets(&next).is_empty()
    });
    m.wait_for("the oneshot to finish", Duration::from_secs(60), || settled(&mgr));
    assert_eq!(gateway_token(&mgr), Some((pid.clone(), started_with.clone())), "no restart\n{}", m.all_logs());
    assert_eq!(gateway_nudges(&m), nudges, "no nudge for a rotation over a valid copy\n{}", m.all_logs());

    // The race, with the re-check: the last token reaches every target in the same run.
    slow_hook_config(&m, "");
    let mut lost = 0;
    for _ in 0..trials() {
        let (_a, b, runs) = race(&m, &mgr);
        if !m.stale_targets(&b).is_empty() {
            lost += 1;
        }
        assert!(m.stale_targets(&b).is_empty(), "B is in every target: {:?}\n{}", m.stale_targets(&b), m.all_logs());
        assert_eq!(runs, 2, "one run, two rounds that wrote (the hook ran for each)");
        assert_eq!(gateway_token(&mgr), Some((pid.clone(), started_with.clone())), "the store delivered B: no restart");
    }
    eprintln!("with the re-check: {lost} of {} mid-run writes lost", trials());
    assert!(m.all_logs().contains("changed during the run; syncing again (round 2"));
    assert_eq!(mgr.property(PATH_UNIT, "ActiveState"), "active", "the path unit still watches");

    let (code, out, _) = m.run_script(&mgr, "uninstall.sh", &["--user", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(mgr.property(PATH_UNIT, "LoadState"), "not-found", "{out}");
    assert!(!m.unit_dir.join(format!("{PATH_UNIT}.d/50-keeper-paths.conf")).exists(), "the drop-in is removed");
    let (clean, leftovers) = mgr.stop();
    assert!(clean && leftovers.is_empty(), "{leftovers:?}");
    assert!(!has_token_shape(&m.all_logs()), "a token is in the logs");
}

/// What the re-check is for: the same race with `KEEPER_MAX_ROUNDS=1` loses B (systemd#5770).
/// The oneshot has finished and the path unit waits again when the targets are read; a lost
/// event is never reported later, so a further start of the oneshot is watched for a while.
#[test]
fn without_the_recheck_a_write_landing_mid_run_is_lost() {
    let Some((_root, m, mut mgr)) = installed_path_variant() else { return };
    slow_hook_config(&m, "KEEPER_MAX_ROUNDS=1\n");
    let mut lost = 0;
    for _ in 0..trials() {
        let (a, b, runs) = race(&m, &mgr);
        assert_eq!(runs, 1, "one round");
        let starts = mgr.property(ONCE, "InvocationID");
        // Were B's event kept, the oneshot would start again at once (~20-30 ms here).
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(mgr.property(ONCE, "InvocationID"), starts, "no further run of the oneshot");
        if m.stale_targets(&b).len() == 4 {
            lost += 1;
            assert!(m.stale_targets(&a).is_empty(), "the targets hold A");
        }
    }
    eprintln!("without the re-check: {lost} of {} mid-run writes lost", trials());
    assert_eq!(lost, trials(), "systemd reported none of the mid-run writes\n{}", m.all_logs());
    let (clean, leftovers) = mgr.stop();
    assert!(clean && leftovers.is_empty(), "{leftovers:?}");
}

/// The real Claude Code CLI 2.1.332 (`KEEPER_CLAUDE_2_1_332`, else `KEEPER_CLAUDE_DIR/claude-2.1.332`,
/// installed by `scripts/install-claude-for-tests.sh`), or None after a loud skip (a failure with
/// `KEEPER_REQUIRE_CLAUDE=1`, as CI sets it).
fn real_cli_2_1_332() -> Option<std::path::PathBuf> {
    let program = std::env::var_os("KEEPER_CLAUDE_2_1_332")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("KEEPER_CLAUDE_DIR")
                .filter(|v| !v.is_empty())
                .map(|d| Path::new(&d).join("claude-2.1.332"))
        });
    let required = std::env::var("KEEPER_REQUIRE_CLAUDE").is_ok_and(|v| v.trim() == "1");
    if let Some(p) = program {
        assert!(p.is_file(), "{} does not exist (KEEPER_CLAUDE_2_1_332 / KEEPER_CLAUDE_DIR)", p.display());
        return Some(p);
    }
    let why = "KEEPER_CLAUDE_2_1_332 / KEEPER_CLAUDE_DIR not set (scripts/install-claude-for-tests.sh DEST, then KEEPER_CLAUDE_DIR=DEST/bin)";
    assert!(!required, "KEEPER_REQUIRE_CLAUDE=1 but {why}");
    let bar = "!".repeat(100);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr().lock(),
        format!("\n{bar}\n!!! SKIPPED: {why}; the real-CLI unit test did NOT run\n{bar}\n").as_bytes(),
    );
    None
}

/// Writes the CLI's credentials (temp + rename, 0600) as a sign-in leaves them; the mock knows the
/// refresh token.
fn write_real_creds(m: &Machine, mock: &Mock, expires_ms: i64) -> String {
    let (access, refresh) = (access_token(), refresh_token());
    let doc = serde_json::json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
        "expiresAt": expires_ms, "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
        "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}});
    let tmp = m.creds.with_extension("json.tmp.test");
    fs::write(&tmp, doc.to_string()).unwrap();
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::rename(&tmp, &m.creds).unwrap();
    mock.add_refresh_token(&refresh);
    access
}

/// `cli-poke --force` as a user runs it against the install (its config), with the real CLI
/// pointed at the mock; exits 0 with nothing token-shaped printed.
fn real_force(m: &Machine, mgr: &UserManager, mock: &Mock, cli: &Path) -> Duration {
    let mut cmd = std::process::Command::new(bin_dir().join("cli-poke"));
    cmd.env_clear()
        .envs(mgr.client_env())
        .env("KEEPER_CONFIG", m.home.join(".config/openclaw-oauth-keeper/keeper.env"))
        .env("KEEPER_STATE_DIR", m.home.join(".local/state/openclaw-oauth-keeper"))
        .arg("--force")
        .arg("--cli")
        .arg(cli);
    mock.apply_env(&mut cmd);
    let start = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!has_token_shape(&text), "a token in cli-poke's output");
    assert_eq!(out.status.code(), Some(0), "cli-poke --force with the real CLI:\n{text}\n{}", m.all_logs());
    start.elapsed()
}

/// Issue 15, item 3, with the real CLI: `cli-poke --force` makes the held token due (its own write
/// triggers the `.path` unit before the CLI has refreshed), then the real 2.1.332 refreshes (temp +
/// rename, under its three locks). Neither the `.path` one-shot nor the `--watch` service may
/// fail (no `OnFailure=` report, result success, no error in its log), and every target ends on
/// the CLI's new token. The forced write used to make the one-shot exit 4 ("expired").
#[test]
fn regression_a_real_force_failed_the_path_and_watch_units() {
    let Some(cli) = real_cli_2_1_332() else { return };
    // Offline: the manager, its units and the CLI run in this thread's network namespace, where
    // only the mock answers.
    if let Err(why) = keeper_anthropic_mock::isolate_network() {
        keeper_install_tests::systemd::skip(&why);
        return;
    }
    let Some((_root, m)) = Machine::create("path-unit-real-cli-") else { return };
    m.build(0);
    let mock = Mock::start(&m.work).unwrap();
    let first = write_real_creds(&m, &mock, now_ms() + 5 * HOUR_MS);
    let Some(mut mgr) = m.start_manager(TestDropins::RuntimeControl) else { return };
    let _ = mgr.systemctl_ok(&["start", GATEWAY]);
    let bins = bin_dir().to_str().unwrap().to_owned();
    let (code, out, _) =
        m.run_script(&mgr, "setup.sh", &["--user", "--yes", "--sync", "path", "--skip-cli-test", "--bin-dir", &bins]);
    assert_eq!(code, 0, "setup.sh\n{out}\n{}", m.all_logs());
    // The timer's own poke (every 2 minutes, without the mock's proxy) must not race ours.
    let _ = mgr.systemctl_ok(&["stop", "openclaw-keeper-refresh.timer"]);
    // Regression: with `--sync path` and no CLI test nothing changed the file, so nothing started
    // the oneshot: every target stayed missing (setup's verify failed) until the CLI's next
    // refresh, hours away. setup now runs the first sync itself.
    assert!(m.stale_targets(&first).is_empty(), "setup's first sync: {:?}\n{out}", m.stale_targets(&first));
    m.wait_for("the oneshot to finish", Duration::from_secs(60), || settled(&mgr));
    let notify_log = m.logs.join("openclaw-keeper-notify.log");
    let once_log = m.logs.join("openclaw-keeper-sync-once.log");
    let runs_before = mgr.property(ONCE, "InvocationID");

    // 1. The path variant.
    let took = real_force(&m, &mgr, &mock, &cli);
    let issued = mock.issued();
    assert_eq!(issued.len(), 1, "the real CLI refreshed once");
    let second = issued[0].access.clone();
    assert_eq!(m.current_token(), second);
    m.wait_for("the CLI's new token in every target (path unit)", Duration::from_secs(60), || {
        m.stale_targets(&second).is_empty()
    });
    m.wait_for("the oneshot to finish", Duration::from_secs(60), || settled(&mgr));
    assert_ne!(mgr.property(ONCE, "InvocationID"), runs_before, "the path unit started the oneshot");
    assert_eq!(mgr.property(ONCE, "Result"), "success", "{}", m.all_logs());
    assert_eq!(mgr.property(PATH_UNIT, "ActiveState"), "active", "the path unit still watches");
    assert!(!notify_log.exists(), "OnFailure= reported a failure:\n{}", m.all_logs());
    let once_text = fs::read_to_string(&once_log).unwrap_or_default();
    assert!(!once_text.contains("error"), "the oneshot logged an error:\n{once_text}");
    eprintln!("real 2.1.332 --force under the path unit: {:.1}s, the oneshot succeeded", took.as_secs_f64());

    // 2. The watching service instead (Conflicts= stops the path unit).
    let _ = mgr.systemctl_ok(&["start", "openclaw-keeper-sync.service"]);
    // The stop job Conflicts= queues may finish after `systemctl start` returns.
    m.wait_for("Conflicts= to stop the path unit", Duration::from_secs(30), || {
        mgr.property(PATH_UNIT, "ActiveState") == "inactive"
    });
    m.wait_for("the watcher to run", Duration::from_secs(30), || {
        mgr.property("openclaw-keeper-sync.service", "SubState") == "running"
    });
    let watch_log = m.logs.join("openclaw-keeper-sync.log");
    m.wait_for("the watcher's first sync", Duration::from_secs(30), || {
        fs::read_to_string(&watch_log).is_ok_and(|t| !t.is_empty())
    });
    let took = real_force(&m, &mgr, &mock, &cli);
    let issued = mock.issued();
    assert_eq!(issued.len(), 2, "the real CLI refreshed again");
    let third = issued[1].access.clone();
    assert_eq!(m.current_token(), third);
    m.wait_for("the CLI's new token in every target (watch)", Duration::from_secs(60), || {
        m.stale_targets(&third).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mgr.property("openclaw-keeper-sync.service", "ActiveState"), "active", "{}", m.all_logs());
    assert_eq!(mgr.property("openclaw-keeper-sync.service", "NRestarts"), "0", "{}", m.all_logs());
    assert_eq!(mgr.property("openclaw-keeper-sync.service", "Result"), "success");
    assert!(!notify_log.exists(), "OnFailure= reported a failure:\n{}", m.all_logs());
    let watch_text = fs::read_to_string(&watch_log).unwrap_or_default();
    assert!(!watch_text.contains("error"), "the watcher logged an error:\n{watch_text}");
    assert_eq!(mock.refresh_reuses(), 0, "nothing else used the CLI's refresh token");
    eprintln!("real 2.1.332 --force under the watch unit: {:.1}s, the watcher stayed up", took.as_secs_f64());

    let (clean, leftovers) = mgr.stop();
    assert!(clean && leftovers.is_empty(), "{leftovers:?}");
    assert!(!has_token_shape(&m.all_logs()), "a token is in the logs");
}
