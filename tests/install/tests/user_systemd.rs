//! End to end on a real user service manager (docs/UPSTREAM.md, "The test machines"): the user units and the built tools
//! installed into a temporary HOME as setup.sh does, a stand-in `openclaw-gateway.service`, the
//! `claude` stand-in as the CLI. A new credentials file reaches every target without restarting
//! the gateway (the store delivers it), an expired copy is replaced with a nudge (SIGUSR1); the
//! refresh timer pokes the CLI in its window; verify.sh passes,
//! then names what broke; a dead refresh token fires the notify@ unit; everything stops cleanly.

use keeper_install_tests::machine::{GATEWAY, Machine, TestDropins, gateway_nudges, gateway_token};
use keeper_install_tests::systemd;
use keeper_install_tests::systemd::UserManager;
use keeper_install_tests::webhook::Webhook;
use keeper_install_tests::{
    access_token, fingerprint, has_token_shape, now_ms, refresh_token, row_status, run_verify_sh, write_file,
};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// The stand-in CLI's call log (cli-poke passes the environment on to the CLI).
fn calls_log(m: &Machine) -> std::path::PathBuf {
    m.logs.join("claude-calls.jsonl")
}

/// Installs the user set as setup.sh does (user mode, JSON-era OpenClaw, gateway user unit):
/// tools in ~/.local/bin, units in ~/.config/systemd/user, the config, the drop-ins with the
/// writable paths (systemd/README.md's rules), the target directories.
fn install_like_setup(m: &Machine, notify_url: &str) {
    let home = m.home.display().to_string();
    // The machine has the CLI in ~/.local/bin already.
    systemd::install_tools(&m.home.join(".local/bin"), false);
    fs::create_dir_all(&m.unit_dir).unwrap();
    for src in systemd::unit_sources("user") {
        fs::copy(&src, m.unit_dir.join(src.file_name().unwrap())).unwrap_or_else(|e| panic!("{e}"));
    }
    let agents = m.openclaw.join("agents");
    // setup creates every target directory: a ReadWritePaths=- entry for a missing one is ignored.
    fs::create_dir_all(m.dropin.parent().unwrap()).unwrap();
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
         KEEPER_RESTART_CMD=systemctl --user daemon-reload && systemctl --user try-restart {GATEWAY}\n\
         KEEPER_NUDGE_CMD=systemctl --user kill -s USR1 --kill-whom=main {GATEWAY}\n\
         KEEPER_SYNC_UNIT=openclaw-keeper-sync.service\n\
         KEEPER_UNITS=openclaw-keeper-refresh.timer openclaw-keeper-sync.service\n\
         # the claude stand-in's call log (cli-poke passes the environment on to the CLI)\n\
         CLAUDE_STAND_IN_LOG={calls}\n",
        creds = m.creds.display(),
        agents = agents.display(),
        dropin = m.dropin.display(),
        env = m.openclaw_env.display(),
        calls = calls_log(m).display(),
    );
    let config_file = m.home.join(".config/openclaw-oauth-keeper/keeper.env");
    write_file(&config_file, &config);
    fs::set_permissions(&config_file, fs::Permissions::from_mode(0o600)).unwrap();
    // 50-keeper-paths.conf, by systemd/README.md's rules.
    let claude_home = m.creds.parent().unwrap().parent().unwrap();
    let paths = |dirs: &[&Path]| {
        dirs.iter().fold("# written by scripts/setup.sh\n[Service]\n".to_owned(), |mut s, d| {
            let _ = writeln!(s, "ReadWritePaths=-{}", d.display());
            s
        })
    };
    let refresh_paths = paths(&[claude_home, m.flag.parent().unwrap()]);
    let sync_paths = paths(&[&agents, m.dropin.parent().unwrap(), m.openclaw_env.parent().unwrap()]);
    for (unit, text) in [
        ("openclaw-keeper-refresh.service", &refresh_paths),
        ("openclaw-keeper-sync.service", &sync_paths),
        ("openclaw-keeper-sync-once.service", &sync_paths),
    ] {
        write_file(&m.unit_dir.join(format!("{unit}.d/50-keeper-paths.conf")), text);
    }
    // Test only: every 2 s instead of *:0/2, so the test does not wait minutes for a run.
    write_file(
        &m.unit_dir.join("openclaw-keeper-refresh.timer.d/90-test-fast.conf"),
        "[Timer]\nOnCalendar=\nOnActiveSec=1s\nOnUnitActiveSec=2s\nAccuracySec=100ms\n",
    );
}

