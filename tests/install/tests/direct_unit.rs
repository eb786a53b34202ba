//! The direct refresh's shipped user unit on a real private user manager (docs/UPSTREAM.md, "The
//! test machines"): `scripts/setup.sh --user --yes --refresh direct` installs and enables
//! `openclaw-keeper-refresh-direct.timer`; its service (`cli-poke --direct --not-due-ok`, with the
//! shipped sandboxing and setup's `ReadWritePaths=` drop-in) refreshes a token inside the direct
//! window at `tests/anthropic-mock`, reached through `HTTPS_PROXY` and `SSL_CERT_FILE` in the
//! config file the unit loads (`EnvironmentFile=`), as docs/TROUBLESHOOTING.md tells a user behind
//! a proxy to set them. The manager, its units and the mock share a network namespace where only
//! loopback is up: nothing reaches the real endpoint.

use keeper_anthropic_mock::{Mock, RequestKind};
use keeper_install_tests::machine::{GATEWAY, Machine, TestDropins};
use keeper_install_tests::systemd;
use keeper_install_tests::{access_token, bin_dir, fingerprint, has_token_shape, now_ms, refresh_token};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

const SERVICE: &str = "openclaw-keeper-refresh-direct.service";
const TIMER: &str = "openclaw-keeper-refresh-direct.timer";
const MINUTE_MS: i64 = 60_000;

/// Writes the CLI's credentials as a sign-in leaves them (temp + rename, 0600).
fn write_creds(m: &Machine, access: &str, refresh: &str, expires_ms: i64) {
    let doc = serde_json::json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
        "expiresAt": expires_ms, "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
        "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}});
    let tmp = m.creds.with_extension("json.tmp.test");
    fs::write(&tmp, doc.to_string()).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&tmp, &m.creds).unwrap();
}

/// (access token, refresh token, expiresAt) in the credentials file.
fn file_tokens(m: &Machine) -> (String, String, i64) {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&m.creds).unwrap()).unwrap();
    let o = &v["claudeAiOauth"];
    let s = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
    (s("accessToken"), s("refreshToken"), o["expiresAt"].as_i64().unwrap_or_default())
}

/// Every log, for a failure message: checked for tokens first (never printed).
fn logs(m: &Machine) -> String {
    let all = m.all_logs();
    assert!(!has_token_shape(&all), "a token is in the logs");
    all
}

