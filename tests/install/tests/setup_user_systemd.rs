//! The chain a user runs, on a real private user manager (docs/UPSTREAM.md, "The test machines"): `scripts/setup.sh --user
//! --yes` itself installs, enables and starts the user units, runs its CLI test (`cli-poke
//! --force` through the `claude` stand-in) and `scripts/verify.sh`; then `scripts/uninstall.sh
//! --user --yes` takes it all away again. The machine: a temporary HOME with a JSON-era
//! `~/.openclaw` (two agents), the CLI at `~/.local/bin/claude` with credentials near expiry, and a
//! stand-in `openclaw-gateway.service` (a shell script that sleeps with the environment its
//! drop-in gives it).
//!
//! Test-only settings (service output to files, the sandboxing this machine cannot apply turned
//! off) are drop-ins in the manager's runtime `systemd/user.control/`, outside what setup writes.

use keeper_install_tests::machine::{GATEWAY, Machine, TestDropins, gateway_nudges, gateway_token};
use keeper_install_tests::systemd::UserManager;
use keeper_install_tests::{access_token, bin_dir, fingerprint, has_token_shape, now_ms, refresh_token, row_status};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Every unit of the shipped user set.
const KEEPER_UNITS: [&str; 6] = [
    "openclaw-keeper-refresh.timer",
    "openclaw-keeper-refresh.service",
    "openclaw-keeper-sync.service",
    "openclaw-keeper-sync-once.timer",
    "openclaw-keeper-sync-once.service",
    "openclaw-keeper-notify@.service",
];

/// Every file under `dir` (path → content), for what must stay.
fn snapshot(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            snapshot(&p, out);
        } else {
            out.insert(p.clone(), fs::read(&p).unwrap_or_default());
        }
    }
}

/// The machine built (credentials near expiry: inside the CLI's 5-minute refresh window; a
/// gateway that takes `stop_seconds` to stop), its manager started with the test drop-ins in its
/// runtime control directory, the gateway running (without a token): (temp dir, machine,
/// manager, the first access token, the gateway's PID), or None when no user manager can run
/// here (skipped).
fn machine_with_a_running_gateway(
    stop_seconds: u32,
) -> Option<(tempfile::TempDir, Machine, UserManager, String, String)> {
    let (root, m) = Machine::create("setup-user-systemd-")?;
    let first = access_token();
    m.build(stop_seconds);
    m.write_creds(&first, &refresh_token(), now_ms() + 3 * 60_000);
    let mgr = m.start_manager(TestDropins::RuntimeControl)?;
    let _ = mgr.systemctl_ok(&["start", GATEWAY]);
    let (gateway_pid, fp) = gateway_token(&mgr).expect("the gateway runs");
    assert!(fp.is_empty(), "no token in the gateway's environment before setup");
    Some((root, m, mgr, first, gateway_pid))
}