/// scripts/verify.sh --user against this install: (exit code, output).
fn verify(mgr: &UserManager) -> (i32, String) {
    run_verify_sh(|cmd| {
        cmd.arg("--user").envs(mgr.client_env());
    })
}

#[test]
#[allow(clippy::too_many_lines)] // Reason: one scenario on one manager; its steps build on each other.
fn user_units_keep_the_gateway_current_end_to_end() {
    let Some((_root, inst)) = Machine::create("user-systemd-") else { return };
    inst.build(0);
    let hook = Webhook::start();
    install_like_setup(&inst, &hook.url);
    let (first, refresh) = (access_token(), refresh_token());
    inst.write_creds(&first, &refresh, now_ms() + 3_600_000);
    let Some(mut mgr) = inst.start_manager(TestDropins::UnitDir) else { return };

    // 1. The sync service copies the token into every target at start.
    let _ = mgr.systemctl_ok(&["enable", "--now", "openclaw-keeper-sync.service"]);
    inst.wait_for("every target holds the first token", Duration::from_secs(20), || {
        inst.stale_targets(&first).is_empty()
    });
    // The first copy replaced none: the sync nudges a gateway that is not running yet (a no-op);
    // wait for that before starting it, so the nudges counted below are the rotations' own.
    inst.wait_for("the first sync to finish", Duration::from_secs(20), || {
        fs::read_to_string(inst.logs.join("openclaw-keeper-sync.log"))
            .is_ok_and(|l| l.contains("4 of 4 target(s) written"))
    });
    let _ = mgr.systemctl_ok(&["start", GATEWAY]);
    inst.wait_for("the gateway runs with the first token", Duration::from_secs(20), || {
        gateway_token(&mgr).is_some_and(|(_, fp)| fp == fingerprint(&first))
    });

    let started = gateway_token(&mgr);
    let sync_log = || fs::read_to_string(inst.logs.join("openclaw-keeper-sync.log")).unwrap_or_default();

    // 2. A new credentials file: every target updated. auth-profiles.json is re-read by the
    //    running gateway, so it is neither restarted nor nudged: the drop-in and ~/.openclaw-env
    //    are the fallback for its next start (docs/ARCHITECTURE.md, "Delivery").
    let (second, refresh) = (access_token(), refresh);
    inst.write_creds(&second, &refresh, now_ms() + 2 * 3_600_000);
    inst.wait_for("every target holds the new token", Duration::from_secs(20), || {
        inst.stale_targets(&second).is_empty()
    });
    inst.wait_for("the sync logged the store delivery", Duration::from_secs(20), || {
        sync_log().contains("(openclaw-profiles): token") && sync_log().contains("gateway: live")
    });
    assert_eq!(gateway_token(&mgr), started, "no restart for a store-delivered rotation\n{}", sync_log());
    assert_eq!(gateway_nudges(&inst), 0, "no nudge over a valid copy\n{}", sync_log());

    // 2b. The copy the gateway held had expired (the keeper was down): a gateway whose turn
    //     failed stops looking, so the next write nudges it (SIGUSR1), still without a restart.
    let profile = inst.openclaw.join("agents/main/agent/auth-profiles.json");
    let mut held: serde_json::Value = serde_json::from_slice(&fs::read(&profile).unwrap()).unwrap();
    held["profiles"]["anthropic:claude-code"]["expires"] = (now_ms() - 60_000).into();
    fs::write(&profile, held.to_string()).unwrap();
    let (second, refresh) = (access_token(), refresh);
    inst.write_creds(&second, &refresh, now_ms() + 2 * 3_600_000 + 60_000);
    inst.wait_for("the sync nudged the gateway", Duration::from_secs(20), || gateway_nudges(&inst) == 1);
    assert!(inst.stale_targets(&second).is_empty(), "{:?}", inst.stale_targets(&second));
    assert_eq!(gateway_token(&mgr), started, "a nudge is not a restart\n{}", sync_log());

    // 3. The refresh timer pokes the CLI; inside its window the CLI refreshes, and the new token
    //    goes everywhere.
    let near_expiry = access_token();
    inst.write_creds(&near_expiry, &refresh, now_ms() + 3 * 60_000);
    let _ = mgr.systemctl_ok(&["enable", "--now", "openclaw-keeper-refresh.timer"]);
    inst.wait_for("the refresh timer made the CLI refresh", Duration::from_secs(30), || {
        inst.current_creds().is_some_and(|(t, exp)| t != near_expiry && t != second && exp > now_ms() + 3_600_000)
    });
    let (refreshed, _) = inst.current_creds().unwrap();
    inst.wait_for("every target holds the refreshed token", Duration::from_secs(20), || {
        inst.stale_targets(&refreshed).is_empty()
    });
    assert_eq!(gateway_token(&mgr), started, "the refresh restarted nothing");
    let calls = fs::read_to_string(calls_log(&inst)).unwrap_or_default();
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
    let relogin = access_token();
    inst.write_creds(&relogin, &refresh, now_ms() + 9 * 3_600_000);
    let (code, table) = verify(&mgr);
    assert_eq!(code, 1, "{table}");
    assert_eq!(row_status(&table, "unit openclaw-keeper-sync.service"), Some("FAIL"), "{table}");
    assert_eq!(table.lines().filter(|l| l.starts_with("copy ") && l.contains("| FAIL |")).count(), 4, "{table}");
    assert_eq!(row_status(&table, "gateway token"), Some("warn"), "the store is stale:\n{table}");
    assert_eq!(row_status(&table, "token expiry"), Some("ok"), "{table}");
    // ... and heals when it runs again.
    let _ = mgr.systemctl_ok(&["start", "openclaw-keeper-sync.service"]);
    inst.wait_for("every target holds the token again", Duration::from_secs(20), || {
        inst.stale_targets(&relogin).is_empty()
    });
    let (code, table) = verify(&mgr);
    assert_eq!(code, 0, "{table}");

    // 6. A dead refresh token: the refresh fails, notify@ reports it (log line and webhook).
    write_file(
        &inst.unit_dir.join("openclaw-keeper-refresh.service.d/95-test-dead.conf"),
        "[Service]\nEnvironment=CLAUDE_STAND_IN_DEAD=1\n",
    );
    let _ = mgr.systemctl_ok(&["daemon-reload"]);
    inst.write_creds(&access_token(), &refresh_token(), now_ms() + 2 * 60_000);
    let notify_log = inst.logs.join("openclaw-keeper-notify.log");
    let expected =
        "openclaw-keeper-refresh.service failed; its log: journalctl --user-unit openclaw-keeper-refresh.service";
    inst.wait_for("notify@ logged the failed refresh", Duration::from_secs(30), || {
        fs::read_to_string(&notify_log).is_ok_and(|t| t.contains(expected))
    });
    inst.wait_for("notify@ posted the failure", Duration::from_secs(10), || {
        hook.received().iter().any(|p| p.contains("openclaw-keeper-refresh.service failed"))
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
    for post in &hook.received() {
        assert!(!has_token_shape(post), "a token was posted");
    }
    assert!(!has_token_shape(&table));
}