#[test]
#[allow(clippy::too_many_lines)] // Reason: one scenario on one manager; its steps build on each other.
fn the_shipped_direct_refresh_unit_refreshes_on_the_real_user_manager() {
    if let Some(why) = systemd::user_manager_unavailable() {
        systemd::skip(&why);
        return;
    }
    // The tools are built before the network goes.
    let bins = bin_dir().to_str().unwrap().to_owned();
    // Offline: the manager, its units and the mock run in this thread's network namespace.
    if let Err(why) = keeper_anthropic_mock::isolate_network() {
        systemd::skip(&why);
        return;
    }
    let Some((_root, m)) = Machine::create("direct-unit-") else { return };
    m.build(0);
    let mock = Mock::start(&m.work).unwrap();
    // Outside the direct window while setup installs: the timer's runs (and a Persistent= catch-up
    // at its start) find nothing due.
    write_creds(&m, &access_token(), &refresh_token(), now_ms() + 5 * 60 * MINUTE_MS);
    let Some(mut mgr) = m.start_manager(TestDropins::RuntimeControl) else { return };
    let _ = mgr.systemctl_ok(&["start", GATEWAY]);
    let (code, out, setup_took) = m.run_script(
        &mgr,
        "setup.sh",
        &["--user", "--yes", "--refresh", "direct", "--skip-cli-test", "--bin-dir", &bins],
    );
    assert_eq!(code, 0, "setup.sh\n{out}\n{}", logs(&m));
    assert!(out.contains(&format!("enable and start {TIMER}")), "{out}");

    // The timer is loaded, enabled, running and scheduled; it triggers the direct service, and the
    // CLI's timer is not running beside it.
    assert_eq!(mgr.property(TIMER, "LoadState"), "loaded");
    assert_eq!(mgr.property(TIMER, "UnitFileState"), "enabled");
    assert_eq!(mgr.property(TIMER, "ActiveState"), "active", "{}", logs(&m));
    assert_eq!(mgr.property(TIMER, "SubState"), "waiting");
    assert_eq!(mgr.property(TIMER, "Triggers"), SERVICE);
    let next = mgr.property(TIMER, "NextElapseUSecRealtime");
    assert!(!next.is_empty() && next != "n/a", "the timer is scheduled: {next:?}");
    assert_eq!(mgr.property("openclaw-keeper-refresh.timer", "ActiveState"), "inactive");
    // The service is the shipped file, with setup's drop-in.
    assert_eq!(mgr.property(SERVICE, "LoadState"), "loaded");
    assert_eq!(mgr.property(SERVICE, "FragmentPath"), m.unit_dir.join(SERVICE).display().to_string());
    let dropins = mgr.property(SERVICE, "DropInPaths");
    assert!(dropins.contains(&format!("{SERVICE}.d/50-keeper-paths.conf")), "{dropins}");
    assert!(mgr.property(SERVICE, "ExecStart").contains("cli-poke --direct --not-due-ok"));

    // The mock's proxy and CA, where a user puts them: the config file the unit loads.
    let config = m.home.join(".config/openclaw-oauth-keeper/keeper.env");
    let mut text = fs::read_to_string(&config).unwrap();
    let _ = write!(
        text,
        "# test only: tests/anthropic-mock\nHTTPS_PROXY={}\nNO_PROXY=127.0.0.1,localhost,::1\nSSL_CERT_FILE={}\n",
        mock.proxy_url(),
        mock.ca_pem().display()
    );
    fs::write(&config, text).unwrap();

    // Inside the direct window (its last 55 minutes): 30 minutes left.
    let (access, refresh) = (access_token(), refresh_token());
    mock.add_refresh_token(&refresh);
    write_creds(&m, &access, &refresh, now_ms() + 30 * MINUTE_MS);
    let invocation = mgr.property(SERVICE, "InvocationID");
    let started = Instant::now();
    // A oneshot: start returns when the run has ended.
    let start = mgr.systemctl(&["start", SERVICE]);
    let took = started.elapsed();
    assert!(
        start.status.success(),
        "systemctl --user start {SERVICE}: {}\n{}",
        String::from_utf8_lossy(&start.stderr),
        logs(&m)
    );
    assert_ne!(mgr.property(SERVICE, "InvocationID"), invocation, "the service ran");
    assert_eq!(mgr.property(SERVICE, "Result"), "success", "{}", logs(&m));
    assert_eq!(mgr.property(SERVICE, "ExecMainStatus"), "0", "{}", logs(&m));
    assert_eq!(mgr.property(SERVICE, "ActiveState"), "inactive");

    // The endpoint issued exactly one pair, for the file's refresh token, and the file holds it.
    let issued = mock.issued();
    assert_eq!(issued.len(), 1, "{issued:?}\n{}", logs(&m));
    let token_requests: Vec<_> =
        mock.requests().into_iter().filter(|r| matches!(r.kind, RequestKind::OAuthToken { .. })).collect();
    assert_eq!(token_requests.len(), 1, "{token_requests:?}");
    let RequestKind::OAuthToken { refresh_fingerprint, grant_type, .. } = &token_requests[0].kind else {
        unreachable!()
    };
    assert_eq!(refresh_fingerprint.as_deref(), Some(fingerprint(&refresh).as_str()));
    assert_eq!(grant_type.as_deref(), Some("refresh_token"));
    let (now_access, now_refresh, expires) = file_tokens(&m);
    let rotated = issued[0].refresh.as_deref().expect("the mock rotates the refresh token");
    assert_eq!(fingerprint(&now_access), fingerprint(&issued[0].access), "the issued access token is in the file");
    assert_eq!(fingerprint(&now_refresh), fingerprint(rotated), "the rotated refresh token is in the file");
    assert_ne!(fingerprint(&now_refresh), fingerprint(&refresh));
    assert!(expires > now_ms() + 60 * MINUTE_MS, "the new expiry is hours away");
    assert_eq!(fs::metadata(&m.creds).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(mock.refresh_reuses(), 0, "no refresh token was presented twice");
    assert_eq!(mock.live_refresh_tokens(), vec![fingerprint(rotated)], "only the rotated one is live");

    // No lock left: the CLI's three (and the owner record) in its config directory, the legacy
    // one beside it.
    let claude_dir = m.creds.parent().unwrap();
    let left: Vec<String> = fs::read_dir(claude_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".lock"))
        .collect();
    assert!(left.is_empty(), "locks left in {}: {left:?}", claude_dir.display());
    let legacy = claude_dir.with_extension("lock");
    assert!(!legacy.exists(), "{} left", legacy.display());

    // What the unit logged (its output: there is no journal here) says what happened, by
    // fingerprint only; no failure was reported.
    let unit_log = fs::read_to_string(m.logs.join("openclaw-keeper-refresh-direct.log")).unwrap_or_default();
    assert!(!has_token_shape(&unit_log), "a token is in the unit's log");
    assert!(unit_log.contains("refreshed directly:"), "{unit_log}");
    assert!(unit_log.contains(&fingerprint(&issued[0].access)), "{unit_log}");
    assert!(!m.logs.join("openclaw-keeper-notify.log").exists(), "OnFailure= reported a failure:\n{}", logs(&m));

    // The next run (the timer's, 10 minutes on) finds nothing due: success, nothing sent.
    let _ = mgr.systemctl_ok(&["start", SERVICE]);
    assert_eq!(mgr.property(SERVICE, "Result"), "success", "{}", logs(&m));
    assert_eq!(mock.issued().len(), 1, "nothing sent when not due\n{}", logs(&m));
    assert_eq!(fingerprint(&file_tokens(&m).0), fingerprint(&issued[0].access));
    assert_eq!(mgr.property(TIMER, "ActiveState"), "active", "the timer still runs");
    eprintln!(
        "setup.sh --refresh direct: {:.1}s; the direct unit's refresh through the mock: {:.1}s",
        setup_took.as_secs_f64(),
        took.as_secs_f64()
    );

    let (clean, leftovers) = mgr.stop();
    assert!(clean && leftovers.is_empty(), "{leftovers:?}");
    assert!(!has_token_shape(&m.all_logs()), "a token is in the logs");
}