#[test]
#[allow(clippy::too_many_lines)] // Reason: one user's install and uninstall on one manager, step by step.
fn setup_installs_starts_and_verifies_the_user_units_and_uninstall_removes_exactly_them() {
    let Some((_root, m, mut mgr, first, gateway_pid)) = machine_with_a_running_gateway(0) else { return };
    let mut before = BTreeMap::new();
    snapshot(&m.home, &mut before);

    // 1. setup.sh: installs, enables and starts the units, tests the CLI, verifies.
    let bins = bin_dir().to_str().unwrap().to_owned();
    let (code, setup_out, setup_took) = m.run_script(&mgr, "setup.sh", &["--user", "--yes", "--bin-dir", &bins]);
    assert!(!has_token_shape(&setup_out), "a token in setup's output");
    assert_eq!(code, 0, "setup.sh\n{setup_out}\n{}", m.all_logs());
    eprintln!("setup.sh --user --yes took {setup_took:.1?}");
    if std::env::var_os("KEEPER_TEST_SHOW_OUTPUT").is_some() {
        eprintln!("{setup_out}");
    }
    for step in [
        "enable and start openclaw-keeper-refresh.timer openclaw-keeper-sync.service",
        "the CLI refreshed its token",
        "verify (scripts/verify.sh)",
        "done: openclaw-oauth-keeper is installed (refresh mode, user set)",
    ] {
        assert!(setup_out.contains(step), "{step:?} in\n{setup_out}");
    }
    for unit in ["openclaw-keeper-refresh.timer", "openclaw-keeper-sync.service"] {
        assert_eq!(mgr.property(unit, "ActiveState"), "active", "{unit}");
        assert_eq!(mgr.property(unit, "UnitFileState"), "enabled", "{unit}");
    }
    let next = mgr.property("openclaw-keeper-refresh.timer", "NextElapseUSecRealtime");
    assert!(!next.is_empty() && next != "n/a", "the refresh timer is scheduled: {next:?}");

    // The CLI test rotated the token; the sync service took it to every target. The store
    // (auth-profiles.json) delivers it to the running gateway: no restart. The first sync found no
    // copy at all, so it nudged the gateway once (SIGUSR1: OpenClaw 2026.6.x's in-process
    // restart); the rotation over that valid copy did not.
    let refreshed = m.current_token();
    assert_ne!(refreshed, first, "the CLI test refreshed the token");
    assert!(m.stale_targets(&refreshed).is_empty(), "stale after setup: {:?}", m.stale_targets(&refreshed));
    let (pid, _) = gateway_token(&mgr).expect("the gateway runs");
    assert_eq!(pid, gateway_pid, "no restart for a store-delivered token\n{}", m.all_logs());
    assert_eq!(gateway_nudges(&m), 1, "one nudge, for the first copy\n{}", m.all_logs());

    // 2. verify.sh on its own: every row ok.
    let (code, table, _) = m.run_script(&mgr, "verify.sh", &["--user"]);
    assert_eq!(code, 0, "{table}");
    assert!(!table.contains("| FAIL |"), "{table}");
    assert!(table.contains(&format!("holds sk-ant-oat01-…({})", fingerprint(&refreshed))), "{table}");
    assert_eq!(row_status(&table, "gateway token"), Some("ok"), "the store delivers:\n{table}");
    assert!(!has_token_shape(&table), "a token in verify's output");

    // 3. uninstall.sh: every unit gone from the manager, every listed file gone, the rest kept.
    let manifest = m.home.join(".config/openclaw-oauth-keeper/installed.list");
    let listed: Vec<PathBuf> = fs::read_to_string(&manifest).unwrap().lines().map(PathBuf::from).collect();
    assert!(listed.contains(&m.home.join(".config/systemd/user/openclaw-keeper-sync.service")), "{listed:#?}");
    let (code, uninstall_out, _) = m.run_script(&mgr, "uninstall.sh", &["--user", "--yes"]);
    assert!(!has_token_shape(&uninstall_out), "a token in uninstall's output");
    assert_eq!(code, 0, "uninstall.sh\n{uninstall_out}");
    for unit in KEEPER_UNITS {
        let unit = unit.replace("@.", "@x.");
        assert_eq!(mgr.property(&unit, "LoadState"), "not-found", "{unit}\n{uninstall_out}");
        assert_eq!(mgr.property(&unit, "ActiveState"), "inactive", "{unit}");
    }
    let files = mgr.systemctl(&["list-unit-files", "--no-legend", "openclaw-keeper-*"]);
    let files = String::from_utf8_lossy(&files.stdout);
    assert!(files.trim().is_empty(), "unit files left: {files}");
    // Before systemd 254 a user unit's StateDirectory= (%S) is ~/.config, so the state uninstall
    // leaves alone (cred-sync's written-*.json records: fingerprints and expiries, no token) may
    // keep the config directory; nothing else may.
    let config_dir = m.home.join(".config/openclaw-oauth-keeper");
    let state_only = |dir: &PathBuf| {
        *dir == config_dir
            && fs::read_dir(dir).unwrap().flatten().all(|e| e.file_name().to_string_lossy().starts_with("written-"))
    };
    let left: Vec<&PathBuf> = listed.iter().filter(|p| p.exists() && !state_only(p)).collect();
    let inside: Vec<PathBuf> =
        left.iter().filter_map(|p| fs::read_dir(p).ok()).flatten().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "uninstall left {left:#?} (holding {inside:#?})\n{uninstall_out}");
    // Kept: every file that was there before setup (the gateway unit, the CLI, OpenClaw's files;
    // the credentials and the profiles hold the refreshed token now).
    let mut after = BTreeMap::new();
    snapshot(&m.home, &mut after);
    for path in before.keys() {
        assert!(after.contains_key(path), "uninstall removed {}", path.display());
    }
    assert_eq!(fs::read(&m.gateway_unit).unwrap(), before[&m.gateway_unit], "the gateway unit is untouched");
    assert_eq!(m.current_token(), refreshed, "the credentials stay");
    assert!(m.stale_targets(&refreshed).is_empty(), "the copies stay");
    assert_eq!(mgr.property(GATEWAY, "ActiveState"), "active", "the gateway still runs");

    // 4. Stop everything: nothing is left running.
    let (clean, leftovers) = mgr.stop();
    assert!(clean, "systemd --user did not exit by itself on SIGTERM");
    assert!(leftovers.is_empty(), "processes left in the manager's cgroups: {leftovers:?}");
    let logs = m.all_logs();
    assert!(!has_token_shape(&logs), "a token is in the logs");
}

/// Regression: setup ran verify.sh right after its CLI test, while the sync service was still
/// restarting the gateway with the refreshed token: a gateway that takes a few seconds to stop
/// (as a real one finishing its requests does) made a good install exit 3 with "gateway token
/// FAIL". Setup now waits for the services to settle before it verifies; and since the store
/// delivers the refreshed token (docs/ARCHITECTURE.md, "Delivery"), the slow gateway is not
/// restarted at all.
#[test]
fn regression_setup_verified_before_the_sync_service_had_restarted_a_slow_gateway() {
    let Some((_root, m, mut mgr, first, gateway_pid)) = machine_with_a_running_gateway(3) else { return };
    let bins = bin_dir().to_str().unwrap().to_owned();
    let (code, setup_out, took) = m.run_script(&mgr, "setup.sh", &["--user", "--yes", "--bin-dir", &bins]);
    assert!(!has_token_shape(&setup_out), "a token in setup's output");
    assert_eq!(code, 0, "setup.sh\n{setup_out}\n{}", m.all_logs());
    eprintln!("setup.sh --user --yes with a gateway that stops in 3 s took {took:.1?}");
    let refreshed = m.current_token();
    assert_ne!(refreshed, first);
    assert!(m.stale_targets(&refreshed).is_empty(), "{:?}", m.stale_targets(&refreshed));
    let (pid, _) = gateway_token(&mgr).expect("the gateway runs");
    assert_eq!(pid, gateway_pid, "the store delivered the refreshed token: no restart\n{}", m.all_logs());
    let (code, uninstall_out, _) = m.run_script(&mgr, "uninstall.sh", &["--user", "--yes"]);
    assert_eq!(code, 0, "{uninstall_out}");
    let (clean, leftovers) = mgr.stop();
    assert!(clean && leftovers.is_empty(), "{leftovers:?}");
    assert!(!has_token_shape(&m.all_logs()), "a token is in the logs");
}
